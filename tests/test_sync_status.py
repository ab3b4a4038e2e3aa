"""Sync status machine, health check of dead jobs, the one-sync-at-a-time guard and the RQ
path with a real Redis and worker."""

import os
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from io_storages.s3.models import S3ImportStorage
from tests.fixtures.job_redis import needs_redis
from tests.fixtures.s3 import s3_admin, s3_config
from tests.fixtures.servers import JOB_REDIS_URL
from tests.storage_helpers import create_storage, put, sync

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("emulators_on_loopback")]


@pytest.fixture
def async_queue(redis_queues, settings):
    """Syncs go to a real Redis queue and wait for a worker."""
    return redis_queues(settings.STORAGE_SYNC_QUEUE)


@pytest.fixture
def storage(alice, project, s3_server, s3_bucket):
    for i in range(3):
        put(s3_server, s3_bucket, f"{i}.jpg", b"x")
    return create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=True))


def test_new_storage_is_initialized(storage):
    assert storage["status"] == "initialized" and storage["last_sync"] is None


def test_in_process_sync_ends_completed_with_timings(alice, storage):
    result = sync(alice, storage)
    assert result["status"] == "completed" and result["last_sync"]
    meta = result["meta"]
    assert {"time_queued", "time_in_progress", "time_last_ping", "duration", "attempts"} <= meta.keys()
    assert meta["attempts"] == 1 and meta["duration"] >= 0


def test_provider_failure_during_sync_marks_failed_with_the_message(alice, storage, s3_server, s3_bucket):
    admin = s3_admin(s3_server)
    for item in admin.list_objects_v2(Bucket=s3_bucket)["Contents"]:
        admin.delete_object(Bucket=s3_bucket, Key=item["Key"])
    admin.delete_bucket(Bucket=s3_bucket)
    result = sync(alice, storage)
    assert result["status"] == "failed"
    assert "does not exist" in result["traceback"]


# --- how a sync with failed objects ends: failed when nothing was imported (exported) -------------
def test_a_sync_where_every_object_failed_is_failed_with_the_reasons(alice, project, s3_server, s3_bucket):
    """Label Studio's answer for images synced as task files (use_blob_urls=false): `failed`,
    the reasons in `traceback`, and so again on the next sync."""
    for i in (1, 2):
        put(s3_server, s3_bucket, f"image{i}.jpg", b"\xff\xd8\xff not json")
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, use_blob_urls=False))
    for _ in range(2):
        result = sync(alice, storage)
        assert result["status"] == "failed", result
        assert f"s3://{s3_bucket}/image1.jpg" in result["traceback"]
        assert f"s3://{s3_bucket}/image2.jpg" in result["traceback"]
        assert result["last_sync"] is None and result["last_sync_count"] == 0
        assert "time_failure" in result["meta"] and result["meta"]["tasks_existed"] == 0
        assert alice.get(f"/api/storages/s3/{storage['id']}").json()["status"] == "failed"
        assert project.tasks.count() == 0
    assert alice.get(f"/api/projects/{project.id}/tasks").status_code == 404  # still no task: LS's 404
    # a fixed storage syncs again
    fixed = alice.patch(f"/api/storages/s3/{storage['id']}", {"use_blob_urls": True}, format="json")
    assert fixed.status_code == 200, fixed.content
    assert sync(alice, storage)["status"] == "completed" and project.tasks.count() == 2


def test_a_sync_where_some_objects_failed_is_completed_with_errors(alice, project, s3_server, s3_bucket):
    put(s3_server, s3_bucket, "good.json", {"text": "ok"})
    put(s3_server, s3_bucket, "image.jpg", b"\xff\xd8\xff not json")
    result = sync(alice, create_storage(alice, project, s3_config(s3_server, s3_bucket)))
    assert result["status"] == "completed_with_errors" and result["last_sync_count"] == 1
    assert f"s3://{s3_bucket}/image.jpg" in result["traceback"] and result["last_sync"]


def test_a_resync_that_imports_nothing_new_only_fails_on_errors(alice, project, s3_server, s3_bucket):
    put(s3_server, s3_bucket, "good.json", {"text": "ok"})
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket))
    assert sync(alice, storage)["status"] == "completed"
    again = sync(alice, storage)  # nothing new, nothing wrong
    assert again["status"] == "completed" and again["meta"]["tasks_existed"] == 1
    put(s3_server, s3_bucket, "broken.json", "{broken")
    result = sync(alice, storage)  # the only new object fails: nothing could be imported
    assert result["status"] == "failed" and "broken.json" in result["traceback"], result
    assert project.tasks.count() == 1


@pytest.fixture
def annotated(alice, project):
    tasks = [{"data": {"n": i}, "annotations": [{"result": [{"n": i}]}]} for i in range(2)]
    assert alice.post(f"/api/projects/{project.id}/import", tasks, format="json").status_code == 201
    return project


def test_an_export_that_wrote_nothing_because_of_errors_is_failed(alice, annotated, s3_server, s3_bucket):
    storage = create_storage(alice, annotated, s3_config(s3_server, s3_bucket, prefix="out"), export=True)
    s3_admin(s3_server).delete_bucket(Bucket=s3_bucket)  # every write fails
    result = sync(alice, storage, export=True)
    assert result["status"] == "failed", result
    for annotation_id in annotated.annotations.values_list("id", flat=True):
        assert f"out/{annotation_id}:" in result["traceback"]
    assert result["last_sync_count"] == 0


def test_an_export_with_some_errors_is_completed_with_errors(alice, annotated, s3_server, s3_bucket, monkeypatch):
    from io_storages.client import StorageError
    from io_storages.s3.client import S3Client

    first, second = sorted(annotated.annotations.values_list("id", flat=True))
    write = S3Client.write

    def failing_once(self, key, data, *args, **kwargs):
        if key == f"out/{first}":
            raise StorageError("refused by the test")
        return write(self, key, data, *args, **kwargs)

    monkeypatch.setattr(S3Client, "write", failing_once)
    storage = create_storage(alice, annotated, s3_config(s3_server, s3_bucket, prefix="out"), export=True)
    result = sync(alice, storage, export=True)
    assert result["status"] == "completed_with_errors" and result["last_sync_count"] == 1, result
    assert f"out/{first}: refused by the test" in result["traceback"] and f"out/{second}" not in result["traceback"]


def test_an_export_with_nothing_to_write_is_completed(alice, project, s3_server, s3_bucket):
    storage = create_storage(alice, project, s3_config(s3_server, s3_bucket, prefix="out"), export=True)
    result = sync(alice, storage, export=True)
    assert result["status"] == "completed" and result["last_sync_count"] == 0


@needs_redis
def test_sync_goes_through_redis_and_a_real_worker(alice, project, storage, async_queue):
    from rq import SimpleWorker

    queued = sync(alice, storage)
    assert queued["status"] == "queued" and queued["last_sync_job"]
    assert project.tasks.count() == 0

    SimpleWorker([async_queue], connection=async_queue.connection).work(burst=True)
    done = alice.get(f"/api/storages/s3/{storage['id']}").json()
    assert done["status"] == "completed" and done["last_sync_count"] == 3
    assert project.tasks.count() == 3


@needs_redis
def test_a_sync_queued_where_no_worker_listens_says_so_in_the_api_and_the_admin(
    alice, project, storage, async_queue, admin_client
):
    from rq import SimpleWorker

    queued = sync(alice, storage)
    assert queued["status"] == "queued"
    waiting = alice.get(f"/api/storages/s3/{storage['id']}").json()
    assert waiting["status"] == "queued"
    assert waiting["meta"]["waiting"].startswith("No worker listens to queue 'low'")
    html = admin_client.get(f"/admin/io_storages/s3importstorage/{storage['id']}/change/").content.decode()
    assert "Waiting because" in html and "No worker listens to queue &#x27;low&#x27;" in html

    SimpleWorker([async_queue], connection=async_queue.connection).work(burst=True)
    done = alice.get(f"/api/storages/s3/{storage['id']}").json()
    assert done["status"] == "completed" and "waiting" not in done["meta"]


@needs_redis
def test_health_check_fails_a_sync_whose_job_vanished(alice, project, storage, async_queue):
    queued = sync(alice, storage)
    assert queued["status"] == "queued"
    async_queue.connection.flushdb()  # e.g. Redis restarted without persistence
    listed = alice.get(f"/api/storages/s3/?project={project.id}").json()[0]
    assert listed["status"] == "failed" and "is gone" in listed["traceback"]


@needs_redis
def test_a_failed_or_vanished_sync_can_be_started_again(alice, project, storage, async_queue):
    from rq import SimpleWorker

    sync(alice, storage)
    async_queue.connection.flushdb()
    again = sync(alice, storage)  # the health check runs first: the dead job does not block
    assert again["status"] == "queued" and again["meta"]["attempts"] == 2
    SimpleWorker([async_queue], connection=async_queue.connection).work(burst=True)
    assert project.tasks.count() == 3


def test_health_check_fails_a_sync_that_stopped_pinging(alice, project, storage, settings):
    settings.STORAGE_IN_PROGRESS_TIMER = 1
    stale = (timezone.now() - timedelta(seconds=6)).isoformat()
    S3ImportStorage.objects.filter(pk=storage["id"]).update(
        status="in_progress", meta={"time_in_progress": stale, "time_last_ping": stale}
    )
    listed = alice.get(f"/api/storages/?project={project.id}").json()[0]
    assert listed["status"] == "failed" and "no progress ping" in listed["traceback"]


def test_health_check_keeps_a_sync_that_pings(alice, project, storage):
    now = timezone.now().isoformat()
    S3ImportStorage.objects.filter(pk=storage["id"]).update(
        status="in_progress", meta={"time_in_progress": now, "time_last_ping": now}
    )
    assert alice.get(f"/api/storages/s3/{storage['id']}").json()["status"] == "in_progress"


def test_sync_request_while_running_starts_nothing(alice, project, storage):
    now = timezone.now().isoformat()
    S3ImportStorage.objects.filter(pk=storage["id"]).update(
        status="in_progress", meta={"time_in_progress": now, "time_last_ping": now, "attempts": 1}
    )
    result = sync(alice, storage)
    assert result["status"] == "in_progress" and result["meta"]["attempts"] == 1
    assert project.tasks.count() == 0


@needs_redis
@pytest.mark.skipif(connection.vendor != "postgresql" and not os.environ.get("CI"), reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_sync_requests_start_one_job(make_member, s3_server, s3_bucket, async_queue):
    from rest_framework.test import APIClient

    alice = make_member()
    project_id = alice.post("/api/projects/", {"title": "Race"}, format="json").json()["id"]
    put(s3_server, s3_bucket, "a.jpg", b"x")
    config = {"project": project_id, **s3_config(s3_server, s3_bucket, use_blob_urls=True)}
    storage_id = alice.post("/api/storages/s3/", config, format="json").json()["id"]

    barrier, statuses = threading.Barrier(8), []

    def request_sync():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {alice.token}")
        barrier.wait()
        statuses.append(client.post(f"/api/storages/s3/{storage_id}/sync").status_code)
        connection.close()

    threads = [threading.Thread(target=request_sync) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert async_queue.count == 1
    assert S3ImportStorage.objects.get(pk=storage_id).meta["attempts"] == 1


@needs_redis
@pytest.mark.skipif(
    connection.vendor != "postgresql" and not os.environ.get("CI"), reason="the worker process needs a shared database"
)
@pytest.mark.django_db(transaction=True)
def test_manage_py_rqworker_runs_a_queued_sync(make_member, s3_server, s3_bucket, async_queue, settings, tmp_path):
    """The production path: the API queues the job, `python manage.py rqworker` (another
    process, same database and Redis) runs it."""
    import subprocess
    import sys
    from pathlib import Path

    alice = make_member()
    project_id = alice.post("/api/projects/", {"title": "Worker"}, format="json").json()["id"]
    for i in range(3):
        put(s3_server, s3_bucket, f"{i}.jpg", b"x")
    config = {"project": project_id, **s3_config(s3_server, s3_bucket, use_blob_urls=True)}
    storage_id = alice.post("/api/storages/s3/", config, format="json").json()["id"]
    assert alice.post(f"/api/storages/s3/{storage_id}/sync").json()["status"] == "queued"

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": JOB_REDIS_URL,
        "RQ_ASYNC": "true",
        "SSRF_PROTECTION_ENABLED": "false",
        "DATA_DIR": str(tmp_path),
        "SECRET_KEY": settings.SECRET_KEY,  # the key that encrypted the storage's secrets
    }
    root = Path(__file__).resolve().parents[1]
    worker = subprocess.run(
        [sys.executable, "manage.py", "rqworker", settings.STORAGE_SYNC_QUEUE, "--burst"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    done = alice.get(f"/api/storages/s3/{storage_id}").json()
    assert done["status"] == "completed", done["traceback"]
    assert done["last_sync_count"] == 3
