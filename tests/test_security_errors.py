"""What users read about a failed sync: a message and an error id, never a Python traceback
with the server's paths; the traceback goes to the server log under that id."""

import logging
import re

import botocore.paginate
import pytest

from tests.fixtures.s3 import new_bucket, s3_config
from tests.storage_helpers import put, sync

pytestmark = pytest.mark.django_db

INTERNAL = "/srv/internal/deploy/secret_module.py"


@pytest.fixture
def storage(alice, project, s3_server, emulators_on_loopback):
    bucket = new_bucket(s3_server)
    put(s3_server, bucket, "a.json", {"image": "x"})
    response = alice.post("/api/storages/s3/", {"project": project.id, **s3_config(s3_server, bucket)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_unexpected_failure_stores_an_error_id_not_a_traceback(alice, storage, monkeypatch, caplog):
    # A bug below our code (here: the SDK's paginator raising what nobody expects).
    def broken(self, *args, **kwargs):
        raise RuntimeError(f"unexpected state in {INTERNAL}")

    monkeypatch.setattr(botocore.paginate.PageIterator, "_make_request", broken)
    with caplog.at_level(logging.ERROR, logger="io_storages.jobs"):
        result = sync(alice, storage)
    assert result["status"] == "failed"
    shown = [result["traceback"], alice.get(f"/api/storages/s3/{storage['id']}").json()["traceback"]]
    for text in shown:
        assert "Traceback" not in text and ".py" not in text and "/" not in text and INTERNAL not in text, text
        match = re.fullmatch(
            r"Unexpected error \(id ([0-9a-f]{32})\): RuntimeError; the server log has the details", text
        )
        assert match, text
    error_id = match.group(1)
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and INTERNAL in str(logged[0].exc_info[1])


def test_expected_storage_errors_keep_their_message(alice, storage, s3_server):
    from tests.fixtures.s3 import s3_admin

    bucket = storage["bucket"]
    s3_admin(s3_server).delete_object(Bucket=bucket, Key="a.json")
    s3_admin(s3_server).delete_bucket(Bucket=bucket)
    result = sync(alice, storage)
    assert result["status"] == "failed" and "does not exist" in result["traceback"]
