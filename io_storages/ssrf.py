"""SSRF guard for network addresses that users type (S3 `s3_endpoint`, Redis `host`, ...).

Without it, anyone who can create a storage can make the server connect to addresses only
the server can reach: the cloud metadata service (instance credentials), databases on
localhost, services in the private network. So before connecting we resolve the host and
refuse it if ANY address it resolves to is not a public unicast address.

- `check_host(host, port)`: resolve and refuse local/private/metadata addresses.
- `check_url(url)`: http/https only, then `check_host`; operator-configured endpoints pass.
- `guard_url(url)`: `check_url` with a short per-host cache, used as the S3 client's
  `before_connect` hook, so every request is checked again at connect time (DNS can change
  between saving a storage and using it: "DNS rebinding").
- `check_peer(address, host)`: the address a connection actually reached, checked on the
  connected socket before anything is sent (the S3 client's `check_peer` hook): a name can
  still resolve differently for the connect than it did for the check.
- `is_trusted_endpoint(url)`: the endpoints the operator configured in the environment.

Everything is a no-op when `settings.SSRF_PROTECTION_ENABLED` is false (e.g. a deployment
whose storage legitimately lives in the private network).

Messages of `SSRFError` are returned to API users: they name the host and the reason, never
the full URL (it may carry credentials in its user-info part).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from typing import Optional, Tuple
from urllib.parse import urlsplit

from django.conf import settings

from io_storages.client import StorageError

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
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Operator-configured endpoints that users may pick even if they are private (e.g. the
# MinIO next to the app). Read at call time so tests and reconfiguration need no restart:
#   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL  - the endpoints boto3 itself uses by default;
#   SSRF_TRUSTED_ENDPOINTS                 - extra endpoint URLs, comma-separated, e.g.
#                                            "http://minio:9000,https://s3.internal.example".
# A URL is trusted only if it equals one of them (scheme, host, port and path), not if it
# merely shares the host.
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


# --- URLs --------------------------------------------------------------------------------
def _split(url: str) -> Tuple[str, str, Optional[int], str, str]:
    """(scheme, host, port, path, query) of `url`, lower-cased where case does not matter."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port  # raises ValueError when not a number in 0-65535
    except ValueError:
        raise SSRFError("Endpoint URL is not a valid URL") from None
    return parts.scheme.lower(), _normalise_host(parts.hostname or ""), port, parts.path, parts.query


def _normalise_url(url: str) -> Optional[tuple]:
    try:
        scheme, host, port, path, query = _split(url)
    except SSRFError:
        return None
    if not scheme or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS.get(scheme), path.rstrip("/"), query


def _trusted_endpoints() -> list[str]:
    urls = [os.environ.get(var, "") for var in _TRUSTED_ENDPOINT_VARS]
    urls += os.environ.get(_TRUSTED_ENDPOINTS_VAR, "").split(",")
    return [u.strip() for u in urls if u.strip()]


def is_trusted_endpoint(url: str) -> bool:
    """True when `url` is one of the endpoints the operator configured (see above)."""
    target = _normalise_url(url)
    return target is not None and any(_normalise_url(t) == target for t in _trusted_endpoints())


def _target(url: str) -> Optional[Tuple[str, Optional[int]]]:
    """(host, port) that `url` would connect to, or None when no check is needed."""
    if not settings.SSRF_PROTECTION_ENABLED or is_trusted_endpoint(url):
        return None
    # Parser differentials: urllib and the HTTP client might read "http://a\@b/" or a URL
    # with spaces/control characters as different hosts, so such URLs are refused outright.
    if any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in (url or "").strip()):
        raise SSRFError("Endpoint URL contains backslashes, spaces or control characters")
    scheme, host, port, _, _ = _split(url)
    if scheme not in _ALLOWED_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise SSRFError(f"Endpoint URL has {shown}; only http:// and https:// are allowed")
    if not host:
        raise SSRFError("Endpoint URL has no host")
    return host, port


def check_url(url: str) -> None:
    """Raise `SSRFError` unless `url` is an http(s) URL whose host is public (or trusted)."""
    target = _target(url)
    if target is not None:
        check_host(*target)


def guard_url(url: str) -> None:
    """`check_url` for connect-time hooks (`before_connect`): called with every request URL,
    so hosts that passed are remembered for ~30 s instead of resolved on each request."""
    target = _target(url)
    if target is None:
        return
    host = target[0]
    now = time.monotonic()
    with _guard_lock:
        if _guard_cache.get(host, 0.0) > now:
            return
    check_host(*target)  # outside the lock: DNS can be slow, other hosts must not wait
    with _guard_lock:
        if len(_guard_cache) >= _GUARD_CACHE_MAX:  # keep the cache small: drop stale entries
            for stale in [h for h, expires in _guard_cache.items() if expires <= now]:
                del _guard_cache[stale]
            if len(_guard_cache) >= _GUARD_CACHE_MAX:
                _guard_cache.clear()
        _guard_cache[host] = now + _GUARD_CACHE_TTL


def clear_guard_cache() -> None:
    """Forget the hosts `guard_url` has accepted (tests, or after changing DNS)."""
    with _guard_lock:
        _guard_cache.clear()
