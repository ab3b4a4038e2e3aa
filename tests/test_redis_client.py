"""RedisClient against a real redis-server (tests/fixtures/redis_server.py): listing by SCAN
pages, ranged reads, writes from threads, error messages, and the SSRF guard of get_client."""

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis.client import Pipeline

from io_storages.client import (
    AccessDenied,
    BucketNotFound,
    InvalidCredentials,
    ObjectNotFound,
    RangeNotSatisfiable,
    StorageError,
)
from io_storages.redis.client import RedisClient, resolve_checked
from io_storages.redis.models import RedisImportStorage
from io_storages.ssrf import SSRFError
from tests.api_errors import error_text
from tests.fixtures.redis_server import REDIS_PASSWORD, redis_admin
from tests.fixtures.servers import HOST, free_port

DB = 3  # not the contract's db, so listings here only see this module's keys


@pytest.fixture
def admin(redis_server):
    return redis_admin(redis_server.port, DB)


@pytest.fixture
def loc():
    return f"c{uuid.uuid4().hex}"


@pytest.fixture
def make_client(redis_server):
    def make(path="", **options):
        return RedisClient(
            path, **{"host": HOST, "port": redis_server.port, "password": REDIS_PASSWORD, "db": DB, **options}
        )

    return make


# --- listing -------------------------------------------------------------------------------
def test_list_objects_gives_string_keys_with_sizes_top_level_or_recursive(make_client, admin, loc):
    admin.set(f"{loc}/a.txt", b"abc")
    admin.set(f"{loc}/sub/b.txt", b"12345")
    admin.set(f"{loc}/folder/", b"")  # a "folder" placeholder
    admin.hset(f"{loc}/hash", "f", "v")  # not a string: not an object
    admin.rpush(f"{loc}/list", "x")
    admin.set(f"{loc}x/other", b"")  # shares the text prefix, not the path
    client = make_client(loc)

    deep = {o.key: o.size for o in client.list_objects(f"{loc}/", recursive=True)}
    assert deep == {f"{loc}/a.txt": 3, f"{loc}/sub/b.txt": 5}
    top = list(client.list_objects(f"{loc}/", recursive=False))
    assert [(o.key, o.size, o.last_modified, o.etag) for o in top] == [(f"{loc}/a.txt", 3, None, None)]


def test_glob_characters_in_the_prefix_match_literally(make_client, admin, loc):
    odd = f"{loc}/we*rd[1]?\\"
    admin.set(f"{odd}/a", b"1")
    admin.set(f"{loc}/weXXrd1Z\\/b", b"2")  # what the unescaped glob would also match
    assert [o.key for o in make_client().list_objects(odd)] == [f"{odd}/a"]


def test_listing_costs_one_pipeline_per_scan_page(make_client, admin, loc, monkeypatch):
    admin.mset({f"{loc}/k{i:04}": b"x" * (i % 7) for i in range(2500)})
    calls = {"scan": 0, "pipeline": 0}
    client = make_client()
    real_scan, real_execute = client._redis.scan, Pipeline.execute

    def counting_scan(*args, **kwargs):
        calls["scan"] += 1
        return real_scan(*args, **kwargs)

    def counting_execute(self, *args, **kwargs):
        calls["pipeline"] += 1
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(client._redis, "scan", counting_scan)
    monkeypatch.setattr(Pipeline, "execute", counting_execute)
    listed = list(client.list_objects(f"{loc}/"))
    assert sorted(o.key for o in listed) == [f"{loc}/k{i:04}" for i in range(2500)]
    assert all(o.size == int(o.key[-4:]) % 7 for o in listed)
    assert 3 <= calls["scan"] and calls["pipeline"] <= calls["scan"]


# --- reading -------------------------------------------------------------------------------
def test_open_reads_whole_values_and_inclusive_ranges(make_client, admin, loc):
    admin.set(f"{loc}/v", b"0123456789")
    client = make_client(loc)
    with client.open(f"{loc}/v") as whole:
        assert (whole.start, whole.end, whole.total_size, whole.content_length) == (None, None, 10, 10)
        assert whole.body.read(3) == b"012" and whole.body.read() == b"3456789"
    cases = {(2, 5): b"2345", (8, None): b"89", (5, 100): b"56789", (None, 0): b"0"}
    for (start, end), expected in cases.items():
        with client.open(f"{loc}/v", start, end) as part:
            assert part.read() == expected
            assert (part.start, part.end, part.total_size) == (start or 0, (start or 0) + len(expected) - 1, 10)
    for start, end in ((10, None), (3, 2)):
        with pytest.raises(RangeNotSatisfiable):
            client.open(f"{loc}/v", start, end)
    assert client.stat(f"{loc}/v").size == 10
    assert client.read(f"{loc}/v") == b"0123456789"


def test_large_values_are_read_a_megabyte_at_a_time(make_client, admin, loc, monkeypatch):
    value = bytes(range(256)) * 14_000  # 3.4 MB
    admin.set(f"{loc}/big", value)
    replies = []
    real_execute = Pipeline.execute

    def recording_execute(self, *args, **kwargs):
        result = real_execute(self, *args, **kwargs)
        replies.append(max((len(r) for r in result if isinstance(r, bytes)), default=0))
        return result

    monkeypatch.setattr(Pipeline, "execute", recording_execute)
    client = make_client(loc)
    with client.open(f"{loc}/big") as stream:
        chunks = list(stream.chunks(64 * 1024))
    assert b"".join(chunks) == value and max(map(len, chunks)) == 64 * 1024
    assert len(replies) == 4 and max(replies) == 1024 * 1024  # never the whole value at once
    with client.open(f"{loc}/big", 500_000, 2_600_000) as part:
        assert part.read() == value[500_000:2_600_001] and part.content_length == 2_100_001


def test_a_value_whose_length_changes_mid_read_fails_the_read(make_client, admin, loc):
    admin.set(f"{loc}/v", b"a" * 3_000_000)
    with make_client(loc).open(f"{loc}/v") as stream:
        assert len(stream.body.read(1024 * 1024)) == 1024 * 1024
        admin.set(f"{loc}/v", b"b" * 10)
        with pytest.raises(StorageError, match="changed while it was being read"):
            stream.body.read(1024 * 1024)


def test_empty_missing_and_non_string_keys(make_client, admin, loc):
    admin.set(f"{loc}/empty", b"")
    admin.hset(f"{loc}/hash", "f", "v")
    client = make_client(loc)
    assert client.read(f"{loc}/empty") == b""
    with pytest.raises(RangeNotSatisfiable):
        client.open(f"{loc}/empty", 0)
    for call in (client.open, client.stat):
        with pytest.raises(ObjectNotFound, match="does not exist"):
            call(f"{loc}/missing")
        with pytest.raises(StorageError, match="holds a hash") as error:
            call(f"{loc}/hash")
        assert not isinstance(error.value, ObjectNotFound)


# --- writing, links --------------------------------------------------------------------------
def test_write_and_delete_from_many_threads(make_client, admin, loc):
    client = make_client(loc)
    keys = [f"{loc}/out/{i}" for i in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: client.write(k, k.encode()), keys))
    assert admin.mget(keys) == [k.encode() for k in keys]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(client.delete, keys))
    client.delete(keys[0])  # deleting a missing key is not an error
    assert admin.exists(*keys) == 0


def test_uris_name_the_key_and_presigning_is_refused(make_client):
    client = make_client("images")
    assert RedisImportStorage(path="images").uri_for("images/a.jpg") == "redis://images/a.jpg"
    with pytest.raises(StorageError, match="cannot presign"):
        client.presign("images/a.jpg", 60)


# --- check and errors ------------------------------------------------------------------------
def test_check_needs_a_key_under_the_prefix_only_when_given(make_client, admin, loc):
    admin.set(f"{loc}/t/a.json", b"{}")
    client = make_client(f"{loc}/t")
    client.check()
    client.check(prefix=f"{loc}/t/")
    with pytest.raises(StorageError, match=f"No objects found in Redis db {DB} under path '{loc}/u/'"):
        client.check(prefix=f"{loc}/u/")


def test_wrong_password_is_named_without_showing_it(make_client):
    with pytest.raises(InvalidCredentials, match="check password") as error:
        make_client(password="wrong-secret-value").check()
    assert "wrong-secret-value" not in str(error.value)


def test_unreachable_server_and_missing_db_are_reported_quickly(make_client):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(StorageError, match=f"^Can't connect to Redis server. Nothing answered at {HOST}:{port} "):
        make_client(port=port).check()
    assert time.monotonic() - started < 2
    with pytest.raises(BucketNotFound, match="no database 99"):
        make_client(db=99).check()


# --- SSRF: the user-typed host ------------------------------------------------------------------
@pytest.mark.django_db
def test_creating_a_storage_on_a_loopback_host_is_refused(alice, project, redis_server, settings):
    settings.SSRF_PROTECTION_ENABLED = True
    config = {"project": project.id, "path": "x", "host": "127.0.0.1", "port": redis_server.port, "db": DB}
    for url in ("/api/storages/redis", "/api/storages/export/redis"):
        response = alice.post(url, config, format="json")
        assert "SSRF" in error_text(response, 400)


@pytest.fixture
def fake_dns(monkeypatch):
    """fake_dns(name, [answers...]): each lookup of `name` takes the next answer; other names
    (IP literals) resolve for real. Returns the list of looked-up names."""
    real = socket.getaddrinfo
    lookups = []

    def install(name, answers):
        answers = iter(answers)

        def getaddrinfo(host, port, *args, **kwargs):
            if host != name:
                return real(host, port, *args, **kwargs)
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def test_dns_rebinding_between_check_and_connect_is_refused(settings, fake_dns):
    settings.SSRF_PROTECTION_ENABLED = True
    fake_dns("redis.example.com", ["93.184.216.34", "127.0.0.1"])  # public, then loopback
    storage = RedisImportStorage(host="redis.example.com", port=6379, path="p")
    with pytest.raises(SSRFError, match="loopback"):
        storage.get_client()


def test_the_client_connects_to_the_address_that_was_checked(redis_server, fake_dns):
    lookups = fake_dns("redis.example.com", ["127.0.0.1", "127.0.0.2"])  # nothing on .2
    checked = []
    address = resolve_checked("redis.example.com", redis_server.port, lambda a, p: checked.append(a))
    client = RedisClient(
        "", host="redis.example.com", port=redis_server.port, password=REDIS_PASSWORD, db=DB, address=address
    )
    client.check()  # reaches the server: no second lookup that would answer .2
    assert checked == ["127.0.0.1"] and lookups == ["redis.example.com"]


def test_an_operator_trusted_redis_passes_the_guard(settings, monkeypatch, redis_server):
    settings.SSRF_PROTECTION_ENABLED = True
    monkeypatch.setenv("SSRF_TRUSTED_ENDPOINTS", f"redis://{HOST}:{redis_server.port}")
    storage = RedisImportStorage(host=HOST, port=redis_server.port, password=REDIS_PASSWORD, db=DB, path="p")
    storage.get_client().check()
    storage.port = free_port()  # trust is per host *and* port
    with pytest.raises(SSRFError):
        storage.get_client()


def test_commands_refused_by_an_acl_are_access_denied(make_client, admin, loc):
    user = f"u{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, passwords=["+user-pw"], keys=["*"], commands=["+@all", "-type", "-getrange"])
    admin.set(f"{loc}/a", b"1")
    client = make_client(loc)
    # Storages have no username field: log this client's connections in as the ACL user.
    client._redis.connection_pool.connection_kwargs.update(username=user, password="user-pw")
    calls = (
        lambda: list(client.list_objects(f"{loc}/")),
        lambda: client.open(f"{loc}/a"),
        lambda: client.stat(f"{loc}/a"),
    )
    for call in calls:  # a refused TYPE/GETRANGE is an error, not a key to skip
        with pytest.raises(AccessDenied, match="ACL"):
            call()
