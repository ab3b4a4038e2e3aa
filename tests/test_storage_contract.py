"""The storage contract, run for every provider against its real server (tests/providers.py):
create, validate, preview, import sync (blobs and task files), re-sync, export (manual and
automatic), deletion, failure messages, secrets and organization isolation."""

import gzip
import io
import json
import re

import pytest

from tasks.models import Annotation
from tests.api_errors import error_text
from tests.providers import ENCODING_KINDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def location(provider):
    return provider.new_location()


def body(value):
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def put_all(provider, location, objects):
    for key, value in objects.items():
        provider.put(location, key, body(value))


def parquet(rows, row_group_size):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def api_path(provider, export=False, *parts):
    return "/".join(["/api/storages", *(["export"] if export else []), provider.kind, *map(str, parts)])


def create(client, project, provider, config, export=False):
    response = client.post(api_path(provider, export), {"project": project.id, **config}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def sync(client, provider, storage, export=False, **options):
    response = client.post(api_path(provider, export, storage["id"], "sync"), options, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def data_of(project):
    return sorted((t.data for t in project.tasks.all()), key=json.dumps)


# --- import ------------------------------------------------------------------------------
def test_blob_import_creates_one_task_per_object_and_resync_creates_none(alice, project, provider, location):
    put_all(provider, location, {"images/a.jpg": b"a", "images/b.jpg": b"b"})
    storage = create(alice, project, provider, provider.config(location, prefix="images", use_blob_urls=True))
    first = sync(alice, provider, storage)
    assert first["status"] == "completed", first["traceback"]
    assert first["last_sync_count"] == 2
    assert data_of(project) == [{"image": provider.uri(location, f"images/{k}")} for k in ("a.jpg", "b.jpg")]

    again = sync(alice, provider, storage)
    assert again["last_sync_count"] == 0 and again["meta"]["tasks_existed"] == 2
    put_all(provider, location, {"images/c.jpg": b"c"})
    assert sync(alice, provider, storage)["last_sync_count"] == 1
    assert project.tasks.count() == 3


def test_task_files_of_every_format_import_with_annotations_and_predictions(alice, project, provider, location):
    full = {
        "data": {"text": "full"},
        "annotations": [{"result": [{"v": 1}]}],
        "predictions": [{"result": [{"v": 2}], "score": 0.5}],
    }
    put_all(
        provider,
        location,
        {
            "tasks/one.json": full,
            "tasks/list.json": [{"text": "l1"}, {"text": "l2"}],
            "tasks/lines.jsonl": '{"text": "j1"}\n{"text": "j2"}\n',
            "tasks/rows.parquet": parquet([{"text": "p1"}, {"text": "p2"}, {"text": "p3"}], 2),
        },
    )
    storage = create(alice, project, provider, provider.config(location, prefix="tasks"))
    result = sync(alice, provider, storage)
    assert result["status"] == "completed", result["traceback"]
    assert result["last_sync_count"] == 8
    assert sorted(t["text"] for t in data_of(project)) == ["full", "j1", "j2", "l1", "l2", "p1", "p2", "p3"]
    labeled = project.tasks.get(data={"text": "full"})
    assert (labeled.total_annotations, labeled.total_predictions) == (1, 1)
    assert Annotation.objects.get(task=labeled).result == [{"v": 1}]
    assert sync(alice, provider, storage)["last_sync_count"] == 0
    assert project.tasks.count() == 8


@pytest.mark.parametrize("provider", ENCODING_KINDS, indirect=True)
def test_gzip_encoded_task_files_import(alice, project, provider, location):
    # e.g. uploaded with `aws s3 cp --content-encoding gzip` or `gsutil cp -Z`
    rows = [{"text": f"g{i}"} for i in range(3)]
    provider.put(location, "tasks/rows.json", gzip.compress(json.dumps(rows).encode()), content_encoding="gzip")
    provider.put(location, "tasks/broken.json", b"plain text", content_encoding="gzip")
    storage = create(alice, project, provider, provider.config(location, prefix="tasks"))
    result = sync(alice, provider, storage)
    assert result["status"] == "completed_with_errors"
    assert "broken.json" in result["traceback"] and "not valid gzip" in result["traceback"]
    assert sorted(t["text"] for t in data_of(project)) == ["g0", "g1", "g2"]


def test_regex_filter_and_recursive_scan(alice, project, provider, location):
    put_all(provider, location, {"d/a.jpg": b"1", "d/b.png": b"2", "d/sub/c.jpg": b"3"})
    top = create(
        alice, project, provider, provider.config(location, prefix="d", use_blob_urls=True, regex_filter=r".*\.jpg$")
    )
    sync(alice, provider, top)
    assert data_of(project) == [{"image": provider.uri(location, "d/a.jpg")}]
    deep = create(
        alice,
        project,
        provider,
        provider.config(location, prefix="d/", use_blob_urls=True, regex_filter=r".*\.jpg$", recursive_scan=True),
    )
    sync(alice, provider, deep)
    assert sorted(deep_task["image"] for deep_task in data_of(project)) == sorted(
        [provider.uri(location, "d/a.jpg"), provider.uri(location, "d/a.jpg"), provider.uri(location, "d/sub/c.jpg")]
    )


def test_broken_objects_are_reported_by_key_while_others_import(alice, project, provider, location):
    put_all(
        provider,
        location,
        {
            "t/good.json": {"text": "ok"},
            "t/broken.json": '[{"text": "a"}, {"text": ',
            "t/bad.json": {"data": {}, "annotations": [{"result": 1}]},
            # PostgreSQL stores neither: each is reported, instead of failing the batch of inserts.
            "t/nul.json": {"text": "ok", "key\x00": "a\x00b"},
            "t/nan.json": '{"score": NaN}',
            "t/huge.jsonl": '{"score": 1e400}\n',  # Python's json reads infinity
        },
    )
    result = sync(alice, provider, create(alice, project, provider, provider.config(location, prefix="t")))
    assert result["status"] == "completed_with_errors"
    assert all(
        f"t/{name}" in result["traceback"] for name in ("broken.json", "bad.json", "nul.json", "nan.json", "huge.jsonl")
    )
    assert "\x00" not in result["traceback"]
    assert data_of(project) == [{"text": "ok"}]


# --- validation and preview -----------------------------------------------------------
def test_missing_location_and_empty_prefix_give_400(alice, project, provider, location):
    missing = {"project": project.id, **provider.missing_location_config()}
    for export in (False, True):
        assert alice.post(api_path(provider, export), missing, format="json").status_code == 400
        assert alice.post(api_path(provider, export, "validate"), missing, format="json").status_code == 400
    empty = {"project": project.id, **provider.config(location, prefix="nothing-here")}
    response = alice.post(api_path(provider, False, "validate"), empty, format="json")
    if provider.has_prefix:
        text = error_text(response, 400)  # e.g. Label Studio's "s3://b/nothing-here/ not found." and ours
        assert "nothing-here" in text and re.search(r"not found|No (objects|blobs) found", text), text
    else:  # an empty directory, as an empty bucket (see below)
        assert response.status_code == 200, response.content
    assert alice.post(api_path(provider, True, "validate"), empty, format="json").status_code == 200


def test_an_empty_location_without_prefix_is_fine_for_import(alice, project, provider, location):
    """Only a prefix must hold objects (the spec, and Label Studio): files may come later."""
    config = {"project": project.id, **provider.unprefixed_config(location)}
    response = alice.post(api_path(provider, False, "validate"), config, format="json")
    assert response.status_code == 200, response.content
    response = alice.post(api_path(provider, False), config, format="json")
    assert response.status_code == 201, response.content


def test_preview_lists_the_first_objects(alice, project, provider, location):
    put_all(provider, location, {f"p/f{i}.jpg": b"12345" for i in range(4)})
    config = {"project": project.id, **provider.config(location, prefix="p"), "limit": 3}
    response = alice.post(api_path(provider, False, "files"), config, format="json")
    assert response.status_code == 200, response.content
    files = response.json()["files"]
    # Not every provider lists in key order (Redis), and keys are named relative to what the
    # storage points at: check count, names and sizes.
    assert len(files) == 3
    assert {f["key"].rsplit("/", 1)[-1] for f in files} <= {f"f{i}.jpg" for i in range(4)}
    assert all(f["size"] == 5 for f in files)


def test_secrets_never_appear_in_responses(alice, project, provider, location):
    put_all(provider, location, {"s/a.jpg": b"x"})
    storage = create(alice, project, provider, provider.config(location, prefix="s", use_blob_urls=True))
    responses = [
        storage,
        alice.get(api_path(provider, False, storage["id"])).json(),
        alice.get(api_path(provider) + f"?project={project.id}").json(),
        alice.get(f"/api/storages/?project={project.id}").json(),
        alice.patch(api_path(provider, False, storage["id"]), {"title": "renamed"}, format="json").json(),
        sync(alice, provider, storage),
    ]
    text = json.dumps(responses)
    for secret in provider.secret_values:
        assert secret not in text
    assert sync(alice, provider, storage)["status"] == "completed"  # PATCH kept the secrets


def test_other_organizations_cannot_reach_the_storage(alice, bob, project, provider, location):
    put_all(provider, location, {"o/a.jpg": b"x"})
    storage = create(alice, project, provider, provider.config(location, prefix="o", use_blob_urls=True))
    assert bob.get(api_path(provider, False, storage["id"])).status_code == 404
    assert bob.post(api_path(provider, False, storage["id"], "sync")).status_code == 404
    assert bob.delete(api_path(provider, False, storage["id"])).status_code == 404
    assert (
        bob.post(api_path(provider), {"project": project.id, **provider.config(location)}, format="json").status_code
        == 404
    )


# --- export ------------------------------------------------------------------------------
@pytest.fixture
def labeled(alice, project):
    tasks = [{"data": {"text": f"t{i}"}, "annotations": [{"result": [{"n": i}]}]} for i in range(2)]
    assert alice.post(f"/api/projects/{project.id}/import", tasks, format="json").status_code == 201
    return project


def test_export_all_then_only_new(alice, labeled, provider, location):
    storage = create(alice, labeled, provider, provider.config(location, prefix="out"), export=True)
    result = sync(alice, provider, storage, export=True)
    assert result["status"] == "completed" and result["last_sync_count"] == 2
    ids = sorted(labeled.annotations.values_list("id", flat=True))
    assert provider.keys(location) == sorted(f"out/{i}" for i in ids)
    exported = json.loads(provider.read(location, f"out/{ids[0]}"))
    assert exported["result"] == [{"n": 0}] and exported["task"]["data"] == {"text": "t0"}

    new = Annotation.objects.create(task=labeled.tasks.first(), project=labeled, result=[])
    assert sync(alice, provider, storage, export=True, save_only_new_annotations=True)["last_sync_count"] == 1
    assert f"out/{new.id}" in provider.keys(location)


def test_annotation_save_and_delete_reach_the_storage(
    alice, labeled, provider, location, django_capture_on_commit_callbacks
):
    create(alice, labeled, provider, provider.config(location, prefix="auto", can_delete_objects=True), export=True)
    task = labeled.tasks.first()
    with django_capture_on_commit_callbacks(execute=True):
        annotation = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"a": 1}]}, format="json").json()
    assert json.loads(provider.read(location, f"auto/{annotation['id']}"))["result"] == [{"a": 1}]
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete(f"/api/annotations/{annotation['id']}/")
    assert f"auto/{annotation['id']}" not in provider.keys(location)


def test_task_format_writes_one_object_per_task(alice, labeled, provider, location, settings):
    settings.FUTURE_SAVE_TASK_TO_STORAGE = True
    storage = create(alice, labeled, provider, provider.config(location, prefix="tasks"), export=True)
    sync(alice, provider, storage, export=True)
    task_ids = sorted(labeled.tasks.values_list("id", flat=True))
    assert provider.keys(location) == [f"tasks/{i}.json" for i in task_ids]
    exported = json.loads(provider.read(location, f"tasks/{task_ids[0]}.json"))
    assert exported["data"] == {"text": "t0"} and len(exported["annotations"]) == 1
