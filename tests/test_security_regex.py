"""`regex_filter` runs in linear time (RE2): no pattern a tenant types can hold a server thread.

Through the REST API against moto: the files preview and a sync (both run the filter inside
the request here), patterns RE2 cannot run, and storages saved before with such a pattern.
"""

import time

import pytest

from io_storages.s3.models import S3ImportStorage
from tests.api_errors import error_text, validation_errors
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, put, sync, task_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]

#: With a backtracking engine, (a+)+$ against 30 a's and a non-matching tail tries ~2^30 ways
#: (8.7 s on this machine, doubling per character); RE2 answers in microseconds.
EVIL = r"(a+)+$"
EVIL_KEY = "a" * 30 + ".jpg"


@pytest.fixture
def bucket(s3_server, s3_bucket):
    return s3_server, s3_bucket


def preview(client, project, bucket, **fields):
    config = {"project": project.id, **s3_config(*bucket, **fields)}
    return client.post("/api/storages/s3/files", config, format="json")


def test_catastrophic_pattern_is_linear_in_the_files_preview(alice, project, bucket):
    put(*bucket, EVIL_KEY, b"x")
    put(*bucket, "aaaa", b"x")
    started = time.monotonic()
    response = preview(alice, project, bucket, regex_filter=EVIL)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert [f["key"] for f in response.json()["files"]] == ["aaaa"]
    assert elapsed < 1.5, f"the preview took {elapsed:.1f} s: the filter backtracks"


def test_catastrophic_pattern_is_linear_in_a_sync(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, EVIL_KEY, b"x")
    put(endpoint, name, "aaaa", b"x")
    storage = create_storage(alice, project, s3_config(endpoint, name, use_blob_urls=True, regex_filter=EVIL))
    started = time.monotonic()
    result = sync(alice, storage)
    elapsed = time.monotonic() - started
    assert result["status"] == "completed", result
    assert task_data(project) == [{"image": f"s3://{name}/aaaa"}]
    assert elapsed < 1.5, f"the sync took {elapsed:.1f} s: the filter backtracks"


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # backreference
        r"(?P<x>a)(?P=x)",  # named backreference
        r"(?=images/).*",  # lookahead
        r".*(?<!\.tmp)$",  # lookbehind
        r"(?!tmp/)",  # negative lookahead
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_the_syntax(alice, project, bucket, pattern):
    for response in (
        alice.post("/api/storages/s3/", {"project": project.id, **s3_config(*bucket, regex_filter=pattern)}),
        alice.post("/api/storages/s3/validate", {"project": project.id, **s3_config(*bucket, regex_filter=pattern)}),
        preview(alice, project, bucket, regex_filter=pattern),
    ):
        message = " ".join(validation_errors(response)["regex_filter"])
        assert "RE2" in message and "linear" in message, message
    assert not S3ImportStorage.objects.exists()


def test_invalid_pattern_is_refused(alice, project, bucket):
    response = alice.post("/api/storages/s3/", {"project": project.id, **s3_config(*bucket, regex_filter="a[")})
    assert "RE2" in " ".join(validation_errors(response)["regex_filter"])


def test_patch_to_a_pattern_re2_cannot_run_is_refused_and_the_old_one_kept(alice, project, bucket):
    put(*bucket, "a.jpg", b"x")
    storage = create_storage(alice, project, s3_config(*bucket, regex_filter=r".*\.jpg"))
    response = alice.patch(f"/api/storages/s3/{storage['id']}", {"regex_filter": r"(?=a)"}, format="json")
    assert "RE2" in " ".join(validation_errors(response)["regex_filter"])
    assert S3ImportStorage.objects.get(pk=storage["id"]).regex_filter == r".*\.jpg"


def test_match_from_the_start_of_the_key_as_before(alice, project, bucket):
    endpoint, name = bucket
    for key in ["a.jpg", "sub/b.jpg", "c.png", "d.jpg.txt", "E.JPG", "x/a.jpg"]:
        put(endpoint, name, key, b"x")

    def keys(pattern):
        response = preview(alice, project, bucket, regex_filter=pattern, recursive_scan=True)
        assert response.status_code == 200, response.content
        return sorted(f["key"] for f in response.json()["files"])

    assert keys(r".*\.jpg$") == ["a.jpg", "sub/b.jpg", "x/a.jpg"]
    assert keys(r"a") == ["a.jpg"]  # from the start: x/a.jpg does not match
    assert keys(r"(?i).*\.jpg$") == ["E.JPG", "a.jpg", "sub/b.jpg", "x/a.jpg"]
    assert keys(r"(?P<folder>sub|x)/\w+\.jpg") == ["sub/b.jpg", "x/a.jpg"]
    assert keys(r"[a-c]\.(jpg|png)") == ["a.jpg", "c.png"]
    assert keys(r"") == ["E.JPG", "a.jpg", "c.png", "d.jpg.txt", "sub/b.jpg", "x/a.jpg"]  # empty: no filter


def test_a_stored_pattern_re2_cannot_run_fails_the_sync_with_a_clear_message(alice, project, bucket):
    """A storage saved before RE2 (Python syntax was accepted then) with a lookahead."""
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = create_storage(alice, project, s3_config(endpoint, name, use_blob_urls=True))
    S3ImportStorage.objects.filter(pk=storage["id"]).update(regex_filter=r"(?!b).*\.jpg")
    result = sync(alice, storage)
    assert result["status"] == "failed", result
    assert "regex_filter" in result["traceback"] and "RE2" in result["traceback"], result["traceback"]
    assert "Traceback" not in result["traceback"]
    assert project.tasks.count() == 0
    # The preview of the stored configuration says the same, as a 400.
    response = alice.post("/api/storages/s3/files", {"id": storage["id"]}, format="json")
    assert "RE2" in error_text(response, 400)
