"""S3 export storages through the REST API against a real moto server: manual sync (all and
only new), automatic export on annotation save and delete, the task format, SSE."""

import json

import pytest

from io_storages.s3.models import S3ExportStorageLink
from tests.fixtures.s3 import s3_admin, s3_config
from tests.storage_helpers import create_storage, sync

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


@pytest.fixture
def labeled(alice, project):
    """A project with two tasks, each with one annotation."""
    tasks = [{"data": {"image": f"s3://in/{i}.jpg"}, "annotations": [{"result": [{"n": i}]}]} for i in range(2)]
    assert alice.post(f"/api/projects/{project.id}/import", tasks, format="json").status_code == 201
    return project


def objects(endpoint, bucket):
    listing = s3_admin(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listing)


def read(endpoint, bucket, key):
    return json.loads(s3_admin(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


def make_export(alice, project, endpoint, bucket, **fields):
    return create_storage(alice, project, s3_config(endpoint, bucket, prefix="out", **fields), export=True)


def test_export_sync_writes_every_annotation_with_its_task(alice, labeled, s3_server, s3_bucket):
    storage = make_export(alice, labeled, s3_server, s3_bucket)
    result = sync(alice, storage, export=True)
    assert result["status"] == "completed" and result["last_sync_count"] == 2
    annotation_ids = sorted(labeled.annotations.values_list("id", flat=True))
    assert objects(s3_server, s3_bucket) == sorted(f"out/{i}" for i in annotation_ids)
    body = read(s3_server, s3_bucket, f"out/{annotation_ids[0]}")
    assert body["id"] == annotation_ids[0] and body["result"] == [{"n": 0}]
    assert body["task"]["data"] == {"image": "s3://in/0.jpg"}
    assert S3ExportStorageLink.objects.filter(storage_id=storage["id"]).count() == 2


def test_export_only_new_annotations(alice, labeled, s3_server, s3_bucket):
    storage = make_export(alice, labeled, s3_server, s3_bucket)
    sync(alice, storage, export=True)
    s3_admin(s3_server).delete_object(Bucket=s3_bucket, Key=f"out/{labeled.annotations.first().id}")
    task = labeled.tasks.first()
    from tasks.models import Annotation

    new = Annotation.objects.create(task=task, project=labeled, result=[{"new": True}])  # no auto-export: not committed
    result = sync(alice, storage, export=True, save_only_new_annotations=True)
    assert result["last_sync_count"] == 1
    assert f"out/{new.id}" in objects(s3_server, s3_bucket)
    assert len(objects(s3_server, s3_bucket)) == 2  # the deleted one was not re-exported
    assert sync(alice, storage, export=True)["last_sync_count"] == 3  # "all" rewrites everything


def test_annotation_save_exports_at_once_and_delete_removes_it(
    alice, labeled, s3_server, s3_bucket, django_capture_on_commit_callbacks
):
    make_export(alice, labeled, s3_server, s3_bucket, can_delete_objects=True)
    task = labeled.tasks.first()
    with django_capture_on_commit_callbacks(execute=True):
        created = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": [{"auto": 1}]}, format="json")
    annotation_id = created.json()["id"]
    assert read(s3_server, s3_bucket, f"out/{annotation_id}")["result"] == [{"auto": 1}]

    with django_capture_on_commit_callbacks(execute=True):
        alice.patch(f"/api/annotations/{annotation_id}/", {"result": [{"auto": 2}]}, format="json")
    assert read(s3_server, s3_bucket, f"out/{annotation_id}")["result"] == [{"auto": 2}]

    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(f"/api/annotations/{annotation_id}/").status_code == 204
    assert f"out/{annotation_id}" not in objects(s3_server, s3_bucket)


def test_annotation_delete_keeps_the_object_without_can_delete_objects(
    alice, labeled, s3_server, s3_bucket, django_capture_on_commit_callbacks
):
    make_export(alice, labeled, s3_server, s3_bucket)
    task = labeled.tasks.first()
    with django_capture_on_commit_callbacks(execute=True):
        annotation_id = alice.post(f"/api/tasks/{task.id}/annotations/", {"result": []}, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete(f"/api/annotations/{annotation_id}/")
    assert f"out/{annotation_id}" in objects(s3_server, s3_bucket)


def test_task_format_writes_the_whole_task_under_its_id(
    alice, labeled, s3_server, s3_bucket, settings, django_capture_on_commit_callbacks
):
    settings.FUTURE_SAVE_TASK_TO_STORAGE = True
    storage = make_export(alice, labeled, s3_server, s3_bucket, can_delete_objects=True)
    sync(alice, storage, export=True)
    task_ids = sorted(labeled.tasks.values_list("id", flat=True))
    assert objects(s3_server, s3_bucket) == [f"out/{i}.json" for i in task_ids]
    body = read(s3_server, s3_bucket, f"out/{task_ids[0]}.json")
    assert body["id"] == task_ids[0] and body["data"] == {"image": "s3://in/0.jpg"}
    assert [a["result"] for a in body["annotations"]] == [[{"n": 0}]]

    # a second annotation rewrites the task file with both; deleting one rewrites it again
    with django_capture_on_commit_callbacks(execute=True):
        second = alice.post(f"/api/tasks/{task_ids[0]}/annotations/", {"result": [{"n": 9}]}, format="json").json()
    assert len(read(s3_server, s3_bucket, f"out/{task_ids[0]}.json")["annotations"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete(f"/api/annotations/{second['id']}/")
    assert len(read(s3_server, s3_bucket, f"out/{task_ids[0]}.json")["annotations"]) == 1


def test_exported_objects_use_sse_aes256_by_default(alice, labeled, s3_server, s3_bucket):
    sync(alice, make_export(alice, labeled, s3_server, s3_bucket), export=True)
    key = objects(s3_server, s3_bucket)[0]
    assert s3_admin(s3_server).head_object(Bucket=s3_bucket, Key=key)["ServerSideEncryption"] == "AES256"


def test_exported_objects_use_sse_kms_with_a_key_id(alice, labeled, s3_server, s3_bucket):
    storage = make_export(alice, labeled, s3_server, s3_bucket, aws_sse_kms_key_id="my-kms-key")
    sync(alice, storage, export=True)
    head = s3_admin(s3_server).head_object(Bucket=s3_bucket, Key=objects(s3_server, s3_bucket)[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert "my-kms-key" in head["SSEKMSKeyId"]


def test_other_organization_cannot_sync_an_export_storage(alice, bob, labeled, s3_server, s3_bucket):
    storage = make_export(alice, labeled, s3_server, s3_bucket)
    assert bob.post(f"/api/storages/export/s3/{storage['id']}/sync").status_code == 404
    assert bob.get(f"/api/storages/export?project={labeled.id}").status_code == 404
