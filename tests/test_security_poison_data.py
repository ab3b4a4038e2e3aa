"""Task data that would make a project unreadable is refused at every entry point.

Two kinds: JSON nested deeper than 100 levels (the URI rewriting, the serializers and the JSON
encoder recursed: every later task list, detail and `next` of the project answered 500) and
lone UTF-16 surrogates such as the JSON escape "\\ud800" (not Unicode text: no database or
JSON answer carries them). Through the REST API, and through a sync from moto S3, where one
such object used to fail its whole batch of inserts.
"""

import json

import pytest

from io_storages.s3.models import S3ImportStorage
from tasks.models import Annotation, Task
from tests.api_errors import validation_errors
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, parquet_bytes, put, sync, task_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]

LIMIT = 100


def nested(levels, leaf=1):
    """`levels` objects inside each other: {"a": {"a": ... leaf}}."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def nested_text(levels, leaf="1"):
    return '{"a":' * levels + leaf + "}" * levels


def import_raw(client, project, text):
    return client.post(f"/api/projects/{project.id}/import", text, content_type="application/json")


def assert_project_readable(client, project):
    listing = client.get(f"/api/tasks/?project={project.id}")
    assert listing.status_code == 200, listing.content
    for task in listing.json()["tasks"]:
        assert client.get(f"/api/tasks/{task['id']}/").status_code == 200
        assert client.get(f"/api/tasks/{task['id']}/annotations/").status_code == 200
    assert client.get(f"/api/projects/{project.id}/next").status_code in (200, 404)


# --- nesting ---------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [LIMIT + 1, 600, 900])
def test_deeply_nested_import_is_refused_naming_the_place(alice, project, levels):
    response = import_raw(alice, project, json.dumps([{"ok": 1}, {"deep": nested(levels)}]))
    assert response.status_code == 400, response.content
    message = validation_errors(response)["task #1"][0]
    assert message.startswith("deep.a.a") and f"nests deeper than {LIMIT} levels" in message, message
    assert project.tasks.count() == 0
    assert_project_readable(alice, project)


@pytest.mark.parametrize(
    "task, where",
    [
        ({"data": {"x": 1}, "annotations": [{"result": [nested(600)]}]}, "annotations[0].result[0].a.a"),
        ({"data": {"x": 1}, "predictions": [{"result": [nested(600)]}]}, "predictions[0].result[0].a.a"),
        ({"data": {"x": nested(600)}}, "data.x.a.a"),
        ({"data": {"x": 1}, "meta": nested(600)}, "meta.a.a"),
    ],
)
def test_deep_annotations_predictions_data_and_meta_are_refused(alice, project, task, where):
    response = import_raw(alice, project, json.dumps([task]))
    assert response.status_code == 400, response.content
    message = validation_errors(response)["task #0"][0]
    assert message.startswith(where) and "nests deeper than" in message, message
    assert project.tasks.count() == 0 and Annotation.objects.count() == 0


def test_nesting_up_to_the_limit_imports_and_reads_back(alice, project):
    # The task object is level 1: flat data holds 99 more levels, the full form 98 inside data.
    flat = {"deep": nested(LIMIT - 1)}
    full = {"data": {"deep": nested(LIMIT - 2)}, "annotations": [{"result": [nested(LIMIT - 4)]}]}
    response = import_raw(alice, project, json.dumps([flat, full]))
    assert response.status_code == 201, response.content
    assert_project_readable(alice, project)
    task = Task.objects.get(project=project, inner_id=2)
    # The same data and result are accepted where they sit on their own (PATCH, annotations).
    assert alice.patch(f"/api/tasks/{task.id}/", {"data": full["data"]}, format="json").status_code == 200
    created = alice.post(
        f"/api/tasks/{task.id}/annotations/", {"result": full["annotations"][0]["result"]}, format="json"
    )
    assert created.status_code == 201, created.content
    # ... and one level more is not.
    response = alice.patch(f"/api/tasks/{task.id}/", {"data": {"deep": nested(LIMIT - 1)}}, format="json")
    assert "nests deeper than" in validation_errors(response)["data"][0]


def test_deep_task_patch_and_annotations_are_refused_and_nothing_changes(alice, project):
    assert import_raw(alice, project, '[{"n": 1}]').status_code == 201
    task = project.tasks.get()
    for field in ("data", "meta"):
        response = alice.patch(f"/api/tasks/{task.id}/", {field: nested(600)}, format="json")
        assert "nests deeper than" in validation_errors(response)[field][0]
    response = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [nested(600)]}, format="json")
    assert "nests deeper than" in validation_errors(response)["result"][0]
    annotation = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": []}, format="json").json()
    response = alice.patch(f"/api/annotations/{annotation['id']}/", {"result": [nested(600)]}, format="json")
    assert "nests deeper than" in validation_errors(response)["result"][0]
    task.refresh_from_db()
    assert task.data == {"n": 1} and task.meta == {}
    assert Annotation.objects.get().result == []
    assert_project_readable(alice, project)


def test_tasks_stored_deep_before_the_limit_stay_readable(alice, project, s3_server, s3_bucket):
    """Rows written before the limit existed: rewriting their storage URIs does not recurse."""
    put(s3_server, s3_bucket, "img.jpg", b"x")
    create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=True))
    uri = f"s3://{s3_bucket}/img.jpg"
    Task.objects.create(project=project, inner_id=1, data={"deep": nested(600, [uri, {"k": uri}])})
    listing = alice.get(f"/api/tasks/?project={project.id}")
    assert listing.status_code == 200, listing.content
    leaf = listing.json()["tasks"][0]["data"]["deep"]
    for _ in range(600):
        leaf = leaf["a"]
    assert leaf[0].startswith("/tasks/") and "/resolve/?fileuri=" in leaf[0]
    assert leaf[1]["k"] == leaf[0]
    assert_project_readable(alice, project)
    assert alice.get(f"/api/projects/{project.id}/next").status_code == 200


# --- lone surrogates -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, where",
    [
        ('[{"text": "a\\ud800b"}]', "text"),
        ('[{"text": "\\udfff"}]', "text"),
        ('[{"\\ud800key": "v"}]', "\\ud800key"),
        ('[{"data": {"x": ["ok", "\\udc00"]}}]', "data.x[1]"),
        ('[{"data": {"x": 1}, "meta": {"m": "\\ud800"}}]', "meta.m"),
        ('[{"data": {"x": 1}, "annotations": [{"result": [{"v": "\\ud800"}]}]}]', "annotations[0].result[0].v"),
        ('[{"data": {"x": 1}, "predictions": [{"result": [], "model_version": "\\ud800"}]}]', "model_version"),
    ],
)
def test_lone_surrogates_are_refused_at_import(alice, project, text, where):
    response = import_raw(alice, project, text)
    assert response.status_code == 400, response.content
    message = validation_errors(response)["task #0"][0]  # the answer itself is valid UTF-8 JSON
    assert message.startswith(where if where != "model_version" else "predictions[0].model_version"), message
    assert "lone surrogate" in message and "not valid Unicode" in message, message
    assert project.tasks.count() == 0
    assert_project_readable(alice, project)


def test_surrogate_pairs_are_text_and_import(alice, project):
    response = import_raw(alice, project, '[{"text": "\\ud83d\\ude00 \u00e9"}]')
    assert response.status_code == 201, response.content
    assert project.tasks.get().data == {"text": "\U0001f600 \u00e9"}


def test_lone_surrogates_are_refused_in_task_patch_and_annotations(alice, project):
    assert import_raw(alice, project, '[{"n": 1}]').status_code == 201
    task = project.tasks.get()
    for field in ("data", "meta"):
        body = '{"%s": {"t": "\\ud800"}}' % field
        response = alice.patch(f"/api/tasks/{task.id}/", body, content_type="application/json")
        assert "lone surrogate" in validation_errors(response)[field][0]
    body = '{"result": [{"value": {"text": ["\\udbff"]}}]}'
    response = alice.post(f"/api/tasks/{task.id}/annotations/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert validation_errors(response)["result"][0].startswith("[0].value.text[0] contains a lone surrogate")
    assert Annotation.objects.count() == 0
    annotation = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": []}, format="json").json()
    response = alice.patch(f"/api/annotations/{annotation['id']}/", body, content_type="application/json")
    assert "lone surrogate" in validation_errors(response)["result"][0]
    task.refresh_from_db()
    assert task.data == {"n": 1} and task.meta == {} and task.total_annotations == 1
    assert Annotation.objects.get().result == []
    assert_project_readable(alice, project)


# --- sync ------------------------------------------------------------------------------------
def test_a_sync_reports_each_poisoned_file_and_imports_the_good_ones_of_the_batch(alice, project, s3_server, s3_bucket):
    objects = {
        "t/good.json": {"text": "good"},
        "t/good.jsonl": '{"text": "line 1"}\n{"text": "line 2"}\n',
        "t/good.parquet": parquet_bytes([{"text": "row"}]),
        # nested deeper than the limit, than Python's json accepts, and inside a list
        "t/deep.json": json.dumps({"data": {"x": nested(600)}}),
        "t/deeper.json": nested_text(5000),
        "t/deeper.jsonl": '{"text": "before"}\n' + nested_text(5000) + "\n",
        "t/deep-item.json": '[{"text": "first"}, ' + nested_text(5000) + "]",
        "t/deep.parquet": parquet_bytes([{"data": json.dumps({"x": nested(600)})}]),
        "t/deeper.parquet": parquet_bytes([{"data": nested_text(5000)}]),
        # lone surrogates
        "t/surrogate.jsonl": '{"text": "ok"}\n{"text": "\\ud800"}\n',
        "t/surrogate-key.json": '{"\\udc00": 1}',
        "t/surrogate.parquet": parquet_bytes([{"data": '{"text": "\\ud800"}'}]),
    }
    for key, value in objects.items():
        put(s3_server, s3_bucket, key, value)
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="t"))
    result = sync(alice, storage)
    assert result["status"] == "completed_with_errors", result
    report = result["traceback"]
    for key in objects:
        if "good" not in key:
            assert f"s3://{s3_bucket}/{key}:" in report, (key, report)
    assert "deep.json: data.x.a.a" in report and "nests deeper than 100 levels" in report
    assert "lone surrogate" in report and "\\ud800" in report and "Traceback" not in report
    assert task_data(project) == [{"text": "good"}, {"text": "line 1"}, {"text": "line 2"}, {"text": "row"}]
    assert S3ImportStorage.objects.get(pk=storage["id"]).links.count() == 4
    assert_project_readable(alice, project)


def test_a_json_list_nested_50000_deep_is_one_file_error_in_bounded_memory(alice, project, s3_server, s3_bucket):
    """The streaming parser of JSON lists built each level's path prefix: memory grew with the
    square of the depth (20,000 levels, 40 KB: 1 GB; this file needed about 6 GB)."""
    put(s3_server, s3_bucket, "t/good.json", {"text": "good"})
    put(s3_server, s3_bucket, "t/deep-list.json", "[" + "[" * 50000 + "]" * 50000 + "]")
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="t"))
    result = sync(alice, storage)
    assert result["status"] == "completed_with_errors", result
    assert "t/deep-list.json: list item 0 nests deeper than 100 levels" in result["traceback"], result["traceback"]
    assert task_data(project) == [{"text": "good"}]


def test_an_unexpected_parser_error_is_that_files_error_with_an_id(
    alice, project, s3_server, s3_bucket, monkeypatch, caplog
):
    """A parser failing in a way nobody expected (here ijson, below our code) fails its file, not
    the batch; the user reads the kind of error and an id, the server log has the rest."""
    import ijson

    def broken(stream, **options):
        yield "start_array", None
        raise RuntimeError("internal state at /srv/secret/path.py")

    monkeypatch.setattr(ijson, "basic_parse", broken)
    put(s3_server, s3_bucket, "t/good.jsonl", '{"text": "good"}\n')
    put(s3_server, s3_bucket, "t/list.json", '[{"text": "never"}]')
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="t"))
    result = sync(alice, storage)
    assert result["status"] == "completed_with_errors", result
    report = result["traceback"]
    assert f"s3://{s3_bucket}/t/list.json: cannot be read: unexpected error (id " in report, report
    assert "RuntimeError" in report and "/srv/secret" not in report
    error_id = report.split("(id ")[1].split(")")[0]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert task_data(project) == [{"text": "good"}]
