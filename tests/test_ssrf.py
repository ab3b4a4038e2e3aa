"""io_storages.ssrf: the SSRF guard for user-typed hosts and endpoint URLs, and the strict
parsing of those URLs and hosts (tests/test_security_ssrf.py has the same against real
servers through the API).

No network: IP literals are parsed by getaddrinfo locally; DNS names are either refused
before any lookup (localhost, *.internal) or resolved through a monkeypatched getaddrinfo.
"""

import socket

import pytest

from io_storages import ssrf
from io_storages.client import InvalidCredentials, StorageError
from io_storages.ssrf import (
    Endpoint,
    EndpointGuard,
    SSRFError,
    check_host,
    check_url,
    guard_url,
    is_trusted_endpoint,
    parse_host,
    parse_url,
)

PUBLIC_IP = "93.184.216.34"


@pytest.fixture(autouse=True)
def _ssrf_on(ssrf_on):
    """Every test here runs with protection on (tests/conftest.py)."""


@pytest.fixture
def fake_dns(monkeypatch):
    """fake_dns({"name": ["addr", ...]}) -> list of looked-up names; other names don't resolve."""
    lookups = []

    def install(table):
        def getaddrinfo(host, port, *args, **kwargs):
            lookups.append(host)
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
                for a in table[host]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


# --- check_host: addresses ---------------------------------------------------------------
@pytest.mark.parametrize(
    "host, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("100.100.100.200", "metadata"),
        ("192.0.0.192", "metadata"),
        # IPv6 forms that reach an IPv4 address
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:a9fe:a9fe", "metadata"),  # ::ffff:169.254.169.254
        ("::ffff:10.0.0.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        # numeric forms the C resolver accepts
        ("2130706433", "loopback"),
        ("0x7f.1", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("0", "unspecified"),
    ],
)
def test_non_public_addresses_are_refused(host, reason):
    with pytest.raises(SSRFError, match=reason) as e:
        check_host(host)
    assert repr(host) in str(e.value) and "SSRF" in str(e.value)


def test_message_names_host_address_and_reason():
    with pytest.raises(SSRFError) as e:
        check_host("10.0.0.5")
    assert str(e.value) == (
        "Endpoint host '10.0.0.5' resolves to a private address (10.0.0.5); refused to prevent SSRF"
    )
    assert isinstance(e.value, StorageError)  # shown to API users like other storage errors


@pytest.mark.parametrize("host", [PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946", "[2606:4700::1111]"])
def test_public_addresses_are_allowed(host):
    check_host(host)
    check_host(host, 443)


def test_public_ipv4_via_nat64_is_allowed():
    check_host("64:ff9b::5db8:d822")  # NAT64 of 93.184.216.34


# --- check_host: names -------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "minio.localhost",
        "metadata.google.internal",
        "db.internal",
        "x.local",
    ],
)
def test_local_names_are_refused_without_lookup(host, fake_dns):
    lookups = fake_dns({})
    with pytest.raises(SSRFError, match="local or internal name"):
        check_host(host)
    assert lookups == []


def test_dns_rebinding_to_metadata_is_refused(fake_dns):
    fake_dns({"innocent.example.com": ["169.254.169.254"]})
    with pytest.raises(SSRFError, match=r"'innocent.example.com' resolves to a cloud metadata address \(169"):
        check_host("innocent.example.com")


def test_any_private_address_among_several_is_refused(fake_dns):
    fake_dns({"mixed.example.com": [PUBLIC_IP, "2606:4700::1111", "::ffff:192.168.0.1"]})
    with pytest.raises(SSRFError, match="private"):
        check_host("mixed.example.com")


def test_name_resolving_to_public_addresses_is_allowed(fake_dns):
    lookups = fake_dns({"s3.example.com": [PUBLIC_IP, "2606:4700::1111"]})
    check_host("s3.example.com", 443)
    assert lookups == ["s3.example.com"]


def test_unresolvable_host_is_refused(fake_dns):
    fake_dns({})
    with pytest.raises(SSRFError, match="cannot resolve host"):
        check_host("no-such-host.example.com")


@pytest.mark.parametrize("host", ["", "  ", "[]"])
def test_empty_host_is_refused(host):
    with pytest.raises(SSRFError, match="empty"):
        check_host(host)


def test_disabled_flag_allows_everything(settings, fake_dns):
    settings.SSRF_PROTECTION_ENABLED = False
    lookups = fake_dns({})
    check_host("127.0.0.1")
    check_host("localhost")
    check_host("169.254.169.254")
    check_url("http://10.0.0.5:9000")
    guard_url("http://localhost:9000/bucket/key")
    guard = EndpointGuard(parse_url("http://10.0.0.5:9000"))
    guard.before_connect("http://10.0.0.5:9000/bucket/key")
    guard.check_peer("169.254.169.254", "10.0.0.5")
    assert lookups == []
    # Parsing is not an address policy: malformed URLs stay refused.
    with pytest.raises(SSRFError, match="scheme 'ftp'"):
        check_url("ftp://10.0.0.5")
    with pytest.raises(SSRFError, match="user name or password"):
        check_url("http://u:p@10.0.0.5:9000")


# --- check_url ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:9000", "loopback"),
        ("https://[::1]:9000/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("HTTP://LOCALHOST:9000", "local or internal name"),
        ("http://user:secret@10.0.0.5:9000", "user name or password"),
        ("http://user:secret@example.com", "user name or password"),
    ],
)
def test_check_url_refuses_non_public_hosts(url, reason):
    with pytest.raises(SSRFError, match=reason) as e:
        check_url(url)
    assert "secret" not in str(e.value)


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://10.0.0.1:6379/"])
def test_non_http_schemes_are_refused(url):
    scheme = url.split(":")[0]
    with pytest.raises(SSRFError, match=f"scheme '{scheme}'"):
        check_url(url)


@pytest.mark.parametrize(
    "url, message",
    [
        ("example.com/bucket", "must start with http:// or https://"),
        ("http://", "no host"),
        ("http:///bucket", "no host"),
        ("http://example.com:99999/", "invalid port"),
        ("http://[::1/", "not a valid IPv6"),
        ("http://127.0.0.1\\@example.com/", "backslash"),
        ("http://2130706433/", "not a valid IPv4"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(SSRFError, match=message):
        check_url(url)


def test_check_url_allows_public_endpoint():
    check_url(f"https://{PUBLIC_IP}")
    assert check_url(f"http://{PUBLIC_IP}:9000/some/path/") == Endpoint("http", PUBLIC_IP, 9000, "/some/path")


# --- trusted endpoints -------------------------------------------------------------------
@pytest.mark.parametrize("var", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_trusted_endpoint_from_aws_env_is_allowed(monkeypatch, var):
    monkeypatch.setenv(var, "http://minio:9000")
    assert is_trusted_endpoint("http://minio:9000")
    check_url("http://minio:9000")  # would not even resolve otherwise


def test_trusted_endpoints_list(monkeypatch):
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", " http://127.0.0.1:9000 , ,HTTPS://S3.Internal.Example/ ")
    trusted = [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000/",
        "https://s3.internal.example",
        "https://s3.internal.example:443/",
        "http://127.0.0.1:9000/other",  # trust is scheme, host and port: the path is the client's
    ]
    for url in trusted:
        assert is_trusted_endpoint(url), url
        check_url(url)
    # Same host but another port or scheme is not the configured endpoint.
    for url in ["http://127.0.0.1:9001", "https://127.0.0.1:9000"]:
        assert not is_trusted_endpoint(url), url
        with pytest.raises(SSRFError, match="loopback"):
            check_url(url)


def test_nothing_is_trusted_by_default():
    assert not is_trusted_endpoint("http://127.0.0.1:9000")
    assert not is_trusted_endpoint("")
    assert not is_trusted_endpoint("not a url")


def test_trusted_endpoints_are_read_at_call_time(monkeypatch):
    with pytest.raises(SSRFError):
        check_url("http://127.0.0.1:9000")
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", "http://127.0.0.1:9000")
    check_url("http://127.0.0.1:9000")


# --- guard_url ---------------------------------------------------------------------------
def test_guard_url_caches_allowed_hosts(fake_dns):
    lookups = fake_dns({"s3.example.com": [PUBLIC_IP]})
    guard_url("https://s3.example.com/bucket/a.json")
    guard_url("https://s3.example.com/bucket/b.json?versionId=1")
    guard_url("https://S3.EXAMPLE.COM:443/bucket/c.json")
    assert lookups == ["s3.example.com"]


def test_guard_url_cache_expires(fake_dns, monkeypatch):
    lookups = fake_dns({"s3.example.com": [PUBLIC_IP]})
    now = [1000.0]
    monkeypatch.setattr(ssrf.time, "monotonic", lambda: now[0])
    guard_url("https://s3.example.com/bucket/a.json")
    now[0] += 29
    guard_url("https://s3.example.com/bucket/a.json")
    assert len(lookups) == 1
    now[0] += 2
    guard_url("https://s3.example.com/bucket/a.json")
    assert len(lookups) == 2


def test_guard_url_does_not_cache_refusals(fake_dns):
    lookups = fake_dns({"rebind.example.com": ["127.0.0.1"]})
    for _ in range(2):
        with pytest.raises(SSRFError, match="loopback"):
            guard_url("http://rebind.example.com/bucket/key")
    assert len(lookups) == 2


def test_guard_url_refuses_like_check_url():
    with pytest.raises(SSRFError, match="metadata"):
        guard_url("http://169.254.169.254/latest/meta-data/iam/")
    with pytest.raises(SSRFError, match="scheme 'ftp'"):
        guard_url(f"ftp://{PUBLIC_IP}/")


# --- strict parsing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, parsed, rebuilt",
    [
        ("http://127.0.0.1:9000", ("http", "127.0.0.1", 9000, ""), "http://127.0.0.1:9000"),
        ("HTTPS://S3.Example.COM:443/", ("https", "s3.example.com", 443, ""), "https://s3.example.com"),
        (
            "https://s3.example.com:8443/a/b/",
            ("https", "s3.example.com", 8443, "/a/b"),
            "https://s3.example.com:8443/a/b",
        ),
        ("http://[2606:4700:0::1111]:9/", ("http", "2606:4700::1111", 9, ""), "http://[2606:4700::1111]:9"),
        ("http://minio_1:9000", ("http", "minio_1", 9000, ""), "http://minio_1:9000"),  # docker names
        ("http://example.com.", ("http", "example.com", 80, ""), "http://example.com"),
        ("http://bücher.example", ("http", "xn--bcher-kva.example", 80, ""), "http://xn--bcher-kva.example"),
        # Full-width letters and dots are what IDNA maps them to: the host the client will use.
        ("http://ｅｘａｍｐｌｅ.com", ("http", "example.com", 80, ""), "http://example.com"),
        ("http://127\u30020\u30020\u30021:9000", ("http", "127.0.0.1", 9000, ""), "http://127.0.0.1:9000"),
    ],
)
def test_parse_url_normalises_to_one_spelling(url, parsed, rebuilt):
    endpoint = parse_url(url)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path) == parsed
    assert endpoint.url == rebuilt
    assert parse_url(endpoint.url) == endpoint


@pytest.mark.parametrize(
    "url, message",
    [
        # user-info, in every spelling
        ("http://user:pw@example.com", "user name or password"),
        ("http://user@example.com", "user name or password"),
        ("http://@example.com", "user name or password"),
        ("http://a@b@example.com", "user name or password"),
        ("http://10.0.0.1:80@example.com/", "user name or password"),
        # parser differentials: urllib3 ends the authority at a backslash, urlsplit does not
        ("http://10.0.0.1\\@example.com/", "backslash"),
        ("http://example.com\\", "backslash"),
        ("http://example.com/a\\b", "backslash"),
        # whitespace, control and invisible characters anywhere
        (" http://example.com", "whitespace or control"),
        ("http://example.com ", "whitespace or control"),
        ("http://exa mple.com", "whitespace or control"),
        ("http://example.com\t/", "whitespace or control"),
        ("http://example.com\n", "whitespace or control"),
        ("http://example.com\r\nHost: x", "whitespace or control"),
        ("http://example.com\x00", "whitespace or control"),
        ("http://example.com\x7f", "whitespace or control"),
        ("http://example.com\x85", "whitespace or control"),
        ("http://example.com\u00a0", "whitespace or control"),
        ("http://exa\u200bmple.com", "whitespace or control"),  # zero-width space
        ("http://example.com\u202e", "whitespace or control"),  # bidi override
        ("http://example.com/\u3000", "whitespace or control"),
        # schemes
        ("example.com", "must start with http:// or https://"),
        ("//example.com", "must start with http:// or https://"),
        ("http:/example.com", "must start with http:// or https://"),
        ("http:example.com", "must start with http:// or https://"),
        ("ftp://example.com", "scheme 'ftp'"),
        ("redis://example.com:6379", "scheme 'redis'"),
        ("file:///etc/passwd", "scheme 'file'"),
        # hosts
        ("http://", "no host"),
        ("http://:9000", "is empty"),
        ("http://[::1", "not a valid IPv6"),
        ("http://[::1]x", "unexpected text after the IPv6"),
        ("http://[fe80::1%25eth0]/", "host name or address only"),
        ("http://[127.0.0.1]/", "not a valid IPv6"),
        ("http://[v1.fe]/", "not a valid IPv6"),
        ("http://::1/", "must be written in brackets"),
        ("http://2130706433/", "not a valid IPv4"),
        ("http://0x7f.1/", "not a valid IPv4"),
        ("http://0177.0.0.1/", "not a valid IPv4"),
        ("http://127.1/", "not a valid IPv4"),
        ("http://127.0.0.256/", "not a valid IPv4"),
        ("http://example.123/", "not a valid IPv4"),
        ("http://%31%32%37.0.0.1/", "host name or address only"),
        ("http://-example.com/", "not a valid host name"),
        ("http://exa..mple.com/", "not a valid host name"),
        ("http://ex\uff20ample.com/", "not a valid host name"),  # full-width "@" becomes "@"
        ("http://ex\uff3cample.com/", "not a valid host name"),  # full-width backslash
        ("http://" + "a" * 64 + ".com/", "not a valid host name"),
        # ports
        ("http://example.com:/", "invalid port"),
        ("http://example.com:0/", "invalid port"),
        ("http://example.com:65536/", "invalid port"),
        ("http://example.com:+80/", "invalid port"),
        ("http://example.com:80a/", "invalid port"),
        ("http://example.com:\u0668\u0660/", "invalid port"),  # Arabic-Indic digits
        ("http://example.com:1:2/", "must be written in brackets"),
        # anything else odd
        ("http://example.com/?x=1", "query or fragment"),
        ("http://example.com?", "query or fragment"),
        ("http://example.com#f", "query or fragment"),
        ("http://example.com/a/../b", "invalid path"),
        ("http://example.com/a/%2e%2e/b", "invalid path"),
        ("http://example.com/a//b", "invalid path"),
        ("http://example.com/a;b", "invalid path"),
        ("http://example.com/ä", "invalid path"),
        (None, "must start with http:// or https://"),
    ],
)
def test_parse_url_refuses_everything_odd(url, message):
    with pytest.raises(SSRFError, match=message) as e:
        parse_url(url)
    assert "pw" not in str(e.value) and "user:" not in str(e.value)  # the user-info is never quoted


@pytest.mark.parametrize(
    "text, host",
    [
        ("redis.example.com", "redis.example.com"),
        ("Redis.Example.COM.", "redis.example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[0:0::1]", "::1"),
    ],
)
def test_parse_host_accepts_names_and_addresses(text, host):
    assert parse_host(text) == host


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("redis://10.0.0.1", "host name or address only"),
        ("user:pw@10.0.0.1", "user name or password"),
        ("10.0.0.1:6379", "not a valid IPv6"),  # a colon: read as an IPv6 address, refused
        ("pw@10.0.0.1", "user name or password"),
        ("10.0.0.1/0", "host name or address only"),
        ("10.0.0.1#", "host name or address only"),
        ("10.0.0.1\\@example.com", "backslash"),
        ("10.0.0.1 ", "whitespace or control"),
        ("10.0.0.1\n", "whitespace or control"),
        ("\t10.0.0.1", "whitespace or control"),
        ("0x7f.1", "not a valid IPv4"),
        ("[::1", "not a valid IPv6"),
        ("fe80::1%eth0", "host name or address only"),
    ],
)
def test_parse_host_refuses_anything_but_a_host(text, message):
    with pytest.raises(SSRFError, match=message) as e:
        parse_host(text, what="Redis host")
    assert str(e.value).startswith("Redis host") and "pw" not in str(e.value)


def test_backslash_trick_is_not_a_trusted_endpoint(monkeypatch):
    """urlsplit reads the host of `http://10.0.0.1\\@trusted:9000` as `trusted`: it must not
    pass for the trusted endpoint (urllib3 would connect to 10.0.0.1)."""
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", "http://minio:9000")
    assert is_trusted_endpoint("http://minio:9000")
    for url in ["http://10.0.0.1\\@minio:9000", "http://10.0.0.1:9000\\@minio:9000/", "http://x@minio:9000"]:
        assert not is_trusted_endpoint(url)
        with pytest.raises(SSRFError, match="backslash|user name or password"):
            check_url(url)


def test_trusted_entries_that_do_not_parse_strictly_trust_nothing(monkeypatch):
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", "http://u:p@127.0.0.1:9000,http://127.0.0.1\\@127.0.0.2:9000,minio")
    for url in ["http://127.0.0.1:9000", "http://127.0.0.2:9000", "http://minio"]:
        assert not is_trusted_endpoint(url)


def test_trusted_redis_entries(monkeypatch):
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", "redis://10.0.0.7:6380,redis://cache")
    assert ssrf.is_trusted(Endpoint("redis", "10.0.0.7", 6380))
    assert ssrf.is_trusted(Endpoint("redis", "cache", 6379))
    assert not ssrf.is_trusted(Endpoint("redis", "10.0.0.7", 6379))
    assert not ssrf.is_trusted(Endpoint("http", "10.0.0.7", 6380))


# --- connect-time guards of one endpoint ---------------------------------------------------
def test_guard_of_an_untrusted_endpoint_is_the_public_address_rule(fake_dns):
    fake_dns({"s3.example.com": [PUBLIC_IP]})
    guard = EndpointGuard(parse_url("https://s3.example.com"))
    assert not guard.trusted
    guard.before_connect("https://s3.example.com/bucket/key?x-id=GetObject")
    guard.check_peer(PUBLIC_IP, "s3.example.com")
    with pytest.raises(SSRFError, match="loopback"):
        guard.check_peer("127.0.0.1", "s3.example.com")


def test_guard_of_a_trusted_endpoint_checks_the_peer_too(monkeypatch, fake_dns):
    """Trust covers the trusted host's own addresses, not what a name or redirect leads to."""
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", "http://minio.example:9000")
    lookups = fake_dns({"minio.example": ["10.0.0.7"], "elsewhere.example": ["10.0.0.8"]})
    guard = EndpointGuard(parse_url("http://minio.example:9000"))
    assert guard.trusted
    guard.before_connect("http://minio.example:9000/bucket/key")  # its own host: no lookup
    assert lookups == []
    guard.check_peer("10.0.0.7", "minio.example")  # an address of the trusted host
    guard.check_peer("::ffff:10.0.0.7", "minio.example")
    guard.check_peer(PUBLIC_IP, "minio.example")  # public: what any endpoint may reach
    with pytest.raises(
        SSRFError, match=r"'minio.example' connected to a private address \(10.0.0.8\), which is not an"
    ):
        guard.check_peer("10.0.0.8", "minio.example")
    with pytest.raises(SSRFError, match="metadata"):
        guard.check_peer("169.254.169.254", "minio.example")
    # Another host (a redirect, another port) is judged like any untrusted endpoint.
    with pytest.raises(SSRFError, match="private"):
        guard.before_connect("http://elsewhere.example:9000/bucket/key")
    with pytest.raises(SSRFError, match="private"):
        guard.before_connect("http://minio.example:9001/bucket/key")
    with pytest.raises(SSRFError, match="private"):
        guard.check_peer("10.0.0.7", "elsewhere.example")


# --- the server's own identity -----------------------------------------------------------
def test_empty_credentials_are_refused_unless_the_operator_allows_them(settings):
    settings.STORAGE_SERVER_CREDENTIALS_ENABLED = False
    with pytest.raises(InvalidCredentials, match="STORAGE_SERVER_CREDENTIALS_ENABLED=true") as e:
        ssrf.require_credentials("account_name and account_key are")
    assert str(e.value).startswith("account_name and account_key are required")
    settings.STORAGE_SERVER_CREDENTIALS_ENABLED = True
    ssrf.require_credentials("account_name and account_key are")
