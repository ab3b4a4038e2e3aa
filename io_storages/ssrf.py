"""SSRF guard for network addresses that users type (S3 `s3_endpoint`, Redis `host`, ...).

Without it, anyone who can create a storage can make the server connect to addresses only
the server can reach: the cloud metadata service (instance credentials), databases on
localhost, services in the private network. So before connecting we resolve the host and
refuse it if ANY address it resolves to is not a public unicast address.

- `parse_url(url)` / `parse_host(text)`: user-given URLs and hosts are parsed once, strictly
  (no user-info, backslashes, whitespace or control characters, nothing odd) into one value
  (`Endpoint`: scheme, host, port) that both the checks and the client use: the client is
  given `Endpoint.url`, rebuilt from the parsed parts, so the checked host is the connected one.
- `check_host(host, port)`: resolve and refuse local/private/metadata addresses.
- `check_url(url)`: `parse_url`, then `check_host` unless the endpoint is trusted.
- `guard_url(url)`: the address check of a request URL with a short per-host cache, used
  as the S3 client's `before_connect` hook, so every request is checked again at connect
  time (DNS can change between saving a storage and using it: "DNS rebinding").
- `check_peer(address, host)`: the address a connection actually reached, checked on the
  connected socket before anything is sent (the S3 client's `check_peer` hook): a name can
  still resolve differently for the connect than it did for the check.
- `EndpointGuard(endpoint)`: those connect-time hooks for one endpoint, on for trusted
  endpoints too (whose connections must reach an address of the trusted host).
- `is_trusted(endpoint)` / `is_trusted_endpoint(url)`: the endpoints the operator configured.
- `require_credentials(fields)`: empty credentials mean the server's own identity, refused
  unless `settings.STORAGE_SERVER_CREDENTIALS_ENABLED`.

The address checks are no-ops when `settings.SSRF_PROTECTION_ENABLED` is false (e.g. a deployment
whose storage legitimately lives in the private network).

(the strict parsing is not). Messages of `SSRFError` are returned to API users: they name the
host and the reason, never the URL or text as typed (a user-info part would be a password).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable, Optional, Tuple
from urllib.parse import urlsplit

from django.conf import settings

from io_storages.client import InvalidCredentials, StorageError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SSRFError(StorageError):
    """An address was refused by the SSRF guard; the message is safe to show to users."""


# Well-known cloud metadata services. Most are link-local anyway; naming them gives a
# clearer message. 100.100.100.200 (Alibaba) and 192.0.0.192 (Oracle) would not be caught
# by the generic checks below on every Python version, so they must be listed.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata (credentials)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
# RFC 6598 shared address space (carrier-grade NAT): not covered by `is_private`.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# RFC 6052 well-known NAT64 prefix embeds an IPv4 address in its last 32 bits; RFC 8215
# local-use NAT64 prefix is, by definition, not globally reachable.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

# Names refused before any DNS lookup: they are local by convention or by definition, and
# some resolvers answer them without asking DNS (so a lookup proves nothing).
_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
    }
)
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")

_ALLOWED_SCHEMES = ("http", "https")
_TRUSTED_SCHEMES = ("http", "https", "redis")  # SSRF_TRUSTED_ENDPOINTS may name Redis servers
_DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379}

# Operator-configured endpoints that users may pick even if they are private (e.g. the
# MinIO next to the app). Read at call time so tests and reconfiguration need no restart:
#   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL  - the endpoints boto3 itself uses by default;
#   SSRF_TRUSTED_ENDPOINTS                 - extra endpoint URLs, comma-separated, e.g.
#                                            "http://minio:9000,https://s3.internal.example".
# A URL is trusted only if its scheme, host and port (both parsed strictly) equal one of
# them: not if it merely shares the host, and never if either has user-info or odd characters.
_TRUSTED_ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_TRUSTED_ENDPOINTS_VAR = "SSRF_TRUSTED_ENDPOINTS"

# guard_url() runs before every S3 request; remember hosts that passed for a short while so
# a listing of 10,000 keys does not cost 10,000 DNS lookups. Only successes are cached.
_GUARD_CACHE_TTL = 30.0
_GUARD_CACHE_MAX = 1024
_guard_cache: dict[str, float] = {}  # host -> time.monotonic() when the entry expires
_guard_lock = threading.Lock()


# --- addresses ---------------------------------------------------------------------------
def _embedded_ipv4(ip: IPAddress) -> Optional[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any.

    `::ffff:127.0.0.1` reaches 127.0.0.1 on a dual-stack host, and older Pythons do not
    report it as loopback, so such addresses are judged by the IPv4 address inside.
    """
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _refusal_reason(ip: IPAddress) -> Optional[str]:
    """Why connecting to `ip` is refused ("a private address", ...), or None if it is public."""
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = _refusal_reason(inner)
        return f"{reason} via IPv6 ({inner})" if reason else None
    # Order matters only for the message: e.g. 127.0.0.1 is also "private".
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip in _SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or (ip.version == 6 and (ip.is_site_local or ip in _NAT64_LOCAL)):
        return "a private address"
    # Catch-all for special ranges not listed above (documentation, benchmarking, ...).
    if not ip.is_global:
        return "a non-public address"
    return None


def _normalise_host(host: str) -> str:
    # "[::1]" is how IPv6 literals appear in URLs; "example.com." is the same name as
    # "example.com" (and would slip past the suffix check).
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".").lower()


def _is_blocked_name(name: str) -> bool:
    return name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES)


def check_host(host: str, port: Optional[int] = None) -> None:
    """Raise `SSRFError` unless every address `host` resolves to is public.

    `host` is a DNS name or an IP literal (IPv4, IPv6, bracketed IPv6, and the numeric forms
    the C resolver accepts, like "2130706433" or "0x7f.1", which is why we let
    `getaddrinfo` parse literals instead of parsing them ourselves).
    """
    if not settings.SSRF_PROTECTION_ENABLED:
        return
    name = _normalise_host(host)
    if not name:
        raise SSRFError("Endpoint host is empty")
    if _is_blocked_name(name):
        raise SSRFError(f"Endpoint host {host!r} is a local or internal name; refused to prevent SSRF")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError, OverflowError) as e:  # gaierror is an OSError
        detail = getattr(e, "strerror", None) or type(e).__name__
        raise SSRFError(f"Endpoint host {host!r}: cannot resolve host ({detail})") from None
    if not infos:
        raise SSRFError(f"Endpoint host {host!r}: cannot resolve host (no addresses)")
    # Refuse if ANY address is bad: the client may connect to any of them, and an attacker
    # controlling DNS can mix a public address with a private one.
    for *_, sockaddr in infos:
        address = sockaddr[0].split("%", 1)[0]  # drop an IPv6 zone id ("fe80::1%eth0")
        reason = _refusal_reason(ipaddress.ip_address(address))
        if reason:
            raise SSRFError(f"Endpoint host {host!r} resolves to {reason} ({address}); refused to prevent SSRF")


def check_peer(address: str, host: str) -> None:
    """Raise `SSRFError` if a connection made to reach `host` ended up at a refused address."""
    if not settings.SSRF_PROTECTION_ENABLED:
        return
    reason = _refusal_reason(ipaddress.ip_address(address.split("%", 1)[0]))
    if reason:
        raise SSRFError(f"Endpoint host {host!r} connected to {reason} ({address}); refused to prevent SSRF")


# --- parsing user-given URLs and hosts, once and strictly ---------------------------------
# Why strict: a URL the guard reads one way and the HTTP client another is an SSRF bypass.
# `http://10.0.0.1\@trusted/` is "trusted" to urlsplit (user-info ends at "@") and
# 10.0.0.1 to urllib3 (the authority ends at "\"). So user-given URLs are parsed here
# once, everything odd is refused, and the client is given the URL rebuilt from the parsed
# parts (`Endpoint.url`): the host that was checked is the host that is connected to.
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")  # what resolvers read as (part of) an IPv4
_PORT = re.compile(r"[0-9]{1,5}")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")  # plain path segments: no %, ;, @ or empty ones
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", re.DOTALL)


@dataclass(frozen=True)
class Endpoint:
    """A user-given URL as parsed by `parse_url`: what is checked and what is connected to."""

    scheme: str  # "http" or "https" (or what the caller allowed), lower-case
    host: str  # lower-case ASCII: a DNS name (IDNA), a dotted-quad IPv4 or an IPv6 (no brackets)
    port: int  # the given port, or the scheme's default
    path: str = ""  # "" or "/a/b" (no trailing slash)

    @property
    def key(self) -> Tuple[str, str, int]:
        """What trust is decided on: scheme, host and port (not the path)."""
        return self.scheme, self.host, self.port

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL rebuilt from the parsed parts: the only form handed to an HTTP client."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    def __str__(self) -> str:
        return self.url


def _odd_characters(text: str) -> Optional[str]:
    """What is wrong with `text` character-wise (backslash, whitespace, control or format
    characters), or None. Unicode categories C* and Z*: controls, format characters such as
    zero-width spaces or bidi overrides, surrogates, unassigned code points, all spaces."""
    for c in text:
        if c == "\\":
            return "a backslash"
        if c.isspace() or unicodedata.category(c)[0] in "CZ":
            return "whitespace or control characters"
    return None


def parse_host(text: str, *, what: str = "Endpoint host", bare_ipv6: bool = True) -> str:
    """`text` as a host, normalised (see `Endpoint.host`), or `SSRFError` saying what is wrong.

    Accepted: a DNS name (letters, digits, "-" and "_" in labels, internationalised names in
    their IDNA form, one trailing dot dropped), an IPv4 address as four decimal numbers, an
    IPv6 address in brackets (or bare, with `bare_ipv6`). Refused: anything else, including
    the numeric IPv4 spellings resolvers accept ("2130706433", "0x7f.1", "127.1") and
    IPv6 zone ids. Messages never quote the text (it may hold a password).
    """
    text = text or ""
    odd = _odd_characters(text)
    if odd:
        raise SSRFError(f"{what} contains {odd}")
    if not text:
        raise SSRFError(f"{what} is empty")
    for c in "@/?#%":  # a URL, user-info, a path...: never part of a host
        if c in text:
            detail = "a user name or password" if c == "@" else f"'{c}'"
            raise SSRFError(f"{what} must be a host name or address only; it contains {detail}")
    bracketed = text.startswith("[") or text.endswith("]")
    if bracketed or (bare_ipv6 and ":" in text):
        inner = text[1:-1] if bracketed else text
        try:
            if bracketed and not (text.startswith("[") and text.endswith("]")):
                raise ValueError
            return ipaddress.IPv6Address(inner).compressed
        except ValueError:
            raise SSRFError(f"{what} is not a valid IPv6 address (in brackets, without a zone id)") from None
    for c in ":[]":
        if c in text:
            raise SSRFError(f"{what} must be a host name or address only; it contains '{c}'")
    name = text.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")  # also maps full-width dots and digits
        except UnicodeError:
            raise SSRFError(f"{what} is not a valid internationalised domain name") from None
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # resolvers would read it as an IPv4 address
        if not _IPV4.fullmatch(name) or any(int(part) > 255 for part in labels):
            raise SSRFError(f"{what} is not a valid IPv4 address (write it as four decimal numbers, e.g. 192.0.2.1)")
        return name
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise SSRFError(f"{what} is not a valid host name")
    return name


def parse_url(url: str, *, what: str = "Endpoint URL", schemes: Tuple[str, ...] = _ALLOWED_SCHEMES) -> Endpoint:
    """`url` parsed strictly into an `Endpoint`, or `SSRFError` saying what is wrong.

    Accepted: `scheme://host[:port][/path]`: an explicit scheme from `schemes`; a host as
    `parse_host` accepts it (IPv6 in brackets); a port of 1-65535; a path of plain segments.
    Refused: user-info ("user:password@"), backslashes, whitespace or control characters
    anywhere, a query or fragment, an empty port, and anything else odd. Messages never quote
    the URL (its user-info may be a password).
    """
    text = url if isinstance(url, str) else ""
    odd = _odd_characters(text)
    if odd:
        raise SSRFError(f"{what} contains {odd}")
    match = _URL.fullmatch(text)
    if not match:
        raise SSRFError(f"{what} must start with http:// or https:// followed by a host")
    scheme, authority, rest = match[1].lower(), match[2], match[3]
    if scheme not in schemes:
        allowed = " and ".join(f"{s}://" for s in schemes)
        raise SSRFError(f"{what} has scheme {scheme!r}; only {allowed} are allowed")
    if "@" in authority:
        raise SSRFError(f"{what} must not contain a user name or password (user-info before '@')")
    if not authority:
        raise SSRFError(f"{what} has no host")
    if "?" in rest or "#" in rest:
        raise SSRFError(f"{what} must not have a query or fragment ('?', '#')")
    path = rest.rstrip("/")
    if path and not all(_PATH_SEGMENT.fullmatch(seg) and seg not in (".", "..") for seg in path.split("/")[1:]):
        raise SSRFError(f"{what} has an invalid path (plain /segments of letters, digits and -._~ only)")
    host, port = authority, None
    if authority.startswith("["):
        close = authority.find("]")
        host, after = (authority[: close + 1], authority[close + 1 :]) if close > 0 else (authority, "")
        if after:
            if not after.startswith(":"):
                raise SSRFError(f"{what} is not a valid URL (unexpected text after the IPv6 address)")
            port = after[1:]
    elif authority.count(":") > 1:
        raise SSRFError(f"{what} host: an IPv6 address must be written in brackets, e.g. http://[2001:db8::1]:9000")
    elif ":" in authority:
        host, port = authority.split(":", 1)
    if port is not None:
        if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
            raise SSRFError(f"{what} has an invalid port (a number from 1 to 65535)")
    name = parse_host(host, what=f"{what} host", bare_ipv6=False)
    return Endpoint(scheme, name, int(port) if port else _DEFAULT_PORTS[scheme], path)


# --- trusted endpoints -------------------------------------------------------------------
def _trusted_endpoints() -> list[str]:
    urls = [os.environ.get(var, "") for var in _TRUSTED_ENDPOINT_VARS]
    urls += os.environ.get(_TRUSTED_ENDPOINTS_VAR, "").split(",")
    return [u.strip() for u in urls if u.strip()]


def _trusted_keys() -> set:
    """(scheme, host, port) of every operator-configured endpoint; entries that do not parse
    strictly (user-info, odd characters...) trust nothing."""
    keys = set()
    for url in _trusted_endpoints():
        try:
            keys.add(parse_url(url, schemes=_TRUSTED_SCHEMES).key)
        except SSRFError:
            continue
    return keys


def is_trusted(endpoint: Endpoint) -> bool:
    """True when the operator configured this scheme, host and port (see above)."""
    return endpoint.key in _trusted_keys()


def is_trusted_endpoint(url: str) -> bool:
    """True when `url` parses strictly and is one of the endpoints the operator configured."""
    try:
        return is_trusted(parse_url(url, schemes=_TRUSTED_SCHEMES))
    except SSRFError:
        return False


def _request_target(url: str) -> Tuple[str, str, Optional[int]]:
    """(scheme, host, port) of a request URL an HTTP client is about to send (built by the
    client from an `Endpoint`, with any key and query): read leniently, odd ones refused."""
    if _odd_characters(url or ""):
        raise SSRFError("Endpoint URL contains backslashes, spaces or control characters")
    try:
        parts = urlsplit(url or "")
        port = parts.port  # raises ValueError when not a number in 0-65535
    except ValueError:
        raise SSRFError("Endpoint URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise SSRFError(f"Endpoint URL has {shown}; only http:// and https:// are allowed")
    host = _normalise_host(parts.hostname or "")
    if not host:
        raise SSRFError("Endpoint URL has no host")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def check_url(url: str, *, what: str = "Endpoint URL") -> Endpoint:
    """`url` parsed strictly (`parse_url`); `SSRFError` unless its host is public or it is a
    trusted endpoint. The returned `Endpoint` is what the client must connect to."""
    endpoint = parse_url(url, what=what)
    if settings.SSRF_PROTECTION_ENABLED and not is_trusted(endpoint):
        check_host(endpoint.host, endpoint.port)
    return endpoint


def guard_url(url: str) -> None:
    """The public-address rule for connect-time hooks (`before_connect`): called with every
    request URL, so hosts that passed are remembered for ~30 s instead of resolved on each
    request."""
    if not settings.SSRF_PROTECTION_ENABLED:
        return
    _, host, port = _request_target(url)
    now = time.monotonic()
    with _guard_lock:
        if _guard_cache.get(host, 0.0) > now:
            return
    check_host(host, port)  # outside the lock: DNS can be slow, other hosts must not wait
    with _guard_lock:
        if len(_guard_cache) >= _GUARD_CACHE_MAX:  # keep the cache small: drop stale entries
            for stale in [h for h, expires in _guard_cache.items() if expires <= now]:
                del _guard_cache[stale]
            if len(_guard_cache) >= _GUARD_CACHE_MAX:
                _guard_cache.clear()
        _guard_cache[host] = now + _GUARD_CACHE_TTL


def _ip(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip


def addresses_of(host: str, port: Optional[int]) -> set:
    """The addresses `host` resolves to now (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError, OverflowError):
        return set()
    return {_ip(sockaddr[0]) for *_, sockaddr in infos}


class EndpointGuard:
    """The connect-time checks of one user-given endpoint: the S3 client's `before_connect`
    and `check_peer` hooks. They stay on for trusted endpoints too, since the operator trusts
    that host, not whatever a name or a redirect leads to:

    - untrusted: every request URL passes `guard_url` and every connected socket `check_peer`
      (public addresses only);
    - trusted: requests to the endpoint's own scheme, host and port pass, and a socket
      connected for its host must have reached one of the addresses that host resolves to
      (looked up again on the connected socket: a name answering differently to the client
      and to the check is refused); any other host or address is judged like an untrusted one.
    """

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.trusted = is_trusted(endpoint)

    def before_connect(self, url: str) -> None:
        if not settings.SSRF_PROTECTION_ENABLED:
            return
        if self.trusted and _request_target(url) == self.endpoint.key:
            return
        guard_url(url)

    def check_peer(self, address: str, host: str) -> None:
        if not settings.SSRF_PROTECTION_ENABLED:
            return
        if self.trusted and _normalise_host(host) == self.endpoint.host:
            if _ip(address) in addresses_of(self.endpoint.host, self.endpoint.port):
                return
            reason = _refusal_reason(_ip(address))
            if reason:
                raise SSRFError(
                    f"Endpoint host {host!r} connected to {reason} ({address}), which is not an address "
                    "of that trusted host; refused to prevent SSRF"
                )
            return  # a public address: what any endpoint may reach
        check_peer(address, host)

    def hooks(self) -> dict:
        """Keyword arguments for `S3Client`."""
        return {"before_connect": self.before_connect, "check_peer": self.check_peer}


class _PeerCheckedConnection:
    """Mixed into urllib3's connection classes: calls `check_peer(address, host)` once the
    socket is connected, before TLS and before anything is sent. A connection through a
    proxy is not checked: its peer is the proxy, which looks the endpoint up itself."""

    check_peer: Callable[[str, str], None]

    def _new_conn(self):
        sock = super()._new_conn()
        if not getattr(self, "proxy", None):
            try:
                self.check_peer(sock.getpeername()[0], self.host)
            except BaseException:
                sock.close()
                raise
        return sock


def peer_checked_pools(pool_classes_by_scheme: dict, check_peer: Callable[[str, str], None]) -> dict:
    """urllib3 pool classes (scheme -> class) whose connections run `check_peer` on the
    connected socket. Checking a name before a request is not enough: urllib3 looks it up
    again to connect, and a rebinding DNS server can answer a public address to the check
    and 169.254.169.254 to the connect; the connected socket's address is the one that
    counts. Neither botocore nor requests has a public hook at this level, so clients get
    subclasses of their pool classes."""
    classes = {}
    for scheme, pool in pool_classes_by_scheme.items():
        connection = type(
            f"PeerChecked{pool.ConnectionCls.__name__}",
            (_PeerCheckedConnection, pool.ConnectionCls),
            {"check_peer": staticmethod(check_peer)},
        )
        classes[scheme] = type(f"PeerChecked{pool.__name__}", (pool,), {"ConnectionCls": connection})
    return classes


# --- the server's own identity -------------------------------------------------------------
def require_credentials(fields: str) -> None:
    """Raise `InvalidCredentials` for a storage that left `fields` empty, unless the operator
    allows storages to use the server's own identity (STORAGE_SERVER_CREDENTIALS_ENABLED):
    empty credentials would otherwise mean the SDK's defaults (environment keys, instance
    role, application default credentials, the server's account), i.e. anything the server
    itself can reach."""
    if not getattr(settings, "STORAGE_SERVER_CREDENTIALS_ENABLED", False):
        raise InvalidCredentials(
            f"{fields} required: storages do not use this server's own credentials "
            "(the operator can allow that with STORAGE_SERVER_CREDENTIALS_ENABLED=true)"
        )


def clear_guard_cache() -> None:
    """Forget the hosts `guard_url` has accepted (tests, or after changing DNS)."""
    with _guard_lock:
        _guard_cache.clear()
