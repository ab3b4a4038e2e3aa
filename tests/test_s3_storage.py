"""S3 import/export storages through the REST API against a real moto server."""

import json
import socket

import pytest

from io_storages import ssrf
from io_storages.s3.models import S3ImportStorage, S3ImportStorageLink
from tasks.models import Annotation
from tests.api_errors import error_text, validation_errors
from tests.fixtures.s3 import s3_config
from tests.storage_helpers import create_storage, parquet_bytes, put, sync, task_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


@pytest.fixture
def bucket(s3_server, s3_bucket):
    return s3_server, s3_bucket


def make_import(alice, project, bucket, **fields):
    endpoint, name = bucket
    return create_storage(alice, project, s3_config(endpoint, name, **fields))


# --- import: blobs -------------------------------------------------------------
def test_blob_import_creates_one_task_per_object(alice, project, bucket):
    endpoint, name = bucket
    for key in ["images/a.jpg", "images/b.jpg", "images/"]:  # the last is a folder marker
        put(endpoint, name, key, b"x")
    storage = make_import(alice, project, bucket, prefix="images", use_blob_urls=True)
    result = sync(alice, storage)
    assert result["status"] == "completed"
    assert result["last_sync_count"] == 2
    assert task_data(project) == [{"image": f"s3://{name}/images/a.jpg"}, {"image": f"s3://{name}/images/b.jpg"}]
    links = S3ImportStorageLink.objects.filter(storage_id=storage["id"])
    assert sorted(links.values_list("key", flat=True)) == ["images/a.jpg", "images/b.jpg"]


def test_resync_creates_nothing_and_a_new_object_creates_one_task(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    sync(alice, storage)
    again = sync(alice, storage)
    assert again["last_sync_count"] == 0 and again["meta"]["tasks_existed"] == 1
    put(endpoint, name, "b.jpg", b"x")
    third = sync(alice, storage)
    assert third["last_sync_count"] == 1 and third["meta"]["tasks_existed"] == 1
    assert project.tasks.count() == 2


def test_regex_filter_matches_from_the_start_of_the_key(alice, project, bucket):
    endpoint, name = bucket
    for key in ["a.jpg", "b.png", "sub.jpg.txt"]:
        put(endpoint, name, key, b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True, regex_filter=r".*\.jpg$")
    sync(alice, storage)
    assert task_data(project) == [{"image": f"s3://{name}/a.jpg"}]


@pytest.mark.parametrize("recursive, expected", [(False, ["top.jpg"]), (True, ["deep/er.jpg", "top.jpg"])])
def test_recursive_scan_versus_top_level(alice, project, bucket, recursive, expected):
    endpoint, name = bucket
    put(endpoint, name, "data/top.jpg", b"x")
    put(endpoint, name, "data/deep/er.jpg", b"x")
    storage = make_import(alice, project, bucket, prefix="data/", use_blob_urls=True, recursive_scan=recursive)
    sync(alice, storage)
    assert sorted(t["image"] for t in task_data(project)) == [f"s3://{name}/data/{k}" for k in expected]


@pytest.mark.parametrize("prefix", ["data", "data/"])
def test_prefix_with_or_without_trailing_slash_lists_the_folder(alice, project, bucket, prefix):
    endpoint, name = bucket
    put(endpoint, name, "data/1.jpg", b"x")
    put(endpoint, name, "database.jpg", b"x")  # shares the text prefix, not the folder
    storage = make_import(alice, project, bucket, prefix=prefix, use_blob_urls=True)
    assert sync(alice, storage)["last_sync_count"] == 1


# --- import: task files ------------------------------------------------------------
def test_json_object_list_jsonl_and_parquet_imports_with_annotations_and_predictions(alice, project, bucket):
    endpoint, name = bucket
    full = {
        "data": {"image": "s3://other/1.jpg"},
        "annotations": [{"result": [{"v": 1}]}],
        "predictions": [{"result": [{"v": 2}], "score": 0.5}],
    }
    put(endpoint, name, "tasks/one.json", full)
    put(endpoint, name, "tasks/list.json", [{"text": "l1"}, {"text": "l2"}])
    put(endpoint, name, "tasks/lines.jsonl", '{"text": "j1"}\n{"text": "j2"}\n')
    put(endpoint, name, "tasks/rows.parquet", parquet_bytes([{"text": "p1"}, {"text": "p2"}, {"text": "p3"}], 2))
    storage = make_import(alice, project, bucket, prefix="tasks")
    result = sync(alice, storage)
    assert result["status"] == "completed", result["traceback"]
    assert result["last_sync_count"] == 8
    texts = sorted(t["text"] for t in task_data(project) if "text" in t)
    assert texts == ["j1", "j2", "l1", "l2", "p1", "p2", "p3"]
    labeled = project.tasks.get(data={"image": "s3://other/1.jpg"})
    assert labeled.total_annotations == 1 and labeled.total_predictions == 1
    assert Annotation.objects.get(task=labeled).result == [{"v": 1}]
    rows = S3ImportStorageLink.objects.filter(storage_id=storage["id"], key="tasks/rows.parquet")
    assert sorted(rows.values_list("row_group", "row_index")) == [(0, 0), (0, 1), (1, 0)]
    assert sync(alice, storage)["last_sync_count"] == 0  # every row of every file is linked
    assert project.tasks.count() == 8


def test_broken_json_is_reported_with_its_key_while_other_keys_import(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "good.json", {"text": "ok"})
    put(endpoint, name, "broken.json", '[{"text": "a"}, {"text": ')
    put(endpoint, name, "image.jpg", b"\xff\xd8\xff binary")
    storage = make_import(alice, project, bucket)
    result = sync(alice, storage)
    assert result["status"] == "completed_with_errors"
    assert "broken.json" in result["traceback"] and "image.jpg" in result["traceback"]
    assert task_data(project) == [{"text": "ok"}]


def test_invalid_annotations_are_reported(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "bad.json", {"data": {"x": 1}, "annotations": [{"result": "nope"}]})
    result = sync(alice, make_import(alice, project, bucket))
    assert result["status"] == "failed"  # nothing could be imported, as Label Studio reports it
    assert "bad.json" in result["traceback"] and "'result' must be a list" in result["traceback"]
    assert project.tasks.count() == 0


def test_a_fixed_object_imports_on_the_next_sync(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "t.json", "{broken")
    storage = make_import(alice, project, bucket)
    assert sync(alice, storage)["status"] == "failed"  # its only object failed
    put(endpoint, name, "t.json", {"text": "fixed"})
    assert sync(alice, storage)["status"] == "completed"
    assert task_data(project) == [{"text": "fixed"}]


# --- validation, secrets, permissions ------------------------------------------------
def test_wrong_bucket_gives_400_on_create_and_validate(alice, project, s3_server):
    config = {"project": project.id, **s3_config(s3_server, "no-such-bucket-here")}
    for path in ["/api/storages/s3/", "/api/storages/s3/validate", "/api/storages/export/s3/"]:
        response = alice.post(path, config, format="json")
        assert "Cannot find bucket no-such-bucket-here in S3" in error_text(response, 400), path
    assert not S3ImportStorage.objects.exists()


def test_empty_prefix_is_refused_for_import_but_fine_for_export(alice, project, bucket):
    endpoint, name = bucket
    config = {"project": project.id, **s3_config(endpoint, name, prefix="nothing-here/")}
    response = alice.post("/api/storages/s3/validate", config, format="json")
    assert "No objects found" in error_text(response, 400)
    assert alice.post("/api/storages/export/s3/validate", config, format="json").status_code == 200


def test_wrong_credentials_give_400(alice, project):
    from tests.fixtures.s3 import moto_argv
    from tests.fixtures.servers import running_server

    # A moto server that enforces authentication: unknown keys are refused.
    with running_server(moto_argv, name="moto-auth", env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        config = {"project": project.id, **s3_config(server.url, "any-bucket", aws_access_key_id="WRONG")}
        response = alice.post("/api/storages/s3/validate", config, format="json")
    assert "aws_access_key_id" in error_text(response, 400)


def test_secrets_are_write_only_and_kept_on_patch(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True, aws_session_token="sess-secret")
    responses = [
        storage,
        alice.get(f"/api/storages/s3/{storage['id']}").json(),
        alice.get(f"/api/storages/s3/?project={project.id}").json()[0],
        alice.get(f"/api/storages/?project={project.id}").json()[0],
        alice.patch(f"/api/storages/s3/{storage['id']}", {"title": "renamed"}, format="json").json(),
    ]
    for body in responses:
        text = json.dumps(body)
        assert "test-secret-key" not in text and "sess-secret" not in text and "test-access-key" not in text
        assert "aws_secret_access_key" not in body
    stored = S3ImportStorage.objects.get(pk=storage["id"])
    assert stored.title == "renamed" and stored.aws_secret_access_key == "test-secret-key"


def test_validate_with_id_takes_missing_secrets_from_the_stored_storage(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    response = alice.post("/api/storages/s3/validate", {"id": storage["id"], "bucket": name}, format="json")
    assert response.status_code == 200 and response.json() == {}


def test_validate_with_a_form_or_a_bad_id(alice, project, bucket):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    form = alice.post("/api/storages/s3/validate", {"id": str(storage["id"]), "bucket": name}, format="multipart")
    assert form.status_code == 200 and form.json() == {}
    for bad in (["1"], {"a": 1}, True, "x1"):  # each used to be a 500
        response = alice.post("/api/storages/s3/validate", {"id": bad, "bucket": name}, format="json")
        assert "id" in validation_errors(response), bad


@pytest.mark.parametrize("path", ["s3/validate", "s3/files", "export/s3/validate", "export/s3/{id}/sync"])
@pytest.mark.parametrize("body", [[None, None], 1.5, "text"])
def test_a_body_that_is_not_an_object_is_a_400(alice, project, bucket, path, body):
    put(*bucket, "a.jpg", b"x")
    storage = alice.post("/api/storages/export/s3/", {"project": project.id, **s3_config(*bucket)}, format="json")
    response = alice.post(f"/api/storages/{path.format(id=storage.json()['id'])}", body, format="json")
    assert "JSON object" in error_text(response, 400)


@pytest.mark.parametrize("path", ["validate", "files", "{id}/sync", "", "{id}"])
def test_options_describes_the_storage_views(alice, project, bucket, path):
    # OPTIONS asks the view for a serializer: the APIView-based ones answered 500.
    put(*bucket, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    response = alice.options(f"/api/storages/s3/{path.format(id=storage['id'])}")
    assert response.status_code == 200 and response.json()["name"]


def test_other_organization_cannot_see_or_use_storages(alice, bob, project, bucket):
    put(*bucket, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    assert bob.get(f"/api/storages/s3/{storage['id']}").status_code == 404
    assert bob.get(f"/api/storages/s3/?project={project.id}").status_code == 404
    assert bob.post(f"/api/storages/s3/{storage['id']}/sync").status_code == 404
    assert bob.patch(f"/api/storages/s3/{storage['id']}", {"title": "x"}, format="json").status_code == 404
    assert bob.delete(f"/api/storages/s3/{storage['id']}").status_code == 404
    assert bob.post("/api/storages/s3/validate", {"id": storage["id"]}, format="json").status_code == 404
    config = {"project": project.id, **s3_config(*bucket)}
    assert bob.post("/api/storages/s3/", config, format="json").status_code == 404


def test_list_requires_project(alice):
    assert alice.get("/api/storages/s3/").status_code == 400


def test_deleting_a_storage_keeps_its_tasks(alice, project, bucket):
    put(*bucket, "a.jpg", b"x")
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    sync(alice, storage)
    assert alice.delete(f"/api/storages/s3/{storage['id']}").status_code == 204
    assert project.tasks.count() == 1


def test_preview_lists_the_first_objects(alice, project, bucket):
    endpoint, name = bucket
    for i in range(5):
        put(endpoint, name, f"f{i}.jpg", b"12345")
    response = alice.post("/api/storages/s3/files", {**s3_config(endpoint, name), "limit": 3}, format="json")
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["key"] for f in files] == ["f0.jpg", "f1.jpg", "f2.jpg"] and files[0]["size"] == 5


def test_types_and_form_endpoints(alice):
    assert {"name": "s3", "title": "AWS S3"} in alice.get("/api/storages/types").json()
    assert {"name": "s3", "title": "AWS S3"} in alice.get("/api/storages/export/types").json()
    form = alice.get("/api/storages/s3/form").json()  # Label Studio's shape: groups of fields
    assert all(set(group) == {"columnCount", "fields"} for group in form)
    assert [f["name"] for f in form[0]["fields"]] == ["title", "bucket", "prefix"]
    fields = {f["name"]: f for group in form for f in group["fields"]}
    assert fields["aws_secret_access_key"]["type"] == "password"
    assert fields["use_blob_urls"]["type"] == "toggle" and fields["bucket"]["required"]
    export_fields = {f["name"] for g in alice.get("/api/storages/export/s3/form").json() for f in g["fields"]}
    assert "can_delete_objects" in export_fields and "use_blob_urls" not in export_fields
    assert alice.get("/api/storages/nope/form").status_code == 404


# --- SSRF ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9", "http://169.254.169.254", "http://10.1.2.3:9000", "http://localhost:9000"]
)
def test_endpoints_on_internal_addresses_are_refused(alice, project, settings, endpoint):
    settings.SSRF_PROTECTION_ENABLED = True
    config = {"project": project.id, **s3_config(endpoint, "bucket-name")}
    for path in ["/api/storages/s3/", "/api/storages/s3/validate", "/api/storages/export/s3/"]:
        response = alice.post(path, config, format="json")
        assert "SSRF" in error_text(response, 400), path
    assert not S3ImportStorage.objects.exists()


def test_dns_rebinding_after_the_checks_is_refused_at_connect(alice, project, bucket, settings, monkeypatch):
    """A name that resolves to a public address for the two name checks (on save, before the
    request) and to the server's loopback for urllib3's own lookup: the connected socket is
    checked too, so the request never leaves."""
    endpoint, name = bucket
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34", "93.184.216.34"])  # then 127.0.0.1, where moto listens

    def rebinding_dns(host, *args, **kwargs):
        if host == "rebind.example":
            host = next(answers, "127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    settings.SSRF_PROTECTION_ENABLED = True
    ssrf.clear_guard_cache()
    rebinding = endpoint.replace("127.0.0.1", "rebind.example")
    response = alice.post("/api/storages/s3/", {"project": project.id, **s3_config(rebinding, name)}, format="json")
    assert "'rebind.example' connected to a loopback address (127.0.0.1)" in error_text(response, 400)
    assert not S3ImportStorage.objects.exists()


def test_an_endpoint_configured_by_the_operator_is_trusted(alice, project, bucket, settings, monkeypatch):
    endpoint, name = bucket
    put(endpoint, name, "a.jpg", b"x")
    settings.SSRF_PROTECTION_ENABLED = True
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    storage = make_import(alice, project, bucket, use_blob_urls=True)
    assert sync(alice, storage)["status"] == "completed"
