"""Wire compatibility: the official Label Studio SDK (`label-studio-sdk` 2.x) drives this
service unchanged, against a live server and a real moto S3 server.

The live server answers in another thread, hence `transaction=True` (its requests must see
committed rows, and `transaction.on_commit` callbacks, used by the automatic export, fire).
"""

import json

import httpx
import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from tests.fixtures.s3 import S3_REGION, s3_admin, s3_config
from tests.storage_helpers import put

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("emulators_on_loopback")]

LABEL_CONFIG = '<View><Image name="img" value="$image"/></View>'


@pytest.fixture
def sdk(live_server):
    """`sdk(token)`: an SDK client talking to the live server with `token`. Their connections
    are closed after the test: a kept-alive one would hold a server thread past the end."""
    connections = []

    def connect(token):
        connections.append(httpx.Client(timeout=60))
        return LabelStudio(base_url=live_server.url, api_key=token, httpx_client=connections[-1])

    yield connect
    for connection in connections:
        connection.close()


@pytest.fixture
def ls(sdk, make_member):
    """The SDK client of a member of "Org A"."""
    return sdk(make_member("sdk@example.com", "Org A").token)


@pytest.fixture
def project(ls):
    project = ls.projects.create(title="SDK project", description="made by the SDK", label_config=LABEL_CONFIG)
    assert project.id and project.title == "SDK project" and project.label_config == LABEL_CONFIG
    return project


def s3_fields(endpoint, bucket, **fields):
    """Keyword arguments of the SDK's s3 storage methods: the API fields, but the SDK names
    `s3_endpoint` `s3endpoint`."""
    config = s3_config(endpoint, bucket, **fields)
    config["s3endpoint"] = config.pop("s3_endpoint")
    return config


def bucket_keys(endpoint, bucket):
    return sorted(item["Key"] for item in s3_admin(endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))


def first_page(ls, project_id, **params):
    pager = ls.tasks.list(project=project_id, **params)
    return pager.response, list(pager.items or [])


def test_project_create(ls, project):
    assert project.description == "made by the SDK" and project.maximum_annotations == 1
    assert ls.projects.get(project.id).title == "SDK project"
    # `description=None` is sent as JSON null, which Label Studio accepts.
    bare = ls.projects.create(title="No description", description=None)
    assert bare.id != project.id and bare.description == ""


def test_storage_types(ls):
    from io_storages import registry

    expected = {name: provider.title for name, provider in registry.PROVIDERS.items()}
    assert expected["s3"]
    assert {item.name: item.title for item in ls.import_storage.list_types()} == expected
    assert {item.name: item.title for item in ls.export_storage.list_types()} == expected


def test_import_storage_lifecycle(ls, project, s3_server, s3_bucket):
    for key in ["images/a.jpg", "images/b.jpg", "images/c.png", "other/d.jpg"]:
        put(s3_server, s3_bucket, key, b"x")
    s3 = ls.import_storage.s3

    assert s3.list(project=project.id) == []

    created = s3.create(
        project=project.id,
        title="Images",
        description="blobs",
        use_blob_urls=True,
        presign=False,
        presign_ttl=5,
        regex_filter=r".*\.jpg$",
        **s3_fields(s3_server, s3_bucket, prefix="images"),
    )
    assert created.id and created.project == project.id and created.type == "s3"
    assert created.title == "Images" and created.description == "blobs"
    assert created.bucket == s3_bucket and created.prefix == "images" and created.s3endpoint == s3_server
    assert created.region_name == S3_REGION and created.regex_filter == r".*\.jpg$"
    assert created.use_blob_urls is True and created.presign is False and created.presign_ttl == 5
    assert created.aws_secret_access_key is None and created.aws_access_key_id is None  # write-only
    assert created.status == "initialized"

    assert [storage.id for storage in s3.list(project=project.id)] == [created.id]
    got = s3.get(created.id)
    assert got.id == created.id and got.bucket == s3_bucket and got.title == "Images"

    # A configuration is checked without being saved; with `id`, the stored secrets are used.
    s3.validate(project=project.id, **s3_fields(s3_server, s3_bucket, prefix="images"))
    s3.validate(project=project.id, id=created.id, bucket=s3_bucket, prefix="images")
    with pytest.raises(ApiError) as error:
        s3.validate(project=project.id, **s3_fields(s3_server, s3_bucket + "-missing"))
    assert error.value.status_code == 400
    with pytest.raises(ApiError) as error:
        s3.validate(project=project.id, **s3_fields(s3_server, s3_bucket, prefix="nothing-here"))
    assert error.value.status_code == 400

    # A partial update keeps the stored secrets (the sync below needs them).
    updated = s3.update(created.id, title="Images (renamed)", presign_ttl=10)
    assert updated.title == "Images (renamed)" and updated.presign_ttl == 10
    assert updated.bucket == s3_bucket and updated.prefix == "images" and updated.regex_filter == r".*\.jpg$"

    synced = s3.sync(created.id)
    assert synced.id == created.id
    assert synced.status == "completed", synced.traceback
    assert synced.last_sync_count == 2 and synced.last_sync is not None
    assert s3.get(created.id).status == "completed"

    response, tasks = first_page(ls, project.id, resolve_uri=False)
    assert response.total == 2 and response.total_annotations == 0 and response.total_predictions == 0
    assert sorted(task.data["image"] for task in tasks) == [
        f"s3://{s3_bucket}/images/a.jpg",
        f"s3://{s3_bucket}/images/b.jpg",
    ]
    assert all(task.project == project.id for task in tasks)
    # By default, served tasks point at the storage proxy instead of the bucket.
    _, resolved = first_page(ls, project.id)
    assert all(f"/tasks/{task.id}/resolve/?fileuri=" in task.data["image"] for task in resolved)
    # Iterating the pager to the end stops at the 404 past the last page (the SDK expects it).
    assert sorted(task.id for task in ls.tasks.list(project=project.id, page_size=1)) == sorted(t.id for t in tasks)

    # A re-sync creates nothing new.
    again = s3.sync(created.id)
    assert again.status == "completed" and again.last_sync_count == 0
    assert again.meta["tasks_existed"] == 2

    s3.delete(created.id)
    assert s3.list(project=project.id) == []
    with pytest.raises(ApiError) as error:
        s3.get(created.id)
    assert error.value.status_code == 404
    assert first_page(ls, project.id)[0].total == 2  # deleting a storage keeps its tasks


def test_export_storage_lifecycle_and_automatic_export(ls, project, s3_server, s3_bucket):
    import_bucket = f"{s3_bucket}-in"
    s3_admin(s3_server).create_bucket(Bucket=import_bucket)
    put(s3_server, import_bucket, "tasks.json", [{"image": "s3://somewhere/1.jpg"}, {"image": "s3://somewhere/2.jpg"}])
    source = ls.import_storage.s3.create(project=project.id, **s3_fields(s3_server, import_bucket))
    assert ls.import_storage.s3.sync(source.id).status == "completed"

    s3 = ls.export_storage.s3
    assert s3.list(project=project.id) == []
    created = s3.create(
        project=project.id,
        title="Results",
        can_delete_objects=False,
        **s3_fields(s3_server, s3_bucket, prefix="out"),
    )
    assert created.id and created.project == project.id and created.type == "s3"
    assert created.title == "Results" and created.bucket == s3_bucket and created.prefix == "out"
    assert created.s3endpoint == s3_server and created.can_delete_objects is False
    assert created.aws_secret_access_key is None
    assert [storage.id for storage in s3.list(project=project.id)] == [created.id]
    assert s3.get(created.id).prefix == "out"

    s3.validate(project=project.id, **s3_fields(s3_server, s3_bucket, prefix="out"))
    s3.validate(project=project.id, id=created.id, bucket=s3_bucket)
    with pytest.raises(ApiError) as error:
        s3.validate(project=project.id, **s3_fields(s3_server, s3_bucket + "-missing"))
    assert error.value.status_code == 400

    updated = s3.update(created.id, title="Results (renamed)", can_delete_objects=True)
    assert updated.title == "Results (renamed)" and updated.can_delete_objects is True
    assert updated.bucket == s3_bucket and updated.prefix == "out"

    # Saving an annotation exports it at once (after the request's transaction commits).
    _, tasks = first_page(ls, project.id)
    task = min(tasks, key=lambda t: t.id)
    result = [{"from_name": "img", "to_name": "img", "type": "choices", "value": {"choices": ["cat"]}}]
    annotation = ls.annotations.create(task.id, result=result, lead_time=1.5, was_cancelled=False, ground_truth=False)
    assert annotation.id and annotation.task == task.id and annotation.project == project.id
    assert annotation.result == result and annotation.lead_time == 1.5
    assert bucket_keys(s3_server, s3_bucket) == [f"out/{annotation.id}"]
    body = json.loads(s3_admin(s3_server).get_object(Bucket=s3_bucket, Key=f"out/{annotation.id}")["Body"].read())
    assert body["id"] == annotation.id and body["result"] == result
    assert body["task"]["id"] == task.id and body["task"]["data"] == task.data

    response, _ = first_page(ls, project.id)
    assert response.total_annotations == 1

    # A manual sync rewrites every annotation of the project.
    second = ls.annotations.create(max(tasks, key=lambda t: t.id).id, result=[])
    synced = s3.sync(created.id)
    assert synced.id == created.id
    assert synced.status == "completed", synced.traceback
    assert synced.last_sync_count == 2
    assert bucket_keys(s3_server, s3_bucket) == sorted([f"out/{annotation.id}", f"out/{second.id}"])
    assert s3.get(created.id).status == "completed"

    s3.delete(created.id)
    assert s3.list(project=project.id) == []
    with pytest.raises(ApiError) as error:
        s3.get(created.id)
    assert error.value.status_code == 404
    assert len(bucket_keys(s3_server, s3_bucket)) == 2  # deleting a storage leaves the objects


def test_sdk_sees_only_its_organization(ls, sdk, make_member, project):
    outsider = sdk(make_member("eve@example.com", "Org B").token)
    with pytest.raises(ApiError) as error:
        outsider.import_storage.s3.list(project=project.id)
    assert error.value.status_code == 404
    with pytest.raises(ApiError) as error:
        sdk("not-a-token").import_storage.list_types()
    assert error.value.status_code == 401


def test_sdk_creates_a_task(ls, sdk, make_member, project):
    """`tasks.create` posts `/api/tasks/` with the project in the body (201, a task)."""
    created = ls.tasks.create(project=project.id, data={"image": "s3://bucket/1.jpg"}, meta={"source": "sdk"})
    assert created.id and created.project == project.id and created.inner_id == 1
    assert created.data == {"image": "s3://bucket/1.jpg"} and created.meta == {"source": "sdk"}
    assert [task.id for task in ls.tasks.list(project=project.id)] == [created.id]
    outsider = sdk(make_member("mallory@example.com", "Org B").token)
    with pytest.raises(ApiError) as error:
        outsider.tasks.create(project=project.id, data={"image": "x"})
    assert error.value.status_code == 404


def test_webhook_lifecycle_and_a_sync_event(ls, sdk, make_member, project, s3_server, s3_bucket, receivers):
    receiver = receivers()
    hooks = ls.webhooks
    created = hooks.create(
        url=f"{receiver.url}/hook",
        project=project.id,
        send_for_all_actions=False,
        actions=["STORAGE_SYNC_COMPLETED"],
        headers={"X-Team": "sdk"},
    )
    assert created.id and created.project == project.id and created.url == f"{receiver.url}/hook"
    assert created.actions == ["STORAGE_SYNC_COMPLETED"] and created.headers == {"X-Team": "sdk"}
    assert created.is_active is True and created.send_payload is True and created.organization
    assert [hook.id for hook in hooks.list(project=str(project.id))] == [created.id]
    assert hooks.get(created.id).url == created.url
    assert getattr(hooks.info(), "STORAGE_SYNC_FAILED")["key"] == "storage"  # an extra of its model

    put(s3_server, s3_bucket, "a.jpg", b"x")
    storage = ls.import_storage.s3.create(project=project.id, use_blob_urls=True, **s3_fields(s3_server, s3_bucket))
    assert ls.import_storage.s3.sync(storage.id).status == "completed"
    (request,) = receiver.wait_for(1)
    body = json.loads(request.body)
    assert body["action"] == "STORAGE_SYNC_COMPLETED" and body["storage"]["id"] == storage.id
    assert request.headers["X-Team"] == "sdk"

    updated = hooks.update(created.id, is_active=False)
    assert updated.is_active is False and updated.project == project.id
    other = sdk(make_member("other@example.com", "Org B").token)
    assert other.webhooks.list() == []
    with pytest.raises(ApiError) as error:
        other.webhooks.get(created.id)
    assert error.value.status_code == 404
    hooks.delete(created.id)
    assert hooks.list() == []
