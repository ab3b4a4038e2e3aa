"""AzureBlobClient against a real Azurite server on loopback (no mocks inside the process)."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.storage.blob import ContentSettings

from io_storages.azure_blob import client as azure_client_module
from io_storages.azure_blob.client import AzureBlobClient
from io_storages.azure_blob.models import AzureBlobImportStorage
from io_storages.client import (
    BucketNotFound,
    InvalidCredentials,
    ObjectNotFound,
    StorageError,
)
from tests.fixtures.azure import ACCOUNT_KEY, ACCOUNT_NAME, azure_admin
from tests.fixtures.servers import free_port

DATA = b"0123456789"
# A well-formed key that is not the account's.
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="


def make_client(endpoint, container, **kwargs):
    params = dict(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=endpoint)
    params.update(kwargs)
    return AzureBlobClient(container, **params)


@pytest.fixture
def client(azure_server, azure_container):
    return make_client(azure_server, azure_container)


@pytest.fixture
def put(azure_server, azure_container):
    container = azure_admin(azure_server).get_container_client(azure_container)

    def put(key, body=DATA, content_type=None):
        settings = ContentSettings(content_type=content_type) if content_type else None
        container.upload_blob(key, body, overwrite=True, content_settings=settings)

    return put


def secret_free(error):
    return ACCOUNT_KEY not in str(error) and ACCOUNT_KEY not in repr(error) and error.__cause__ is None


# --- listing -------------------------------------------------------------------
def test_list_recursive_and_top_level_skip_folder_keys(client, put):
    for key in ["a.json", "dir/", "dir/b.json", "dir/sub/", "dir/sub/c.json", "other/d.json"]:
        put(key, b"" if key.endswith("/") else b"{}")

    assert [o.key for o in client.list_objects()] == ["a.json", "dir/b.json", "dir/sub/c.json", "other/d.json"]
    assert [o.key for o in client.list_objects("dir/")] == ["dir/b.json", "dir/sub/c.json"]
    assert [o.key for o in client.list_objects(recursive=False)] == ["a.json"]
    assert [o.key for o in client.list_objects("dir/", recursive=False)] == ["dir/b.json"]

    info = next(iter(client.list_objects("a.json")))
    assert info.size == 2 and info.last_modified is not None
    assert info.etag and not info.etag.startswith('"')


def test_list_goes_page_by_page(client, put, monkeypatch):
    keys = [f"many/{i:02d}.txt" for i in range(7)]
    for key in keys:
        put(key, b"x")
    monkeypatch.setattr(azure_client_module, "LIST_PAGE_SIZE", 3)
    sent = []
    send = requests.Session.send
    monkeypatch.setattr(
        requests.Session, "send", lambda self, request, **kw: sent.append(request.url) or send(self, request, **kw)
    )
    assert [o.key for o in client.list_objects("many/")] == keys
    # 3 + 3 + 1 keys: three distinct pages (a retried request repeats its page's marker)
    pages = {parse_qs(urlsplit(url).query).get("marker", [""])[0] for url in sent}
    assert len(pages) == 3 and all("maxresults=3" in url for url in sent)


def test_list_missing_container(azure_server):
    with pytest.raises(BucketNotFound, match="Container 'no-such-container-here' does not exist"):
        list(make_client(azure_server, "no-such-container-here").list_objects())


# --- reading -------------------------------------------------------------------
def test_stat(client, put):
    put("f.txt", content_type="text/plain")
    info = client.stat("f.txt")
    assert (info.key, info.size, info.content_type) == ("f.txt", 10, "text/plain")
    assert info.etag and '"' not in info.etag and info.last_modified is not None
    with pytest.raises(ObjectNotFound, match="missing.txt"):
        client.stat("missing.txt")


def test_full_read_streams(client, put):
    put("f.txt", content_type="text/plain")
    assert client.read("f.txt") == DATA
    with client.open("f.txt") as stream:
        assert (stream.start, stream.end, stream.total_size, stream.content_length) == (None, None, 10, 10)
        assert stream.info.content_type == "text/plain" and stream.info.etag
        assert [stream.body.read(4), stream.body.read(4), stream.body.read(4), stream.body.read(4)] == [
            b"0123",
            b"4567",
            b"89",
            b"",
        ]
    with pytest.raises(ObjectNotFound, match="'missing.txt' in container"):
        client.open("missing.txt")


def test_empty_blob(client, put):
    put("empty.json", b"")
    with client.open("empty.json") as stream:
        assert stream.read() == b"" and stream.total_size == 0


def test_body_streams_a_blob_bigger_than_one_download_chunk(client, put, monkeypatch):
    # Chunk size is read when a client is built: a 5-byte chunk makes this 10-byte blob two
    # GETs, the second made only when the body is read past the first.
    monkeypatch.setattr(azure_client_module, "DOWNLOAD_CHUNK_SIZE", 5)
    small_chunks = make_client(client.endpoint, client.bucket)
    put("big.bin")
    with small_chunks.open("big.bin") as stream:
        assert stream.body.read(3) == b"012"
        assert stream.body.read(100) == b"3456789"
    with small_chunks.open("big.bin", 2, 8) as stream:
        assert b"".join(stream.chunks(2)) == b"2345678" and (stream.start, stream.end) == (2, 8)

    # The next chunk is fetched only if the blob is unchanged (If-Match): a blob replaced
    # mid-read fails with a StorageError (which sync reports), not an SDK exception.
    with small_chunks.open("big.bin") as stream:
        assert stream.body.read(5) == b"01234"
        put("big.bin", b"changed!!!")
        with pytest.raises(StorageError, match="'big.bin' in container") as exc_info:
            stream.body.read(5)
    assert exc_info.value.__cause__ is None


def test_presign_url_fetches_the_bytes(client, put):
    put("dir/p q.json", b'{"a": 1}')
    url = client.presign("dir/p q.json", 60, content_type="application/json")
    assert "/dir/p%20q.json?" in url and "sig=" in url and "sp=r" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b'{"a": 1}'
    assert response.headers["Content-Type"] == "application/json"
    # Azurite checks the signature: a URL for another blob with this signature is refused.
    assert requests.get(url.replace("p%20q.json", "other.json"), timeout=10).status_code == 403


def test_uri_for(client):
    storage = AzureBlobImportStorage(container=client.bucket)
    assert storage.uri_for("a/b.jpg") == f"azure-blob://{client.bucket}/a/b.jpg"


# --- writing -------------------------------------------------------------------
def test_write_replaces_with_content_type(client):
    client.write("out/1.json", b'{"x": 1}')
    client.write("out/1.json", b'{"x": 2}')
    assert client.read("out/1.json") == b'{"x": 2}'
    assert client.stat("out/1.json").content_type == "application/json"
    client.write("out/2.txt", b"hello", content_type="text/plain")
    assert client.stat("out/2.txt").content_type == "text/plain"


def test_write_to_missing_container(azure_server):
    with pytest.raises(BucketNotFound):
        make_client(azure_server, "no-such-container-here").write("k.json", b"{}")


def test_delete(client, put, azure_server):
    put("d.txt")
    client.delete("d.txt")
    with pytest.raises(ObjectNotFound):
        client.stat("d.txt")
    client.delete("d.txt")  # missing key: not an error
    with pytest.raises(BucketNotFound):  # a missing container is
        make_client(azure_server, "no-such-container-here").delete("d.txt")


# --- check -----------------------------------------------------------------------
def test_check_ok(client, put):
    client.check()  # an empty container is fine without a prefix
    put("data/1.json")
    client.check("data/")
    client.check("")


def test_check_missing_container(azure_server):
    with pytest.raises(BucketNotFound, match="^Container not found: missing-container-xyz$"):  # Label Studio's
        make_client(azure_server, "missing-container-xyz").check()
    with pytest.raises(BucketNotFound):
        make_client(azure_server, "missing-container-xyz").check("p/")


def test_check_empty_prefix(client, put):
    put("data/1.json")
    with pytest.raises(
        StorageError,
        match=(
            f"^azure-blob://{client.bucket}/nothing/ not found. "
            f"No objects found in container '{client.bucket}' under"
        ),
    ):
        client.check("nothing/")


def test_check_unreachable_endpoint_hides_secrets():
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StorageError) as exc_info:
        make_client(f"http://{host}/{ACCOUNT_NAME}", "some-container").check("p/")
    assert f"Cannot reach Azure Blob endpoint '{host}'" in str(exc_info.value)
    assert secret_free(exc_info.value)


# --- credentials -------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["check", "list", "read", "write"])
def test_wrong_account_key(azure_server, azure_container, put, operation):
    put("k.json")
    client = make_client(azure_server, azure_container, account_key=WRONG_KEY)
    call = {
        "check": client.check,
        "list": lambda: list(client.list_objects()),
        "read": lambda: client.read("k.json"),
        "write": lambda: client.write("k.json", b"{}"),
    }[operation]
    with pytest.raises(InvalidCredentials, match="check account_name / account_key") as exc_info:
        call()
    assert azure_container in str(exc_info.value)
    assert WRONG_KEY not in str(exc_info.value) and exc_info.value.__cause__ is None


@pytest.mark.parametrize(
    "name, key, message",
    [
        ("", ACCOUNT_KEY, "^Azure account name and key must be set using .*AZURE_BLOB_ACCOUNT_NAME.* no account_name$"),
        (
            ACCOUNT_NAME,
            None,
            "^Azure account name and key must be set using .*AZURE_BLOB_ACCOUNT_KEY.* no account_key$",
        ),
        (None, "", "has no account_name and no account_key"),
        ("169.254.169.254#", ACCOUNT_KEY, "account_name must be 3 to 24 lowercase letters and digits"),
        ("abc\n", ACCOUNT_KEY, "account_name must be"),
        (ACCOUNT_NAME, "not base64!", "account_key is not a valid base64 key"),
    ],
)
def test_unusable_credentials_are_refused_before_any_request(name, key, message):
    # Port 1: nothing listens there, so a request would fail with another message.
    with pytest.raises(InvalidCredentials, match=message):
        AzureBlobClient("c-c-c", account_name=name, account_key=key, endpoint="http://127.0.0.1:1/{account_name}")


def test_endpoint_template_gets_the_account_name(azure_server, azure_container, put):
    put("t.txt")
    template = azure_server.replace(ACCOUNT_NAME, "{account_name}")  # Azurite is path-style
    client = make_client(template, azure_container)
    assert client.endpoint == azure_server
    assert client.read("t.txt") == DATA
    for unset in (None, ""):  # an empty AZURE_BLOB_ENDPOINT means the public cloud
        default = AzureBlobClient("c-c-c", account_name="myaccount", account_key=ACCOUNT_KEY, endpoint=unset)
        assert default.endpoint == "https://myaccount.blob.core.windows.net"


def test_model_uses_settings_endpoint_and_env_fallback_credentials(azure_server, azure_container, put, settings):
    put("data/1.json")
    settings.AZURE_BLOB_ACCOUNT_NAME = ACCOUNT_NAME
    settings.AZURE_BLOB_ACCOUNT_KEY = ACCOUNT_KEY
    storage = AzureBlobImportStorage(container=azure_container, prefix="data", account_name="", account_key=None)
    client = storage.get_client()
    assert client.endpoint == azure_server  # the session fixture set AZURE_BLOB_ENDPOINT
    client.check(storage.key_prefix)
    assert client.read("data/1.json") == DATA

    # The storage's own values win over the environment's.
    storage.account_key = WRONG_KEY
    with pytest.raises(InvalidCredentials):
        storage.get_client().check()
    settings.AZURE_BLOB_ACCOUNT_KEY = ""
    with pytest.raises(InvalidCredentials, match="has no account_key"):
        AzureBlobImportStorage(container=azure_container, account_name="").get_client()


def test_one_client_used_from_many_threads(client, put):
    put("t.txt")

    def work(i):
        client.write(f"t/{i}.txt", b"%d" % i)
        return client.read("t.txt") + client.read(f"t/{i}.txt")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(16))) == [DATA + b"%d" % i for i in range(16)]
