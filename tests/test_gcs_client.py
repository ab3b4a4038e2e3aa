"""GCSClient against a real GCS emulator on loopback (no mocks inside the process).

Errors the emulator cannot produce (401, 403, 5xx) come from a tiny HTTP server that answers
every request with a chosen status, reached the same way (STORAGE_EMULATOR_HOST).
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from io_storages.client import (
    AccessDenied,
    BucketNotFound,
    InvalidCredentials,
    ObjectNotFound,
    StorageError,
)
from io_storages.gcs import client as gcs_client
from io_storages.gcs.client import GCSClient
from tests.fixtures.gcs import fake_service_account, gcs_admin, new_bucket
from tests.fixtures.servers import free_port

DATA = b"0123456789"
SA_JSON = json.dumps(fake_service_account())
PRIVATE_KEY_LINE = fake_service_account()["private_key"].splitlines()[1]


@pytest.fixture
def bucket(gcs_server):
    return new_bucket(gcs_server)


@pytest.fixture
def client(bucket):
    return GCSClient(bucket)


def put(gcs_server, bucket, key, body=DATA, content_type=None):
    gcs_admin(gcs_server).bucket(bucket).blob(key).upload_from_string(body, content_type=content_type)


@pytest.fixture
def fresh_connections():
    """Clients are cached per configuration: tests that change the environment start clean."""
    gcs_client._connect.cache_clear()
    yield
    gcs_client._connect.cache_clear()


# --- listing -------------------------------------------------------------------
def test_list_recursive_and_top_level_skip_folder_keys(client, gcs_server, bucket):
    for key in ["a.json", "dir/", "dir/b.json", "dir/sub/", "dir/sub/c.json", "other/d.json"]:
        put(gcs_server, bucket, key, b"" if key.endswith("/") else b"{}")

    assert [o.key for o in client.list_objects()] == ["a.json", "dir/b.json", "dir/sub/c.json", "other/d.json"]
    assert [o.key for o in client.list_objects("dir/")] == ["dir/b.json", "dir/sub/c.json"]
    assert [o.key for o in client.list_objects(recursive=False)] == ["a.json"]
    assert [o.key for o in client.list_objects("dir/", recursive=False)] == ["dir/b.json"]

    info = next(iter(client.list_objects("a.json")))
    assert info.size == 2 and info.last_modified is not None and info.etag


def test_list_follows_pages(client, gcs_server, bucket):
    keys = [f"p/{i}.txt" for i in range(5)]
    for key in keys:
        put(gcs_server, bucket, key, b"x")
    client.page_size = 2  # three pages
    assert [o.key for o in client.list_objects("p/")] == keys


def test_list_missing_bucket(gcs_server):
    with pytest.raises(BucketNotFound, match="Bucket 'no-such-bucket-here' does not exist"):
        list(GCSClient("no-such-bucket-here").list_objects())


# --- reading -------------------------------------------------------------------
def test_stat(client, gcs_server, bucket):
    put(gcs_server, bucket, "f.txt", content_type="text/plain")
    info = client.stat("f.txt")
    assert (info.key, info.size, info.content_type) == ("f.txt", 10, "text/plain")
    assert info.etag and info.last_modified is not None
    with pytest.raises(ObjectNotFound, match=f"'missing.txt' in bucket '{bucket}' does not exist"):
        client.stat("missing.txt")


def test_range_spanning_several_chunks(client, gcs_server, bucket, monkeypatch):
    monkeypatch.setattr(gcs_client, "_READ_CHUNK", 1000)  # many ranged requests for one stream
    data = bytes(range(256)) * 40  # 10240 bytes
    put(gcs_server, bucket, "big.bin", data)
    with client.open("big.bin", 1500, 7999) as stream:
        pieces = list(stream.chunks(700))
    assert b"".join(pieces) == data[1500:8000]
    assert max(map(len, pieces)) == 700


def test_errors_while_streaming_are_storage_errors(client, gcs_server, bucket):
    put(gcs_server, bucket, "gone.txt")
    stream = client.open("gone.txt")  # metadata read; the body is fetched on the first read
    gcs_admin(gcs_server).bucket(bucket).blob("gone.txt").delete()
    with pytest.raises(ObjectNotFound, match="gone.txt"):
        stream.read()
    stream.close()


# --- presigned URLs ------------------------------------------------------------
def test_presign_url_points_at_the_emulator_and_fetches_the_bytes(gcs_server, bucket):
    put(gcs_server, bucket, "dir/p q+é.json", b'{"a": 1}')
    client = GCSClient(bucket, credentials_json=SA_JSON)
    url = client.presign("dir/p q+é.json", 60, content_type="application/json")
    assert url.startswith(f"{gcs_server}/{bucket}/dir/p%20q%2B%C3%A9.json?")
    query = parse_qs(urlparse(url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["60"]
    assert query["response-content-type"] == ["application/json"] and query["X-Goog-Signature"]
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b'{"a": 1}'
    # GCS refuses V4 URLs valid for more than 7 days: longer TTLs are capped.
    assert "X-Goog-Expires=604800&" in client.presign("dir/p q+é.json", 30 * 24 * 3600)


def test_presign_without_a_key_says_so(client):
    with pytest.raises(StorageError, match="needs a service account key in google_application_credentials"):
        client.presign("a.jpg", 60)


def test_under_an_emulator_the_servers_key_file_signs_for_storages_without_a_key(
    gcs_server, bucket, tmp_path, monkeypatch
):
    key_file = tmp_path / "key.json"
    key_file.write_text(SA_JSON)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    put(gcs_server, bucket, "a b.jpg", b"img")
    url = GCSClient(bucket).presign("a b.jpg", 60)
    assert url.startswith(f"{gcs_server}/{bucket}/a%20b.jpg?") and "X-Goog-Signature=" in url
    assert requests.get(url, timeout=10).content == b"img"
    assert GCSClient(bucket).read("a b.jpg") == b"img"  # the API calls stay anonymous


# --- writing -------------------------------------------------------------------
def test_write_and_delete(client, gcs_server, bucket):
    client.write("out/1.json", b'{"x": 1}')
    client.write("out/2.txt", b"hello", content_type="text/plain")
    admin = gcs_admin(gcs_server).bucket(bucket)
    assert admin.get_blob("out/1.json").content_type == "application/json"
    assert admin.get_blob("out/2.txt").content_type == "text/plain"
    assert client.read("out/1.json") == b'{"x": 1}'
    client.write("out/1.json", b"{}")  # replace
    assert client.read("out/1.json") == b"{}"

    client.delete("out/1.json")
    with pytest.raises(ObjectNotFound):
        client.stat("out/1.json")
    client.delete("out/1.json")  # missing key: not an error


def test_write_to_missing_bucket(gcs_server):
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        GCSClient("no-such-bucket-here").write("x.json", b"{}")


# --- check -----------------------------------------------------------------------
def test_check(client, gcs_server, bucket):
    client.check()  # an empty bucket is fine without a prefix
    put(gcs_server, bucket, "data/1.json")
    client.check("data/")
    client.check("")
    with pytest.raises(StorageError, match=f"^No blobs found in {bucket}/nothing/ or prefix doesn't exist$"):
        client.check("nothing/")
    with pytest.raises(BucketNotFound, match="Bucket 'missing-bucket-xyz' does not exist"):
        GCSClient("missing-bucket-xyz").check()


# --- credentials -----------------------------------------------------------------
SECRET = "TOP-SECRET-MATERIAL"


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json " + SECRET, "google_application_credentials is not valid JSON"),
        (json.dumps([SECRET]), "google_application_credentials is not valid JSON"),
        (json.dumps({"type": "authorized_user", "refresh_token": SECRET}), "is not a service account key"),
        (
            json.dumps({"type": "service_account", "private_key": SECRET}),
            r"is not a service account key \(missing client_email, token_uri\)",
        ),
        (
            json.dumps({**fake_service_account(), "private_key": "-----BEGIN PRIVATE KEY-----\n" + SECRET}),
            "private key of this service account key cannot be read",
        ),
    ],
)
def test_bad_credentials_json_names_the_field_and_never_the_content(gcs_server, text, message):
    with pytest.raises(InvalidCredentials, match=message) as exc_info:
        GCSClient("any-bucket", credentials_json=text)
    assert SECRET not in str(exc_info.value) and SECRET not in repr(exc_info.value)
    assert exc_info.value.__cause__ is None and exc_info.value.__context__ is None


def test_empty_credentials_mean_none(client, gcs_server, bucket):
    put(gcs_server, bucket, "a.txt")
    assert GCSClient(bucket, credentials_json="  ", project_id="").read("a.txt") == DATA


def test_key_under_the_emulator_only_signs(gcs_server, bucket):
    # The API client stays anonymous (a fake key could not fetch a token), so calls work.
    put(gcs_server, bucket, "a.txt")
    client = GCSClient(bucket, credentials_json=SA_JSON)
    assert client.read("a.txt") == DATA
    client.check("a")


@pytest.fixture
def no_emulator(monkeypatch, tmp_path, fresh_connections):
    """The environment of a machine outside Google Cloud, without the emulator variable."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud credentials
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # don't wait for a metadata server
    return tmp_path


def test_default_credentials_missing(no_emulator):
    with pytest.raises(InvalidCredentials, match="no default Google credentials"):
        GCSClient("any-bucket")


def test_default_credentials_from_a_key_file_can_sign(no_emulator, monkeypatch):
    key_file = no_emulator / "key.json"
    key_file.write_text(SA_JSON)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    url = GCSClient("prod-bucket").presign("a b.jpg", 120)  # signing is local: no network
    assert url.startswith("https://storage.googleapis.com/prod-bucket/a%20b.jpg?")
    assert "X-Goog-Credential=label-studio%40test-project.iam.gserviceaccount.com" in url


def test_clients_share_a_connection_per_configuration(bucket, gcs_server, monkeypatch):
    assert GCSClient(bucket)._client is GCSClient("other")._client
    assert GCSClient(bucket)._client is not GCSClient(bucket, credentials_json=SA_JSON)._client
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    assert GCSClient(bucket)._client.api_endpoint == "http://127.0.0.1:1"


# --- failures the emulator cannot produce ----------------------------------------
class _Answer(BaseHTTPRequestHandler):
    status = 500
    message = ""

    def _reply(self):
        body = json.dumps({"error": {"code": self.status, "message": self.message}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def answering(monkeypatch):
    """answering(status, message) -> URL of a server that gives every request that error;
    the google client is pointed at it (as an emulator)."""
    servers = []

    def start(status, message):
        handler = type("Handler", (_Answer,), {"status": status, "message": message})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_unauthorized_is_invalid_credentials(answering):
    answering(401, "Anonymous caller does not have storage.objects.list access")
    with pytest.raises(
        InvalidCredentials, match="Cannot authenticate to access bucket 'b-1': check google_application_credentials"
    ):
        GCSClient("b-1", credentials_json=SA_JSON).check()


def test_forbidden_is_access_denied_and_says_which_permission(answering):
    answering(403, "sa@p.iam.gserviceaccount.com does not have storage.objects.get access")
    with pytest.raises(AccessDenied) as exc_info:
        GCSClient("b-1", credentials_json=SA_JSON).stat("k.json")
    assert str(exc_info.value) == (
        "Access denied to 'k.json' in bucket 'b-1': "
        "sa@p.iam.gserviceaccount.com does not have storage.objects.get access"
    )


def test_a_key_refused_by_google_is_invalid_credentials(answering, no_emulator, monkeypatch):
    # Outside an emulator the key itself authenticates: here its token request is refused
    # (before anything is sent to storage.googleapis.com).
    token_uri = answering(400, "invalid_grant: Invalid JWT Signature.") + "/token"
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")  # the server stands in for the token endpoint only
    key = json.dumps({**fake_service_account(), "token_uri": token_uri})
    with pytest.raises(
        InvalidCredentials, match="Cannot authenticate to access bucket 'b-1': check google_application_credentials"
    ) as exc_info:
        GCSClient("b-1", credentials_json=key, retry_timeout=0.5).check()
    assert "JWT" not in str(exc_info.value)


def test_server_errors_are_retried_then_reported(answering):
    answering(503, "Backend Error")
    with pytest.raises(StorageError, match="GCS error on 'k.json' in bucket 'b-1': 503 Backend Error"):
        GCSClient("b-1", retry_timeout=0.5).write("k.json", b"{}")


def test_unreachable_endpoint_names_it_and_hides_secrets(monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    client = GCSClient("some-bucket", credentials_json=SA_JSON, retry_timeout=0.5)
    for call in (client.check, lambda: client.read("x"), lambda: list(client.list_objects())):
        with pytest.raises(StorageError) as exc_info:
            call()
        message = str(exc_info.value)
        assert endpoint in message and "some-bucket" in message
        assert PRIVATE_KEY_LINE not in message and fake_service_account()["private_key_id"] not in message
        assert exc_info.value.__cause__ is None  # the Google exception is not chained


# --- threads ---------------------------------------------------------------------
def test_clients_built_and_used_from_many_threads(gcs_server, bucket):
    put(gcs_server, bucket, "t.txt")

    def work(i):
        client = GCSClient(bucket, credentials_json=SA_JSON)
        client.write(f"t/{i}.txt", b"%d" % i)
        return client.read("t.txt") + client.read(f"t/{i}.txt")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(16))) == [DATA + b"%d" % i for i in range(16)]
