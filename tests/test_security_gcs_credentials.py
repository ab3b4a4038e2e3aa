"""GCS service-account keys are user input: the URL a key names for its tokens (`token_uri`)
is an address the service would POST a signed assertion to, and every odd key must be a 400
naming the problem. Against the GCS emulator and loopback `Trap`s, through the API."""

import json

import pytest

from io_storages.gcs import client as gcs_client
from io_storages.gcs.models import GCSImportStorage
from tests.api_errors import error_text
from tests.fixtures.gcs import fake_service_account, gcs_admin, new_bucket

pytestmark = pytest.mark.django_db

PATHS = ("/api/storages/gcs/", "/api/storages/gcs/validate", "/api/storages/export/gcs/")
SECRET = "TOP-SECRET-KEY-MATERIAL"


@pytest.fixture
def fresh_connections():
    gcs_client._connect.cache_clear()
    yield
    gcs_client._connect.cache_clear()


@pytest.fixture
def outside_the_emulator(monkeypatch, tmp_path, fresh_connections):
    """A machine outside Google Cloud without the emulator: keys fetch real access tokens."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


def key(**fields):
    return json.dumps({**fake_service_account(), **fields})


def config(project, credentials, bucket="some-bucket"):
    return {"project": project.id, "bucket": bucket, "google_application_credentials": credentials}


def errors(response) -> str:
    return error_text(response, 400)


# --- token_uri -------------------------------------------------------------------------
def test_a_key_naming_another_token_endpoint_is_refused_and_nothing_is_posted(
    alice, project, traps, outside_the_emulator
):
    trap = traps()
    for token_uri in (
        f"{trap.url}/token",
        "https://oauth2.googleapis.com.evil.example/token",
        "http://oauth2.googleapis.com/token",
    ):
        for path in PATHS:
            response = alice.post(path, config(project, key(token_uri=token_uri)), format="json")
            assert trap.connections == 0, path
            text = errors(response)
            assert "google_application_credentials: token_uri must be one of Google's token endpoints" in text
            assert "GCS_TRUSTED_TOKEN_URIS" in text and "evil" not in text and str(trap.port) not in text
    assert not GCSImportStorage.objects.exists()


def test_refused_under_the_emulator_too(alice, project, gcs_server, fresh_connections):
    """The emulator fetches no tokens, but the stored key would, the day it is used elsewhere."""
    text = errors(
        alice.post(
            PATHS[0], config(project, key(token_uri="http://10.0.0.1/token"), new_bucket(gcs_server)), format="json"
        )
    )
    assert "token_uri must be one of Google's token endpoints" in text


@pytest.mark.parametrize("token_uri", gcs_client.GOOGLE_TOKEN_URIS)
def test_googles_token_endpoints_are_accepted(alice, project, gcs_server, fresh_connections, token_uri):
    bucket = new_bucket(gcs_server)
    gcs_admin(gcs_server).bucket(bucket).blob("a.jpg").upload_from_string(b"x")
    response = alice.post(PATHS[1], config(project, key(token_uri=token_uri), bucket), format="json")
    assert response.status_code == 200, response.content


def test_token_requests_never_follow_a_redirect(alice, project, traps, outside_the_emulator, settings):
    """An endpoint the operator allowed answers with a redirect: that is a failed token
    request, and the signed assertion is not sent on to the redirect's target."""
    trap = traps()
    redirect = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {trap.url}/token\r\nContent-Length: 0\r\n\r\n"
    token_server = traps(reply=redirect.encode())
    settings.GCS_TRUSTED_TOKEN_URIS = [f"{token_server.url}/token"]
    response = alice.post(PATHS[1], config(project, key(token_uri=f"{token_server.url}/token")), format="json")
    assert token_server.sent.startswith(b"POST /token ")  # the listed endpoint was asked
    assert trap.connections == 0 and trap.sent == b""
    assert "Cannot authenticate to access bucket 'some-bucket': check google_application_credentials" in errors(
        response
    )


# --- odd keys: a 400 naming the problem, never a 500, never the key ----------------------
def _pem(private_key) -> str:
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _ec_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return _pem(ec.generate_private_key(ec.SECP256R1()))


def _ed25519_key():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return _pem(ed25519.Ed25519PrivateKey.generate())


ODD_KEYS = {
    # answered 500 before: a RecursionError / a ValueError of storage.Client
    "nested too deeply": ("[" * 100000 + "]" * 100000, "google_application_credentials is not valid JSON"),
    "nested object": ('{"a":' * 5000 + "1" + "}" * 5000, "google_application_credentials is not valid JSON"),
    "project_id a number": (key(project_id=123), "google_application_credentials: project_id must be text"),
    "project_id a list": (key(project_id=[SECRET]), "google_application_credentials: project_id must be text"),
    "another universe": (key(universe_domain="example.com"), "universe_domain must be googleapis.com"),
    # accepted before, then a 500 when signing a URL
    "an EC key": (key(private_key=_ec_key()), "private key of this service account key cannot be read"),
    "an Ed25519 key": (key(private_key=_ed25519_key()), "private key of this service account key cannot be read"),
    # accepted before, broken later
    "client_email an object": (key(client_email={"a": SECRET}), "client_email must be text"),
    "private_key_id an object": (key(private_key_id={"a": SECRET}), "private_key_id must be text"),
    "token_uri a number": (key(token_uri=443), "token_uri must be text"),
    # refused before too
    "not JSON": ("{" + SECRET, "google_application_credentials is not valid JSON"),
    "a JSON string": (json.dumps(SECRET), "google_application_credentials is not valid JSON"),
    "a JSON list": (json.dumps([SECRET]), "google_application_credentials is not valid JSON"),
    "a JSON number": ("12", "google_application_credentials is not valid JSON"),
    "wrong type": (key(type="authorized_user"), "google_application_credentials is not a service account key"),
    "type a list": (key(type=["service_account"]), "type must be text"),
    "missing fields": (
        json.dumps({"type": "service_account", "private_key": SECRET}),
        "(missing client_email, token_uri)",
    ),
    "private key not PEM": (key(private_key=SECRET), "private key of this service account key cannot be read"),
    "private key broken PEM": (
        key(private_key=f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"),
        "private key of this service account key cannot be read",
    ),
    "private key a number": (key(private_key=7), "private_key must be text"),
}


@pytest.mark.parametrize("name", sorted(ODD_KEYS))
def test_an_odd_key_is_a_400_naming_the_problem(alice, project, gcs_server, fresh_connections, name):
    credentials, message = ODD_KEYS[name]
    for path in PATHS:
        text = errors(alice.post(path, config(project, credentials, new_bucket(gcs_server)), format="json"))
        assert message in text, text
        assert SECRET not in text and "BEGIN" not in text
    assert not GCSImportStorage.objects.exists()


def test_an_odd_key_outside_the_emulator_is_a_400_too(alice, project, outside_the_emulator):
    """Without the emulator the key is the API client's credentials: storage.Client refused
    another universe with a ValueError (a 500)."""
    text = errors(alice.post(PATHS[1], config(project, key(universe_domain="example.com")), format="json"))
    assert "universe_domain must be googleapis.com" in text
