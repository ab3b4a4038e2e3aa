"""Empty credentials would be the server's own identity: boto3's default chain (environment
keys, instance role), Google's default credentials or anonymous access to the operator's
emulator, AZURE_BLOB_ACCOUNT_NAME / AZURE_BLOB_ACCOUNT_KEY. A tenant may use it only when the
operator allows it (STORAGE_SERVER_CREDENTIALS_ENABLED, off by default): otherwise such a
storage is a 400 on save and validate, and its sync fails. Against moto, the GCS emulator and
Azurite, through the API."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from io_storages.azure_blob.models import AzureBlobImportStorage
from io_storages.gcs import client as gcs_client
from io_storages.gcs.models import GCSImportStorage
from io_storages.s3.models import S3ImportStorage
from tests.api_errors import error_text
from tests.fixtures.azure import ACCOUNT_KEY, ACCOUNT_NAME, azure_admin
from tests.fixtures.gcs import gcs_admin, new_bucket
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_SECRET_KEY, s3_config
from tests.storage_helpers import create_storage, put, sync

pytestmark = pytest.mark.django_db

REQUIRED = "required: storages do not use this server's own credentials"
HINT = "STORAGE_SERVER_CREDENTIALS_ENABLED=true"


def paths(kind):
    return (f"/api/storages/{kind}/", f"/api/storages/{kind}/validate", f"/api/storages/export/{kind}/")


def errors(response) -> str:
    return error_text(response, 400)


@pytest.fixture
def server_credentials(settings):
    """server_credentials(on): the operator's choice for this test (the Azure fixtures turn it
    on for their own tests)."""

    def choose(on):
        settings.STORAGE_SERVER_CREDENTIALS_ENABLED = on

    choose(False)
    return choose


def test_server_credentials_are_off_by_default():
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_SERVER_CREDENTIALS_ENABLED"}
    env["DJANGO_SETTINGS_MODULE"] = "core.settings"
    code = "from django.conf import settings; print(settings.STORAGE_SERVER_CREDENTIALS_ENABLED)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- S3: boto3's default chain ----------------------------------------------------------
@pytest.fixture
def server_keys(monkeypatch, s3_server, emulators_on_loopback):
    """The server's own identity, as an instance role would give it: keys in the environment
    (moto's), and the operator's endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    return s3_server


def keyless(endpoint, bucket, **fields):
    return s3_config(endpoint, bucket, access_key="", secret_key="", **fields)


@pytest.mark.parametrize("typed_endpoint", [True, False])
def test_s3_with_empty_keys_is_refused(alice, project, s3_bucket, server_keys, server_credentials, typed_endpoint):
    endpoint = server_keys if typed_endpoint else ""  # the operator's own endpoint, either way
    put(server_keys, s3_bucket, "a.jpg", b"x")  # so that the server's keys would pass the check
    for path in paths("s3"):
        text = errors(alice.post(path, {"project": project.id, **keyless(endpoint, s3_bucket)}, format="json"))
        assert f"aws_access_key_id and aws_secret_access_key are {REQUIRED}" in text and HINT in text
    assert not S3ImportStorage.objects.exists()


def test_s3_with_empty_keys_uses_the_servers_identity_when_allowed(
    alice, project, s3_server, s3_bucket, server_keys, server_credentials
):
    server_credentials(True)
    put(s3_server, s3_bucket, "a.jpg", b"x")
    storage = create_storage(alice, project, keyless("", s3_bucket, use_blob_urls=True))
    assert sync(alice, storage)["status"] == "completed"
    assert project.tasks.count() == 1


def test_the_servers_keys_never_go_to_a_tenants_endpoint(
    alice, project, s3_bucket, server_keys, server_credentials, traps
):
    """Even when allowed, the server's keys are only used with the operator's endpoints: a
    request signed with them (and any session token) would go to whoever runs the endpoint."""
    server_credentials(True)
    trap = traps()
    for path in paths("s3"):
        response = alice.post(path, {"project": project.id, **keyless(trap.url, s3_bucket)}, format="json")
        assert trap.connections == 0 and S3_ACCESS_KEY.encode() not in trap.sent, path
        assert "the server's own credentials are only used with the endpoints the operator configured" in errors(
            response
        )


def test_a_stored_s3_storage_with_empty_keys_fails_its_sync(
    alice, project, s3_server, s3_bucket, server_keys, server_credentials
):
    """A storage saved before the operator turned server credentials off (a row in the database)."""
    put(s3_server, s3_bucket, "a.jpg", b"x")
    storage = S3ImportStorage.objects.create(project=project, use_blob_urls=True, **keyless("", s3_bucket))
    result = sync(alice, {"id": storage.pk})
    assert project.tasks.count() == 0  # nothing was read with the server's keys
    assert result["status"] == "failed"
    assert REQUIRED in S3ImportStorage.objects.get(pk=storage.pk).traceback


# --- GCS: default credentials, or anonymous access to the operator's emulator ---------------
def gcs_config(project, bucket, **fields):
    return {"project": project.id, "bucket": bucket, "google_application_credentials": "", **fields}


@pytest.fixture
def gcs_bucket(gcs_server):
    gcs_client._connect.cache_clear()
    bucket = new_bucket(gcs_server)
    gcs_admin(gcs_server).bucket(bucket).blob("a.jpg").upload_from_string(b"x")
    return bucket


def test_gcs_with_empty_credentials_is_refused(alice, project, gcs_bucket, server_credentials):
    for credentials in ("", "   ", None):
        for path in paths("gcs"):
            config = gcs_config(project, gcs_bucket, google_application_credentials=credentials)
            text = errors(alice.post(path, config, format="json"))
            assert f"google_application_credentials (a service account key) is {REQUIRED}" in text and HINT in text
    assert not GCSImportStorage.objects.exists()


def test_gcs_without_the_emulator_does_not_look_for_default_credentials(
    alice, project, server_credentials, monkeypatch, tmp_path
):
    key_file = tmp_path / "server-key.json"  # would be found by google.auth.default()
    key_file.write_text("{}")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    text = errors(alice.post(paths("gcs")[1], gcs_config(project, "any-bucket"), format="json"))
    assert REQUIRED in text


def test_gcs_with_empty_credentials_when_allowed(alice, project, gcs_bucket, server_credentials):
    server_credentials(True)
    storage = create_storage(alice, project, gcs_config(project, gcs_bucket, use_blob_urls=True), kind="gcs")
    assert sync(alice, storage, kind="gcs")["status"] == "completed"


# --- Azure: AZURE_BLOB_ACCOUNT_NAME / AZURE_BLOB_ACCOUNT_KEY ---------------------------------
@pytest.fixture
def server_account(settings, azure_container, azure_server):
    settings.AZURE_BLOB_ACCOUNT_NAME = ACCOUNT_NAME
    settings.AZURE_BLOB_ACCOUNT_KEY = ACCOUNT_KEY
    azure_admin(azure_server).get_container_client(azure_container).upload_blob("a.jpg", b"x")
    return azure_container


@pytest.mark.parametrize("name, key", [("", ""), (None, None), (ACCOUNT_NAME, ""), ("", ACCOUNT_KEY)])
def test_azure_with_empty_account_fields_is_refused(alice, project, server_account, server_credentials, name, key):
    config = {"project": project.id, "container": server_account, "account_name": name, "account_key": key}
    for path in paths("azure"):
        text = errors(alice.post(path, config, format="json"))
        assert f"account_name and account_key are {REQUIRED}" in text and HINT in text
        assert ACCOUNT_KEY not in text
    assert not AzureBlobImportStorage.objects.exists()


def test_azure_with_the_servers_account_when_allowed(alice, project, server_account, server_credentials):
    server_credentials(True)
    config = {"container": server_account, "account_name": "", "account_key": "", "use_blob_urls": True}
    storage = create_storage(alice, project, config, kind="azure")
    assert sync(alice, storage, kind="azure")["status"] == "completed"
