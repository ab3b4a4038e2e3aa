"""S3Client against a real moto S3 server on loopback (no mocks inside the process)."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import urllib3
from botocore.response import StreamingBody

from io_storages.client import (
    BucketNotFound,
    InvalidCredentials,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    StorageError,
)
from io_storages.s3.client import S3Client, _Body, _parse_timestamp
from tests.fixtures.s3 import S3_REGION, moto_argv, s3_admin, s3_config
from tests.fixtures.servers import free_port, running_server

DATA = b"0123456789"


def make_client(endpoint, bucket, **kwargs):
    """An S3Client with the keys of an S3 storage on `endpoint` (the client's `endpoint_url`
    is the storage's `s3_endpoint`), then `kwargs`."""
    params = s3_config(endpoint, bucket, **kwargs)
    return S3Client(params.pop("bucket"), endpoint_url=params.pop("s3_endpoint"), **params)


@pytest.fixture
def client(s3_server, s3_bucket):
    return make_client(s3_server, s3_bucket)


@pytest.fixture
def admin(s3_server):
    return s3_admin(s3_server)


def put(admin, bucket, key, body=DATA, **kwargs):
    admin.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)


# --- listing -------------------------------------------------------------------
def test_list_recursive_and_top_level_skip_folder_keys(client, admin, s3_bucket):
    for key in ["a.json", "dir/", "dir/b.json", "dir/sub/", "dir/sub/c.json", "other/d.json"]:
        put(admin, s3_bucket, key, b"" if key.endswith("/") else b"{}")

    assert [o.key for o in client.list_objects()] == ["a.json", "dir/b.json", "dir/sub/c.json", "other/d.json"]
    assert [o.key for o in client.list_objects("dir/")] == ["dir/b.json", "dir/sub/c.json"]
    assert [o.key for o in client.list_objects(recursive=False)] == ["a.json"]
    assert [o.key for o in client.list_objects("dir/", recursive=False)] == ["dir/b.json"]

    info = next(iter(client.list_objects("a.json")))
    assert info.size == 2 and info.last_modified is not None
    assert info.etag and not info.etag.startswith('"')


def test_dates_match_botocores_own_parser(client, admin, s3_bucket):
    # The client swaps botocore's dateutil parser for the standard library's; `admin` is a
    # plain boto3 client, so both parsers must agree on listings (ISO 8601) and HEAD (RFC 7231).
    put(admin, s3_bucket, "dated.txt")
    listed = admin.list_objects_v2(Bucket=s3_bucket, Prefix="dated.txt")["Contents"][0]["LastModified"]
    headed = admin.head_object(Bucket=s3_bucket, Key="dated.txt")["LastModified"]
    assert next(iter(client.list_objects("dated.txt"))).last_modified == listed
    assert client.stat("dated.txt").last_modified == headed
    assert client.stat("dated.txt").last_modified.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-24T18:45:09.123Z",
        "2026-11-24T18:45:09+02:00",
        "Tue, 24 Nov 2026 18:45:09 GMT",
        1795200309,
        "1795200309",
    ],
)
def test_parse_timestamp_agrees_with_botocore(value):
    from botocore.utils import parse_timestamp

    assert _parse_timestamp(value) == parse_timestamp(value)


def test_list_paginates_beyond_1000_keys(s3_server, admin, s3_bucket):
    keys = [f"many/{i:05d}.txt" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: put(admin, s3_bucket, k, b"x"), keys))
    requests_sent = []
    client = make_client(s3_server, s3_bucket, before_connect=requests_sent.append)
    assert [o.key for o in client.list_objects("many/")] == keys
    assert len(requests_sent) == 2  # two pages of at most 1000 keys


def test_list_missing_bucket(s3_server):
    with pytest.raises(BucketNotFound, match="Bucket 'no-such-bucket-here' does not exist"):
        list(make_client(s3_server, "no-such-bucket-here").list_objects())


# --- reading -------------------------------------------------------------------
def test_stat(client, admin, s3_bucket):
    put(admin, s3_bucket, "f.txt", ContentType="text/plain")
    info = client.stat("f.txt")
    assert (info.key, info.size, info.content_type) == ("f.txt", 10, "text/plain")
    assert info.etag and '"' not in info.etag and info.last_modified is not None
    with pytest.raises(ObjectNotFound, match="missing.txt"):
        client.stat("missing.txt")


def test_chunks_are_read_as_they_arrive_and_never_exceed_the_size(client, admin, s3_bucket):
    data = bytes(range(256)) * 4096  # 1 MB
    put(admin, s3_bucket, "big.bin", data)
    with client.open("big.bin") as stream:
        chunks = list(stream.chunks(64 * 1024))
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 64 * 1024


@pytest.mark.parametrize("reader", ["chunks (read1)", "read"])
def test_a_body_cut_short_is_an_error_not_a_smaller_object(reader):
    # What urllib3 sees when S3 drops the connection after 50 of 100 promised bytes.
    raw = urllib3.HTTPResponse(body=io.BytesIO(b"x" * 50), preload_content=False)
    body = _Body(StreamingBody(raw, 100), 100, "'cut.bin'")
    stream = ObjectStream(info=ObjectInfo("cut.bin"), body=body)
    with pytest.raises(StorageError, match="closed the connection with 50 bytes of 'cut.bin' unread"):
        if reader == "read":
            while body.read(16):
                pass
        else:
            list(stream.chunks(16))


def test_presign_url_fetches_the_bytes(client, admin, s3_bucket):
    put(admin, s3_bucket, "dir/p q.json", b'{"a": 1}')
    url = client.presign("dir/p q.json", 60, content_type="application/json")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url  # SigV4, not SigV2
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b'{"a": 1}'
    assert response.headers["Content-Type"] == "application/json"


# --- writing -------------------------------------------------------------------
def test_write_with_sse_aes256(client, admin, s3_bucket):
    client.write("out/1.json", b'{"x": 1}')
    head = admin.head_object(Bucket=s3_bucket, Key="out/1.json")
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head
    assert head["ContentType"] == "application/json"
    assert client.read("out/1.json") == b'{"x": 1}'


def test_write_with_sse_kms(s3_server, s3_bucket, admin):
    client = make_client(s3_server, s3_bucket, sse_kms_key_id="alias/my-key")
    client.write("out/2.txt", b"hello", content_type="text/plain")
    head = admin.head_object(Bucket=s3_bucket, Key="out/2.txt")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == "alias/my-key"
    assert head["ContentType"] == "text/plain"


def test_empty_strings_are_none(s3_server, s3_bucket, admin, monkeypatch):
    # "" for endpoint_url lets boto3 take AWS_ENDPOINT_URL_S3; "" for the KMS key means AES256.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    client = make_client("", s3_bucket, sse_kms_key_id="", aws_session_token="", region_name=S3_REGION)
    client.write("e.json", b"{}")
    assert admin.head_object(Bucket=s3_bucket, Key="e.json")["ServerSideEncryption"] == "AES256"


def test_delete(client, admin, s3_bucket):
    put(admin, s3_bucket, "d.txt")
    client.delete("d.txt")
    with pytest.raises(ObjectNotFound):
        client.stat("d.txt")
    client.delete("d.txt")  # missing key: not an error
    client.delete("never-existed.txt")


# --- check -----------------------------------------------------------------------
def test_check_ok(client, admin, s3_bucket):
    client.check()  # an empty bucket is fine without a prefix
    put(admin, s3_bucket, "data/1.json")
    client.check("data/")
    client.check("")


def test_check_missing_bucket(s3_server):
    with pytest.raises(BucketNotFound, match="^Cannot find bucket missing-bucket-xyz in S3$"):  # Label Studio's
        make_client(s3_server, "missing-bucket-xyz").check()


def test_check_empty_prefix(client, admin, s3_bucket):
    put(admin, s3_bucket, "data/1.json")
    with pytest.raises(
        StorageError,
        match=f"^s3://{s3_bucket}/nothing/ not found. No objects found in bucket '{s3_bucket}' under prefix",
    ):
        client.check("nothing/")


def test_check_unreachable_endpoint_hides_secrets():
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = make_client(
        endpoint, "some-bucket", aws_secret_access_key="TOP-SECRET-KEY", aws_session_token="TOP-SECRET-TOKEN"
    )
    with pytest.raises(StorageError) as exc_info:
        client.check("p/")
    message = str(exc_info.value)
    assert endpoint in message
    assert "TOP-SECRET" not in message and "TOP-SECRET" not in repr(exc_info.value)
    assert exc_info.value.__cause__ is None  # the botocore exception is not chained


def test_invalid_credentials():
    # moto checks access keys only when told to: a second, strict server for this test.
    with running_server(moto_argv, name="moto-auth", env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        client = make_client(
            server.url, "any-bucket", aws_access_key_id="AKIANOTKNOWN", aws_secret_access_key="TOP-SECRET-KEY"
        )
        with pytest.raises(InvalidCredentials) as exc_info:
            client.check()
    message = str(exc_info.value)
    assert "check aws_access_key_id / aws_secret_access_key" in message and "any-bucket" in message
    assert "TOP-SECRET" not in message


def test_key_id_without_secret():
    with pytest.raises(InvalidCredentials):
        S3Client("b-b-b", aws_access_key_id="AKIAONLY", endpoint_url="http://127.0.0.1:1")


def test_clients_built_and_used_from_many_threads(s3_server, s3_bucket, admin):
    put(admin, s3_bucket, "t.txt")

    def work(i):
        client = make_client(s3_server, s3_bucket)
        client.write(f"t/{i}.txt", b"%d" % i)
        return client.read("t.txt") + client.read(f"t/{i}.txt")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(16))) == [DATA + b"%d" % i for i in range(16)]


# --- before_connect --------------------------------------------------------------
def test_before_connect_called_with_each_url(s3_server, s3_bucket, admin):
    put(admin, s3_bucket, "h.txt")
    seen = []
    client = make_client(s3_server, s3_bucket, before_connect=seen.append)
    assert client.read("h.txt") == DATA
    client.check()
    assert seen[0] == f"{s3_server}/{s3_bucket}/h.txt"
    assert seen[1].startswith(f"{s3_server}/{s3_bucket}?list-type=2")


class Refused(StorageError):
    pass


def test_check_peer_gets_the_address_each_connection_reached(s3_server, s3_bucket, admin):
    put(admin, s3_bucket, "h.txt")
    peers = []
    client = make_client(s3_server, s3_bucket, check_peer=lambda address, host: peers.append((address, host)))
    assert client.read("h.txt") == DATA
    assert peers and set(peers) == {("127.0.0.1", "127.0.0.1")}  # moto closes every connection


def test_a_refused_peer_gets_no_request_and_its_error_propagates(s3_server, s3_bucket, admin):
    def refuse(address, host):
        raise Refused(f"{host} reached {address}")

    client = make_client(s3_server, s3_bucket, check_peer=refuse)
    with pytest.raises(Refused, match="127.0.0.1 reached 127.0.0.1"):
        client.write("never.txt", b"x")
    assert "Contents" not in admin.list_objects_v2(Bucket=s3_bucket, Prefix="never")
    assert make_client(s3_server, s3_bucket).check() is None  # other clients are not affected


@pytest.mark.parametrize("error", [Refused("address 127.0.0.1 is not allowed"), PermissionError("nope")])
def test_before_connect_exception_propagates_unchanged(s3_server, s3_bucket, error):
    def guard(url):
        raise error

    client = make_client(s3_server, s3_bucket, before_connect=guard)
    for call in (
        client.check,
        lambda: client.read("x"),
        lambda: list(client.list_objects()),
        lambda: client.write("x", b""),
    ):
        with pytest.raises(type(error)) as exc_info:
            call()
        assert exc_info.value is error
    # The hook belongs to that client only: others built alongside it are not affected.
    assert make_client(s3_server, s3_bucket).check() is None
