"""Presigned S3 URLs against SeaweedFS, a real S3 server that checks SigV4 signatures.

moto accepts any signature, so the presign tests elsewhere only show that a URL fetches the
bytes; here a tampered URL and a wrong secret must be refused by the server, through the REST
API: storage creation/validation, task data rewriting, the resolve endpoint (303 redirect or
proxy), then the presigned URL fetched with `requests` like a browser would.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from io_storages.s3.models import S3ImportStorage
from tests.api_errors import error_text, validation_errors
from tests.fixtures import seaweedfs

# The session fixture, made visible to this module (only the root conftest may use
# pytest_plugins). An assignment rather than `from ... import seaweedfs_server`: test
# parameters of the same name would be flagged as redefinitions of the import (F811).
seaweedfs_server = seaweedfs.seaweedfs_server

pytestmark = pytest.mark.django_db

KEY = "images/photo.png"
OTHER_KEY = "images/other.png"
CONTENT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16  # 4,104 bytes, every byte value


@pytest.fixture(autouse=True)
def _server_on_loopback(settings):
    settings.SSRF_PROTECTION_ENABLED = False  # SeaweedFS listens on 127.0.0.1


@pytest.fixture(scope="module")
def bucket(seaweedfs_server):
    """One bucket for the module (the tests only read it): SeaweedFS spends ~0.2 s on the
    first write to a new bucket, which gets volumes of its own."""
    name = seaweedfs_server.create_bucket()
    s3 = seaweedfs_server.client()
    # Stored as octet-stream: an image/png answer can only come from ResponseContentType.
    for key in (KEY, OTHER_KEY):
        s3.put_object(Bucket=name, Key=key, Body=CONTENT, ContentType="application/octet-stream")
    return name


def create_storage(alice, project, server, bucket, **fields):
    config = {"project": project.id, **server.storage_config(bucket, **fields)}
    response = alice.post("/api/storages/s3/", config, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def resolve_url(alice, project, bucket):
    """Import a task pointing at KEY and return its rewritten URL, as the task API gives it."""
    response = alice.post(f"/api/projects/{project.id}/import", [{"image": f"s3://{bucket}/{KEY}"}], format="json")
    assert response.status_code == 201, response.content
    task = project.tasks.get()
    url = alice.get(f"/api/tasks/{task.id}/").json()["data"]["image"]
    assert url.startswith(f"/tasks/{task.id}/resolve/?fileuri="), url  # relative: HOSTNAME is not set
    return url


@pytest.fixture
def presigned(alice, project, seaweedfs_server, bucket):
    """The Location of the resolve endpoint's redirect for a presigning storage (1 minute)."""
    create_storage(alice, project, seaweedfs_server, bucket, presign=True, presign_ttl=1)
    response = alice.get(resolve_url(alice, project, bucket))
    assert response.status_code == 303, response.content
    assert response["Cache-Control"] == "no-store, max-age=60"
    return response["Location"]


def query(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_presigned_url_is_sigv4_and_fetches_exact_bytes_as_guessed_type(presigned, seaweedfs_server, bucket):
    assert presigned.startswith(f"{seaweedfs_server.endpoint_url}/{bucket}/{KEY}?")
    params = query(presigned)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "60"  # presign_ttl is in minutes
    assert params["X-Amz-Credential"].startswith(f"{seaweedfs_server.access_key}/")
    assert params["response-content-type"] == "image/png"
    assert seaweedfs_server.secret_key not in presigned

    response = requests.get(presigned, timeout=10)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["Content-Type"] == "image/png"


def _change_signature(url, index):
    """`url` with the character at `index` of its X-Amz-Signature changed (same length)."""
    head, signature = url.rsplit("X-Amz-Signature=", 1)
    index %= len(signature)
    char = "0" if signature[index] != "0" else "1"
    signature = signature[:index] + char + signature[index + 1 :]
    return f"{head}X-Amz-Signature={signature}"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda url: _change_signature(url, 0), id="signature-first-char"),
        pytest.param(lambda url: _change_signature(url, -1), id="signature-last-char"),
        pytest.param(lambda url: url.replace(KEY, OTHER_KEY, 1), id="other-key"),
        pytest.param(lambda url: url.replace("X-Amz-Expires=60&", "X-Amz-Expires=99&"), id="other-expiry"),
        pytest.param(
            lambda url: url.replace("response-content-type=image%2Fpng", "response-content-type=text%2Fhtml"),
            id="other-content-type",
        ),
    ],
)
def test_tampered_presigned_url_is_refused(presigned, tamper):
    assert presigned.rsplit("X-Amz-Signature=", 1)[1].isalnum()  # the signature ends the URL
    tampered = tamper(presigned)
    assert tampered != presigned and len(tampered) == len(presigned)
    response = requests.get(tampered, timeout=10)
    assert response.status_code == 403
    assert b"SignatureDoesNotMatch" in response.content
    assert CONTENT not in response.content
    assert requests.get(presigned, timeout=10).content == CONTENT  # the genuine URL still works


@pytest.mark.parametrize(
    "field, value", [("aws_secret_access_key", "wrong-secret"), ("aws_access_key_id", "NOSUCHKEY")]
)
def test_wrong_credentials_give_400_on_validate_and_create(alice, project, seaweedfs_server, bucket, field, value):
    config = {"project": project.id, **seaweedfs_server.storage_config(bucket, presign=True), field: value}
    for path in ["/api/storages/s3/validate", "/api/storages/s3/"]:
        response = alice.post(path, config, format="json")
        text = error_text(response, 400)
        # InvalidCredentials (SignatureDoesNotMatch / InvalidAccessKeyId), not a bare "access denied"
        assert f"Cannot connect to S3 {bucket} with specified AWS credentials" in text, text
        assert "aws_access_key_id / aws_secret_access_key" in text
        assert value not in text and seaweedfs_server.secret_key not in text
    assert not S3ImportStorage.objects.exists()


def test_proxy_mode_streams_exact_ranges_from_seaweedfs(alice, project, seaweedfs_server, bucket):
    create_storage(alice, project, seaweedfs_server, bucket, presign=False)
    url = resolve_url(alice, project, bucket)

    response = alice.get(url, HTTP_RANGE="bytes=100-1123")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == CONTENT[100:1124]
    assert response["Content-Range"] == f"bytes 100-1123/{len(CONTENT)}"
    assert response["Content-Length"] == "1024"

    response = alice.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT


def test_url_signed_with_a_rotated_out_secret_is_refused(alice, project, seaweedfs_server, bucket):
    """The signature depends on the secret: after the stored secret goes stale (rotated on
    the server side), the service still redirects, and the server refuses the URL."""
    storage = create_storage(alice, project, seaweedfs_server, bucket, presign=True)
    S3ImportStorage.objects.filter(pk=storage["id"]).update(aws_secret_access_key="rotated-out-secret")
    response = alice.get(resolve_url(alice, project, bucket))
    assert response.status_code == 303
    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 403 and b"SignatureDoesNotMatch" in fetched.content


def test_presign_ttl_over_a_week_is_refused(alice, project, seaweedfs_server, bucket):
    """Signed URLs cannot live longer than 7 days: the API says so instead of minting URLs
    that S3 refuses."""
    config = {"project": project.id, **seaweedfs_server.storage_config(bucket, presign=True, presign_ttl=10081)}
    created = alice.post("/api/storages/s3/", config, format="json")
    assert "presign_ttl" in validation_errors(created)
