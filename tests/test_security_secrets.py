"""Stored secrets go only where they were saved for: a request (validate, files preview, PATCH,
the admin) that changes how a storage is reached must give its secrets again (400 naming
them). Loopback listeners record what would have been sent to the new address."""

import json

import pytest

from io_storages.registry import storage_model
from tests.api_errors import validation_errors
from tests.fixtures.redis_server import REDIS_PASSWORD
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_SECRET_KEY, new_bucket, s3_config
from tests.storage_helpers import put

pytestmark = pytest.mark.django_db

SESSION_TOKEN = "session-token-7f3c9e"


@pytest.fixture(autouse=True)
def _local_files_enabled(settings):
    settings.LOCAL_FILES_SERVING_ENABLED = True  # local files storages exist only then


HTTP_403 = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REDIS_ERR = b"-ERR nope\r\n"


# --- Redis: the password would go to any host/port ----------------------------------------


@pytest.fixture
def redis_storage(alice, project, redis_server, emulators_on_loopback):
    from tests.fixtures.redis_server import redis_admin

    redis_admin(redis_server.port).set("sec/a.json", json.dumps({"image": "x"}))
    config = {"project": project.id, "path": "sec", "host": "127.0.0.1", "port": redis_server.port, "db": 1}
    response = alice.post("/api/storages/redis/", {**config, "password": REDIS_PASSWORD}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize("endpoint", ["validate", "files"])
def test_validate_with_id_and_a_new_redis_port_does_not_send_the_password(alice, redis_storage, traps, endpoint):
    trap = traps(reply=REDIS_ERR)
    response = alice.post(
        f"/api/storages/redis/{endpoint}", {"id": redis_storage["id"], "port": trap.port}, format="json"
    )
    assert REDIS_PASSWORD.encode() not in trap.sent and trap.connections == 0, trap.sent
    errors = validation_errors(response)
    assert "password" in errors and "re-enter" in json.dumps(errors).lower()


def test_a_patch_to_a_new_redis_host_does_not_send_or_keep_the_password(alice, redis_storage, traps):
    trap = traps(reply=REDIS_ERR)
    url = f"/api/storages/redis/{redis_storage['id']}"
    errors = validation_errors(alice.patch(url, {"port": trap.port}, format="json"))
    assert list(errors) == ["password"]
    assert trap.connections == 0 and REDIS_PASSWORD.encode() not in trap.sent
    assert storage_model("redis").objects.get(pk=redis_storage["id"]).port == redis_storage["port"]


def test_a_password_the_request_gives_is_used_at_the_new_address(alice, redis_storage, traps):
    trap = traps(reply=REDIS_ERR)
    body = {"id": redis_storage["id"], "port": trap.port, "password": "the-users-own"}
    response = alice.post("/api/storages/redis/validate", body, format="json")
    assert "password" not in validation_errors(response)  # the connection failed
    assert b"the-users-own" in trap.sent and REDIS_PASSWORD.encode() not in trap.sent


def test_re_sending_the_same_connection_values_keeps_the_stored_password(alice, redis_storage, redis_server):
    body = {"id": redis_storage["id"], "host": "127.0.0.1", "port": redis_server.port, "db": 1, "title": "t"}
    assert alice.post("/api/storages/redis/validate", body, format="json").status_code == 200
    patched = alice.patch(f"/api/storages/redis/{redis_storage['id']}", {"db": 1, "title": "t"}, format="json")
    assert patched.status_code == 200, patched.content


# --- S3: the key id and the session token would be sent in clear ---------------------------


@pytest.fixture
def s3_storage(alice, project, s3_server, emulators_on_loopback):
    bucket = new_bucket(s3_server)
    put(s3_server, bucket, "a.jpg", b"x")
    config = {"project": project.id, **s3_config(s3_server, bucket, aws_session_token=SESSION_TOKEN)}
    response = alice.post("/api/storages/s3/", {**config, "use_blob_urls": True}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


SENT_BY_S3 = (S3_ACCESS_KEY.encode(), SESSION_TOKEN.encode())


def test_a_new_prefix_or_redis_db_keeps_the_stored_secrets(alice, s3_storage, s3_server, redis_storage):
    """Only address fields move secrets: a data manager narrowing the prefix, or moving to
    another database of the same Redis, is not asked for the keys again."""
    put(s3_server, s3_storage["bucket"], "narrower/b.jpg", b"y")
    patched = alice.patch(f"/api/storages/s3/{s3_storage['id']}", {"prefix": "narrower/"}, format="json")
    assert patched.status_code == 200, patched.content
    redis_admin_db2 = {"id": redis_storage["id"], "db": 2}
    response = alice.post("/api/storages/redis/validate", redis_admin_db2, format="json")
    assert "password" not in validation_errors(response)  # the connection was tried: no objects in db 2


@pytest.mark.parametrize("endpoint", ["validate", "files"])
def test_validate_with_id_and_a_new_s3_endpoint_does_not_send_the_keys(alice, s3_storage, traps, endpoint):
    trap = traps(reply=HTTP_403)
    body = {"id": s3_storage["id"], "s3_endpoint": trap.url}
    response = alice.post(f"/api/storages/s3/{endpoint}", body, format="json")
    assert not any(value in trap.sent for value in SENT_BY_S3) and trap.connections == 0, trap.sent
    assert set(validation_errors(response)) == {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}


def test_a_patch_to_a_new_s3_endpoint_needs_the_keys_again(alice, s3_storage, traps):
    trap = traps(reply=HTTP_403)
    url = f"/api/storages/s3/{s3_storage['id']}"
    errors = validation_errors(alice.patch(url, {"s3_endpoint": trap.url}, format="json"))
    assert set(errors) == {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
    assert trap.connections == 0
    # Some secrets given: the error names only those still missing.
    errors = validation_errors(alice.patch(url, {"s3_endpoint": trap.url, "aws_access_key_id": "mine"}, format="json"))
    assert set(errors) == {"aws_secret_access_key", "aws_session_token"}
    assert trap.connections == 0 and not any(value in trap.sent for value in SENT_BY_S3)


def test_a_new_bucket_with_the_secrets_given_again_is_saved(alice, s3_storage, s3_server):
    bucket = new_bucket(s3_server)
    put(s3_server, bucket, "b.jpg", b"x")
    url = f"/api/storages/s3/{s3_storage['id']}"
    assert set(validation_errors(alice.patch(url, {"bucket": bucket}, format="json"))) == {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
    secrets = {"aws_access_key_id": S3_ACCESS_KEY, "aws_secret_access_key": S3_SECRET_KEY, "aws_session_token": ""}
    response = alice.patch(url, {"bucket": bucket, **secrets}, format="json")
    assert response.status_code == 200, response.content
    stored = storage_model("s3").objects.get(pk=s3_storage["id"])
    assert stored.bucket == bucket and stored.aws_secret_access_key == S3_SECRET_KEY and not stored.aws_session_token


def test_settings_that_do_not_connect_keep_the_secrets(alice, s3_storage):
    url = f"/api/storages/s3/{s3_storage['id']}"
    response = alice.patch(url, {"title": "renamed", "presign_ttl": 5, "regex_filter": ".*"}, format="json")
    assert response.status_code == 200, response.content
    assert storage_model("s3").objects.get(pk=s3_storage["id"]).aws_session_token == SESSION_TOKEN


# --- every provider --------------------------------------------------------------------


def test_every_provider_asks_for_its_stored_secrets_when_the_address_changes(alice, project, provider):
    """A second location on the same server: the secrets are needed again where that moves an
    address field (an S3 bucket), and kept where it does not (a container, a key prefix)."""
    first, second = provider.new_location(), provider.new_location()
    provider.put(first, "a.json", b'{"n": 1}')
    provider.put(second, "a.json", b'{"n": 2}')
    created = alice.post(
        f"/api/storages/{provider.kind}/", {"project": project.id, **provider.config(first)}, format="json"
    )
    assert created.status_code == 201, created.content
    model = storage_model(provider.kind)
    stored = model.objects.get(pk=created.json()["id"])
    moved = provider.config(second)
    address_moved = any(provider.config(first).get(name) != moved.get(name) for name in model.address_fields)
    expected = {name for name in model.secret_fields if getattr(stored, name)} if address_moved else set()
    assert expected or provider.kind != "s3"

    without_secrets = {k: v for k, v in moved.items() if k not in model.secret_fields}
    url = f"/api/storages/{provider.kind}/{stored.pk}"
    for response in (
        alice.post(f"/api/storages/{provider.kind}/validate", {"id": stored.pk, **without_secrets}, format="json"),
        alice.patch(url, without_secrets, format="json"),
    ):
        if expected:
            assert set(validation_errors(response)) == expected
        else:
            assert response.status_code == 200, response.content
    given = alice.patch(url, moved, format="json")
    assert given.status_code == 200, given.content


def test_the_admin_asks_for_the_secrets_again_too(alice, redis_storage, traps, client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    trap = traps(reply=REDIS_ERR)
    url = f"/admin/io_storages/redisimportstorage/{redis_storage['id']}/change/"
    form = {
        "project": redis_storage["project"],
        "title": "",
        "description": "",
        "path": "sec",
        "host": "127.0.0.1",
        "port": trap.port,
        "password": "",
        "db": 1,
        "synchronizable": "on",
    }
    response = client.post(url, form)
    assert response.status_code == 200 and b"Re-enter" in response.content  # the form again, with the error
    assert storage_model("redis").objects.get(pk=redis_storage["id"]).port == redis_storage["port"]
    response = client.post(url, {**form, "port": redis_storage["port"], "title": "kept"})
    assert response.status_code == 302
    stored = storage_model("redis").objects.get(pk=redis_storage["id"])
    assert stored.title == "kept" and stored.password == REDIS_PASSWORD
    assert trap.connections == 0
