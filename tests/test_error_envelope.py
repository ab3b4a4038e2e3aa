"""Every JSON error of the API is Label Studio's envelope (core.api.error_body):
`{"id": "<uuid4>", "status_code": 400, "version": "...", "detail": "...", "exc_info": null}`,
plus `validation_errors` (by field, or `non_field_errors`) on validation errors, which Label
Studio's web UI shows to the user. Each answer is compared, key by key and type by type, with
one recorded from a real Label Studio 1.23.2 (LS_* below, as it answered them); `version` is
ours (settings.VERSION), as Label Studio puts its own there."""

import base64
import logging

import pytest
from django.conf import settings
from rest_framework import exceptions
from rest_framework.test import APIClient

from core.api import exception_handler
from io_storages.s3.models import S3ImportStorage
from tasks.models import Task
from tests.api_errors import error_body, error_detail, validation_errors

pytestmark = pytest.mark.django_db

# Answers of Label Studio 1.23.2 (recorded): a validation error, and any other error.
LS_VALIDATION_ERROR = {
    "id": "0d20de85-9240-422b-bbb5-c05a46660d42",
    "status_code": 400,
    "version": "1.23.2",
    "detail": "Validation error",
    "exc_info": None,
    "validation_errors": {"project": ["This field is required."]},
}
LS_NON_FIELD_ERROR = {
    "id": "e477050c-62ff-4e71-9ef5-401e0980aee8",
    "status_code": 400,
    "version": "1.23.2",
    "detail": "Validation error",
    "exc_info": None,
    "validation_errors": {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
}
LS_PARSE_ERROR = {
    "id": "3457fd7a-2141-4d82-81ec-1baeb29fa5a1",
    "status_code": 400,
    "version": "1.23.2",
    "detail": "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    "exc_info": None,
}
LS_UNAUTHORIZED = {
    "id": "33c314dc-b406-42d7-ab41-6f038888400f",
    "status_code": 401,
    "version": "1.23.2",
    "detail": "Authentication credentials were not provided.",
    "exc_info": None,
}
LS_NOT_FOUND = {
    "id": "28610e97-c4cc-4de0-9bef-b538f66cceb5",
    "status_code": 404,
    "version": "1.23.2",
    "detail": "No Task matches the given query.",
    "exc_info": None,
}
LS_SERVER_ERROR = {
    "id": "ca054f12-f07b-4de0-8cac-f42d1bcfdf7b",
    "status_code": 500,
    "version": "1.23.2",
    "detail": "expected string or bytes-like object, got 'NoneType'",
    "exc_info": None,
}
HTTP_403 = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def shape(value):
    """The keys and value types of an answer, nested: what a client may rely on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def same_shape(response, label_studio, status):
    """The answer is the envelope, shaped like Label Studio's answer `label_studio` (LS_NOT_FOUND
    stands for every error but validation errors: they differ only in status and message)."""
    body = error_body(response, status)
    assert shape(body) == shape(label_studio), (body, label_studio)
    assert body["id"] != label_studio["id"] and body["version"] == settings.VERSION
    return body


def without_id(body):
    return {key: value for key, value in body.items() if key not in ("id", "version")}


# --- 400 -------------------------------------------------------------------------------------
def test_a_field_error_is_400_validation_errors_by_field_as_label_studio(alice):
    response = alice.post("/api/storages/s3", {"bucket": "pytest-s3-images"}, format="json")
    body = same_shape(response, LS_VALIDATION_ERROR, 400)
    assert without_id(body) == without_id(LS_VALIDATION_ERROR)  # Label Studio's message too
    assert validation_errors(response) == {"project": ["This field is required."]}


def test_a_non_field_error_is_400_under_non_field_errors_as_label_studio(alice, project):
    task = Task.objects.create(project=project, inner_id=1, data={"n": 1})
    response = alice.patch(f"/api/tasks/{task.id}/", [{"data": {"n": 2}}], format="json")
    body = same_shape(response, LS_NON_FIELD_ERROR, 400)
    assert without_id(body) == without_id(LS_NON_FIELD_ERROR)
    task.refresh_from_db()
    assert task.data == {"n": 1}


def test_several_fields_keep_their_names_and_messages(alice):
    response = alice.post("/api/projects/", {"title": "ab", "maximum_annotations": "many"}, format="json")
    errors = validation_errors(response)
    assert set(errors) == {"title", "maximum_annotations"}, errors
    assert all(isinstance(messages, list) and all(isinstance(m, str) for m in messages) for messages in errors.values())
    assert errors["maximum_annotations"] == ["A valid integer is required."]


def test_malformed_json_is_400_with_the_parser_message_and_no_validation_errors(alice):
    response = alice.post("/api/storages/s3", "{project: 1}", content_type="application/json")
    body = same_shape(response, LS_PARSE_ERROR, 400)
    assert body["detail"] == LS_PARSE_ERROR["detail"]


def test_a_file_view_400_is_the_envelope(alice, project):
    task = Task.objects.create(project=project, inner_id=1, data={"image": "s3://b/a.jpg"})
    response = alice.get(f"/tasks/{task.id}/resolve/")
    same_shape(response, LS_NOT_FOUND, 400)
    assert "fileuri" in error_detail(response)


# --- 401, 403 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization, detail",
    [
        (None, "Authentication credentials were not provided."),
        ("Token wrongtoken0000000000000000000000000000", "Invalid token."),
        ("Bearer wrongtoken", "Authentication credentials were not provided."),
    ],
)
@pytest.mark.parametrize("path", ["/api/storages/s3?project=1", "/api/projects", "/api/storages/types"])
def test_401_is_the_envelope_and_keeps_www_authenticate(path, authorization, detail):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get(path)
    body = same_shape(response, LS_UNAUTHORIZED, 401)
    assert body["detail"] == detail and response["WWW-Authenticate"] == "Token"


def test_401_of_a_file_view_is_the_envelope():
    response = APIClient().get("/tasks/1/resolve/?fileuri=czM6Ly9iL2EuanBn")
    same_shape(response, LS_UNAUTHORIZED, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_403_a_session_without_its_csrf_token(alice):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice@example.com", password="pw")
    response = client.post("/api/projects/", {"title": "Cats"}, format="json")
    body = same_shape(response, LS_NOT_FOUND, 403)
    assert body["detail"].startswith("CSRF Failed")


# --- 404, 405 --------------------------------------------------------------------------------
def test_404_of_an_unknown_object_names_it_as_label_studio(alice):
    response = alice.get("/api/tasks/99999999")
    body = same_shape(response, LS_NOT_FOUND, 404)
    assert without_id(body) == without_id(LS_NOT_FOUND)


@pytest.mark.parametrize(
    "path, detail",
    [
        ("/api/nothing-here/", "Not found."),
        ("/api/storages/nosuchtype/1", "Unknown storage type 'nosuchtype'"),
        ("/api/projects/99999999/tasks", "No Project matches the given query."),
        ("/data/local-files/?d=a.jpg", "Serving local files is disabled (LOCAL_FILES_SERVING_ENABLED)"),
    ],
)
def test_404_of_unknown_urls_and_objects_is_the_envelope(alice, path, detail):
    # Label Studio answers an unknown URL with an HTML page: we answer JSON like everywhere.
    response = alice.get(path)
    assert same_shape(response, LS_NOT_FOUND, 404)["detail"] == detail


def test_405_is_the_envelope_and_keeps_allow(alice):
    response = alice.put("/api/storages/types", {}, format="json")
    body = same_shape(response, LS_NOT_FOUND, 405)
    assert body["detail"] == 'Method "PUT" not allowed.' and "GET" in response["Allow"]


# --- 413, 415, 424 ---------------------------------------------------------------------------
def test_413_of_a_body_over_the_limit_is_the_envelope(alice, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = alice.post(f"/api/projects/{project.id}/import", [{"text": "x" * 20_000}], format="json")
    body = same_shape(response, LS_NOT_FOUND, 413)
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in body["detail"]


def test_400_of_too_many_fields_is_the_envelope_without_validation_errors(alice):
    fields = "&".join(f"f{i}=1" for i in range(1001))
    response = alice.get(f"/api/projects/?{fields}")
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in same_shape(response, LS_PARSE_ERROR, 400)["detail"]


def test_415_is_the_envelope(alice, project):
    response = alice.post(f"/api/projects/{project.id}/import", "a=1", content_type="application/x-www-form-urlencoded")
    body = same_shape(response, LS_NOT_FOUND, 415)
    assert "application/json" in body["detail"]


def test_424_of_a_provider_failure_is_the_envelope(alice, project, traps, emulators_on_loopback):
    """An S3 server that refuses the read (403): the provider's message, as a 424."""
    trap = traps(reply=HTTP_403)
    S3ImportStorage.objects.create(
        project=project,
        bucket="refusing",
        s3_endpoint=trap.url,
        aws_access_key_id="key-id",
        aws_secret_access_key="the-secret-value",
        presign=False,
    )
    task = Task.objects.create(project=project, inner_id=1, data={"image": "s3://refusing/a.jpg"})
    fileuri = base64.urlsafe_b64encode(b"s3://refusing/a.jpg").decode()
    response = alice.get(f"/tasks/{task.id}/resolve/?fileuri={fileuri}")
    body = same_shape(response, LS_NOT_FOUND, 424)
    assert "'refusing'" in body["detail"] and "denied" in body["detail"].lower(), body  # the provider's message
    assert "the-secret-value" not in response.content.decode()


# --- 500 -------------------------------------------------------------------------------------
def test_500_of_an_unexpected_error_tells_nothing_and_logs_the_traceback_under_its_id(alice, project, settings, caplog):
    """A real failure, no stub: the operator changed STORAGE_SECRET_KEYS without keeping the
    key that encrypted a stored secret, so reading the storage fails."""
    storage = S3ImportStorage.objects.create(
        project=project, bucket="b", aws_access_key_id="key-id", aws_secret_access_key="secret"
    )
    settings.STORAGE_SECRET_KEYS = ["a key that never encrypted anything"]
    with caplog.at_level(logging.ERROR, logger="core.api"):
        response = alice.get(f"/api/storages/s3/{storage.pk}")
    body = same_shape(response, LS_SERVER_ERROR, 500)
    # Label Studio puts str(exc) in `detail`; ours says nothing of the failure.
    assert body["detail"] == "Internal server error" and body["exc_info"] is None
    assert "STORAGE_SECRET_KEYS" not in response.content.decode()
    logged = [r for r in caplog.records if body["id"] in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info, caplog.records
    assert "STORAGE_SECRET_KEYS" in str(logged[0].exc_info[1])


# --- the rule, on the handler itself ---------------------------------------------------------
@pytest.mark.parametrize(
    "exc, status, detail, errors",
    [
        (exceptions.ValidationError("one message"), 400, "Validation error", {"non_field_errors": ["one message"]}),
        (exceptions.ValidationError(["a", "b"]), 400, "Validation error", {"non_field_errors": ["a", "b"]}),
        (exceptions.ValidationError({"title": ["short"]}), 400, "Validation error", {"title": ["short"]}),
        # Nested serializers' errors stay as DRF gives them.
        (
            exceptions.ValidationError({"created_by": {"email": ["bad"]}, "tags": [{}, {"name": ["empty"]}]}),
            400,
            "Validation error",
            {"created_by": {"email": ["bad"]}, "tags": [{}, {"name": ["empty"]}]},
        ),
        # {"detail": "<message>"} is a message, as in Label Studio; a list under it is a field.
        (exceptions.ValidationError({"detail": "a message"}), 400, "a message", None),
        (exceptions.ValidationError({"detail": ["m"]}), 400, "Validation error", {"detail": ["m"]}),
        (exceptions.NotFound(), 404, "Not found.", None),
        (exceptions.Throttled(wait=3), 429, "Request was throttled. Expected available in 3 seconds.", None),
        (exceptions.APIException(), 500, "A server error occurred.", None),
    ],
)
def test_every_drf_exception_becomes_the_envelope(exc, status, detail, errors):
    response = exception_handler(exc, {})
    body = response.data
    assert response.status_code == status and body["status_code"] == status
    assert body["detail"] == detail and body.get("validation_errors") == errors
    assert set(body) == set(LS_NOT_FOUND) | ({"validation_errors"} if errors is not None else set())
    if isinstance(exc, exceptions.Throttled):
        assert response["Retry-After"] == "3"


def test_django_http404_and_permission_denied_become_the_envelope():
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    assert exception_handler(Http404("No Task matches the given query."), {}).data["detail"] == (
        "No Task matches the given query."
    )
    denied = exception_handler(PermissionDenied(), {})
    assert denied.status_code == 403 and denied.data["detail"] == "You do not have permission to perform this action."
