"""SSRF through user-given endpoints and hosts, against real servers on loopback (moto, a
private redis-server) through the API.

A URL is parsed once, strictly, and the client connects to the URL rebuilt from what was
checked; trusted endpoints keep their connect-time peer check; the user-info part of a typed
endpoint is refused and never shows up in an answer, a log line or a stored traceback.
`traps` (tests/fixtures/listeners.py) are loopback listeners that record every connection
and every byte sent to them: they prove what was (not) sent.
"""

import json
import logging
import socket
import traceback

import pytest

from io_storages.client import StorageError
from io_storages.redis.models import RedisImportStorage
from io_storages.s3.client import S3Client
from io_storages.s3.models import S3ImportStorage
from tests.api_errors import error_text
from tests.fixtures.redis_server import REDIS_PASSWORD
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_SECRET_KEY, s3_config
from tests.fixtures.servers import free_port
from tests.storage_helpers import create_storage, put, sync

pytestmark = pytest.mark.django_db

SECRET = "pw-in-the-url-3c1f9a"
PATHS = ("/api/storages/s3/", "/api/storages/s3/validate", "/api/storages/export/s3/")


def errors(response) -> str:
    return error_text(response, 400)


def host_port(url):
    return url.split("://", 1)[1].rstrip("/")


# --- A: the host that is checked is the host that is connected to -------------------------------
def test_a_backslash_before_a_trusted_endpoint_reaches_nothing(
    alice, project, s3_server, s3_bucket, ssrf_on, traps, monkeypatch
):
    """urlsplit reads `http://<trap>\\@<moto>` as moto (trusted), urllib3 as the trap."""
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", s3_server)
    trap = traps(host="127.0.0.2")
    for typed in (f"http://127.0.0.2:{trap.port}\\@{host_port(s3_server)}", f"{trap.url}\\@{host_port(s3_server)}/"):
        config = {"project": project.id, **s3_config(typed, s3_bucket)}
        for path in PATHS:
            response = alice.post(path, config, format="json")
            assert trap.connections == 0 and trap.sent == b"", path
            assert "s3_endpoint contains a backslash" in errors(response), path
    assert not S3ImportStorage.objects.exists()
    # The trusted endpoint itself, typed plainly, is fine.
    put(s3_server, s3_bucket, "a.jpg", b"x")
    create_storage(alice, project, s3_config(s3_server, s3_bucket))


def test_a_stored_storage_with_such_an_endpoint_syncs_to_nothing(
    alice, project, s3_server, s3_bucket, ssrf_on, traps, monkeypatch
):
    """A storage saved before the checks were strict (a row in the database): its sync fails
    with the reason, and nothing reaches the address urllib3 would have read."""
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", s3_server)
    trap = traps(host="127.0.0.2")
    typed = f"{trap.url}\\@{host_port(s3_server)}"
    storage = S3ImportStorage.objects.create(project=project, **s3_config(typed, s3_bucket))
    result = sync(alice, {"id": storage.pk})
    assert trap.connections == 0
    assert result["status"] == "failed"
    storage.refresh_from_db()
    assert "s3_endpoint contains a backslash" in storage.traceback


@pytest.mark.parametrize(
    "typed",
    [
        "http://{trap}#@{moto}",
        "http://{trap}?@{moto}",
        "http://{trap}/@{moto}",
        "http://x@{moto}",
        "http://\t{moto}",  # (the API trims whitespace around values: it never gets here)
        "http://{moto}%2F@{trap}",
        "http://{moto}\x01",
        "http://{moto}/a b",
    ],
)
def test_other_spellings_around_a_trusted_endpoint_are_refused(
    alice, project, s3_server, s3_bucket, ssrf_on, traps, monkeypatch, typed
):
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", s3_server)
    trap = traps(host="127.0.0.2")
    typed = typed.format(trap=f"127.0.0.2:{trap.port}", moto=host_port(s3_server))
    config = {"project": project.id, **s3_config(typed, s3_bucket)}
    for path in PATHS:
        errors(alice.post(path, config, format="json"))
    assert trap.connections == 0


@pytest.fixture
def moto_on_a_name(s3_server, monkeypatch):
    """answers(list) -> the endpoint `http://minio:<moto port>`, whose lookups answer the listed
    addresses in turn (then the last one again and again). A name without dots: moto would
    read the first label of a dotted one as a bucket name."""
    real_getaddrinfo = socket.getaddrinfo
    port = int(s3_server.rsplit(":", 1)[1])

    def install(answers):
        answers = list(answers)

        def getaddrinfo(host, *args, **kwargs):
            if host == "minio":
                host = answers.pop(0) if len(answers) > 1 else answers[0]
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return f"http://minio:{port}"

    return install


def test_a_trusted_endpoint_keeps_working_with_the_peer_check(
    alice, project, s3_server, s3_bucket, ssrf_on, moto_on_a_name, monkeypatch
):
    endpoint = moto_on_a_name(["127.0.0.1"])
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", endpoint)
    put(s3_server, s3_bucket, "a.jpg", b"x")
    storage = create_storage(alice, project, {**s3_config(endpoint, s3_bucket), "use_blob_urls": True})
    assert sync(alice, storage)["status"] == "completed"
    assert project.tasks.count() == 1


def test_a_trusted_name_answering_another_address_to_the_client_sends_it_nothing(
    alice, project, s3_server, s3_bucket, ssrf_on, moto_on_a_name, traps, monkeypatch
):
    """Trust covers the trusted host, not whatever its name leads to: a name that answers the
    client an address it does not answer again (DNS rebinding) is refused on the connected
    socket, before anything is sent, although the endpoint is trusted."""
    port = int(s3_server.rsplit(":", 1)[1])
    trap = traps(host="127.0.0.2", port=port)  # same port as moto, another loopback address
    # urllib3's lookup, the guard's look-up again, and so on for each (re)try.
    endpoint = moto_on_a_name(["127.0.0.2", "127.0.0.1"] * 20)
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", endpoint)
    config = {"project": project.id, **s3_config(endpoint, s3_bucket)}
    for path in PATHS:
        response = alice.post(path, config, format="json")
        assert trap.sent == b"", path  # connected (the check runs on the socket), never sent a byte
        assert "'minio' connected to a loopback address (127.0.0.2), which is not an address" in errors(response)


# --- A: Redis hosts are hosts --------------------------------------------------------------
@pytest.mark.parametrize(
    "host, message",
    [
        (f"default:{SECRET}@127.0.0.1", "Redis host must be a host name or address only; it contains a user name"),
        (f"{SECRET}@127.0.0.1", "Redis host must be a host name or address only; it contains a user name"),
        ("redis://127.0.0.1", "Redis host must be a host name or address only"),
        ("127.0.0.1/0", "Redis host must be a host name or address only"),
        ("127.0.0.1\\@127.0.0.2", "Redis host contains a backslash"),
        ("127.0.0.1 x", "Redis host contains whitespace or control characters"),
        ("127.0.0.1\r\nCONFIG SET dir /tmp", "Redis host contains whitespace or control characters"),
        ("\x01127.0.0.1", "Redis host contains whitespace or control characters"),
        ("127.0.0.1\u200b", "Redis host contains whitespace or control characters"),
        ("0x7f.1", "Redis host is not a valid IPv4 address"),
        ("2130706433", "Redis host is not a valid IPv4 address"),
        ("[127.0.0.1]", "Redis host is not a valid IPv6 address"),
    ],
)
def test_a_redis_host_must_be_a_plain_host(alice, project, redis_server, ssrf_on, monkeypatch, host, message):
    # Even next to a trusted Redis: nothing odd is read as that host.
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", f"redis://127.0.0.1:{redis_server.port}")
    config = {"project": project.id, "host": host, "port": redis_server.port, "password": REDIS_PASSWORD, "path": "p"}
    for path in ("/api/storages/redis/", "/api/storages/redis/validate", "/api/storages/export/redis/"):
        text = errors(alice.post(path, config, format="json"))
        assert message in text, text
        assert SECRET not in text and REDIS_PASSWORD not in text
    assert not RedisImportStorage.objects.exists()


def test_a_trusted_redis_typed_plainly_works(alice, project, redis_server, ssrf_on, monkeypatch):
    from tests.fixtures.redis_server import redis_admin

    redis_admin(redis_server.port).set("plain/a.json", json.dumps({"image": "x"}))
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", f"redis://127.0.0.1:{redis_server.port}")
    config = {"host": "127.0.0.1", "port": redis_server.port, "password": REDIS_PASSWORD, "path": "plain", "db": 1}
    storage = create_storage(alice, project, config, kind="redis")
    assert sync(alice, storage, kind="redis")["status"] == "completed"


# --- D: the user-info of a typed endpoint goes nowhere --------------------------------------
@pytest.fixture
def every_log(caplog):
    """Everything logged, botocore and urllib3 debug lines included."""
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "io_storages", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.parametrize("protection", [True, False])
def test_userinfo_in_an_endpoint_is_refused_and_never_repeated(
    alice, project, s3_bucket, settings, traps, every_log, protection
):
    settings.SSRF_PROTECTION_ENABLED = protection  # refused by the parser, whatever the policy
    trap = traps()
    for typed in (f"http://user:{SECRET}@{host_port(trap.url)}", f"http://{SECRET}@{host_port(trap.url)}/"):
        config = {"project": project.id, **s3_config(typed, s3_bucket)}
        for path in PATHS:
            response = alice.post(path, config, format="json")
            assert SECRET not in response.content.decode() and SECRET not in every_log.text, path
            assert trap.connections == 0, path
            assert "s3_endpoint must not contain a user name or password" in errors(response)
    assert not S3ImportStorage.objects.exists()


def test_a_stored_endpoint_with_userinfo_fails_its_sync_without_repeating_it(
    alice, project, s3_bucket, settings, traps, every_log
):
    settings.SSRF_PROTECTION_ENABLED = False
    trap = traps()
    storage = S3ImportStorage.objects.create(
        project=project, **s3_config(f"http://user:{SECRET}@{host_port(trap.url)}", s3_bucket)
    )
    result = sync(alice, {"id": storage.pk})
    storage.refresh_from_db()
    assert SECRET not in storage.traceback and SECRET not in result["traceback"] and SECRET not in every_log.text
    assert trap.connections == 0
    assert result["status"] == "failed" and "user name or password" in storage.traceback


def test_s3_client_errors_never_name_the_userinfo(every_log):
    """S3Client used directly (client_for refuses such endpoints): its messages name the
    endpoint without the user-info."""
    port = free_port()  # nothing listens there
    client = S3Client(
        "some-bucket",
        endpoint_url=f"http://user:{SECRET}@127.0.0.1:{port}",
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    with pytest.raises(StorageError) as exc_info:
        client.check()
    message = str(exc_info.value)
    assert f"Cannot reach S3 endpoint 'http://127.0.0.1:{port}'" in message
    assert SECRET not in message and "user:" not in message
    # What a formatted traceback shows: the botocore exception (naming the URL) is not chained.
    assert exc_info.value.__cause__ is None and exc_info.value.__suppress_context__
    assert SECRET not in "".join(traceback.format_exception(exc_info.value))
