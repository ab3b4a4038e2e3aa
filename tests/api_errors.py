"""Reading the API's error answers: every JSON error is Label Studio's envelope
(core.api.error_body), `{"id", "status_code", "version", "detail", "exc_info"}` plus
`validation_errors` on validation errors. Each helper checks the envelope, then gives the part
a test looks at."""

import json
import uuid

from django.conf import settings

# The keys of Label Studio 1.23.2's envelope and the types of their values.
ENVELOPE = {"id": str, "status_code": int, "version": str, "detail": str, "exc_info": type(None)}
VALIDATION_ERROR = "Validation error"


def error_body(response, status=None):
    """The body of an error answer after checking it is the envelope: JSON, Label Studio's keys
    and types, a uuid4 id, our version, `status_code` the HTTP status (and `status` if given)."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content)
    assert response.status_code >= 400, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json", (response["Content-Type"], response.content)
    body = response.json()
    assert isinstance(body, dict), body
    keys = set(ENVELOPE) | ({"validation_errors"} if "validation_errors" in body else set())
    assert set(body) == keys, body
    assert {key: type(body[key]) for key in ENVELOPE} == ENVELOPE, body
    assert uuid.UUID(body["id"]).version == 4 and body["id"] == str(uuid.UUID(body["id"])), body
    assert body["status_code"] == response.status_code and body["version"] == settings.VERSION, body
    if "validation_errors" in body:
        assert body["detail"] == VALIDATION_ERROR and isinstance(body["validation_errors"], dict), body
    return body


def error_detail(response, status=None):
    """`detail`, the message of an error answer that is not a validation error."""
    body = error_body(response, status)
    assert "validation_errors" not in body, body
    return body["detail"]


def validation_errors(response, status=400):
    """`validation_errors` of a validation error: messages by field (`non_field_errors` for
    the body as a whole), as Django REST framework gives them."""
    body = error_body(response, status)
    assert "validation_errors" in body, body
    return body["validation_errors"]


def error_text(response, status=None):
    """All an error answer says, `detail` and validation errors, as JSON text: for checks that
    a message is (or is not) in the answer, wherever it sits."""
    body = error_body(response, status)
    return json.dumps([body["detail"], body.get("validation_errors")])
