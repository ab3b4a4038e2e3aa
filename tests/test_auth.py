"""Authentication: token header, session, 401 without credentials, token rotation."""

import pytest
from rest_framework.test import APIClient

from tests.api_errors import error_detail

pytestmark = pytest.mark.django_db


def test_anonymous_calls_get_401():
    assert APIClient().get("/api/projects/").status_code == 401


def test_token_header_authenticates(alice):
    assert alice.get("/api/projects/").status_code == 200


def test_wrong_token_gets_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert client.get("/api/projects/").status_code == 401


def test_a_token_authenticates_as_its_own_user(alice, bob):
    assert alice.get("/api/current-user/whoami").json()["email"] == "alice@example.com"
    assert bob.get("/api/current-user/whoami").json()["email"] == "bob@example.com"


def test_the_token_of_an_inactive_user_gets_401(alice):
    alice.user.is_active = False
    alice.user.save()
    response = alice.get("/api/projects/")
    assert error_detail(response, 401) == "User inactive or deleted."


def test_session_authenticates(alice):
    client = APIClient()
    assert client.login(username="alice@example.com", password="pw")
    assert client.get("/api/projects/").status_code == 200


def test_current_user_token_is_shown_and_rotated(alice):
    assert alice.get("/api/current-user/token").json() == {"token": alice.token}
    rotated = alice.post("/api/current-user/token")
    assert rotated.status_code == 201
    new_token = rotated.json()["token"]
    assert new_token != alice.token
    assert alice.get("/api/projects/").status_code == 401  # old token is dead
    alice.credentials(HTTP_AUTHORIZATION=f"Token {new_token}")
    assert alice.get("/api/projects/").status_code == 200


def test_openapi_schema_and_docs_are_served(alice):
    schema = alice.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/projects/" in schema.content
    assert alice.get("/api/docs/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing-here/",
        "/api/tasks/99999999999999999999999/",  # beyond a bigint: SQLite raised for some lookups
        "/projects/99999999999999999999999/resolve/?fileuri=czM6Ly9idWNrZXQvYS5wbmc=",
        "/tasks/99999999999999999999999/resolve/?fileuri=czM6Ly9idWNrZXQvYS5wbmc=",
    ],
)
def test_unknown_urls_and_ids_out_of_range_are_json_404s(alice, path):
    response = alice.get(path)
    assert error_detail(response, 404) == "Not found."
