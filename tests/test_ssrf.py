"""io_storages.ssrf: the SSRF guard for user-typed hosts and endpoint URLs.

No network: IP literals are parsed by getaddrinfo locally; DNS names are either refused
before any lookup (localhost, *.internal) or resolved through a monkeypatched getaddrinfo.
"""

import socket

import pytest

from io_storages import ssrf
from io_storages.client import StorageError
from io_storages.ssrf import SSRFError, check_host, check_url, guard_url, is_trusted_endpoint

PUBLIC_IP = "93.184.216.34"


@pytest.fixture(autouse=True)
def _ssrf_on(settings, monkeypatch):
    """Protection on, no trusted endpoints from the developer's environment, empty cache."""
    settings.SSRF_PROTECTION_ENABLED = True
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SSRF_TRUSTED_ENDPOINTS"):
        monkeypatch.delenv(var, raising=False)
    ssrf.clear_guard_cache()
    yield
    ssrf.clear_guard_cache()


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
    check_url("ftp://10.0.0.5")
    guard_url("http://localhost:9000/bucket/key")
    assert lookups == []


# --- check_url ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:9000", "loopback"),
        ("https://[::1]:9000/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("HTTP://LOCALHOST:9000", "local or internal name"),
        ("http://user:secret@10.0.0.5:9000", "private"),
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
        ("example.com/bucket", "no scheme"),
        ("http://", "no host"),
        ("http:///bucket", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ("http://127.0.0.1\\@example.com/", "backslash"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(SSRFError, match=message):
        check_url(url)


def test_check_url_allows_public_endpoint():
    check_url(f"https://{PUBLIC_IP}")
    check_url(f"http://{PUBLIC_IP}:9000/some/path?x=1")


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
    ]
    for url in trusted:
        assert is_trusted_endpoint(url), url
        check_url(url)
    # Same host but another port, scheme or path is not the configured endpoint.
    for url in ["http://127.0.0.1:9001", "https://127.0.0.1:9000", "http://127.0.0.1:9000/other"]:
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
