"""Syncs that run themselves, in the service as an operator runs it (a gunicorn process of its
own, tests/fixtures/service.py) against the suite's moto server:

* the embedded default (SQLite, no Redis): the sync call answers `queued` at once and the
  sync runs in the web process's job pool, its progress visible while it runs; a process
  killed mid-sync is noticed by the health check and the next sync completes the import
  without duplicates;
* scheduled syncs (`sync_interval_minutes`) run by that process's own scheduler;
* with Redis: a bare `manage.py rqworker` serves the sync queue, and a sync whose queue no
  worker serves says so in the storage.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.fixtures.job_redis import redis_reachable
from tests.fixtures.s3 import new_bucket, s3_admin, s3_config
from tests.fixtures.servers import JOB_REDIS_URL
from tests.fixtures.service import ServiceProcess

N = 10_000


def put_objects(endpoint, bucket, keys):
    s3 = s3_admin(endpoint)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))


@pytest.fixture(scope="module")
def big_bucket(s3_server):
    """A bucket of N small images, shared by this module's tests (they only read it)."""
    bucket = new_bucket(s3_server)
    put_objects(s3_server, bucket, [f"img/{i:05d}.jpg" for i in range(N)])
    return bucket


@pytest.fixture
def service(tmp_path):
    """The embedded default: SQLite, no Redis, jobs in the web process's pool. Batches of 200
    tasks, so that a sync of N objects reports progress 50 times; pings every second."""
    process = ServiceProcess(
        tmp_path / "data",
        {
            "STORAGE_SYNC_BATCH_SIZE": "200",
            "STORAGE_IN_PROGRESS_TIMER": "1",
            "STORAGE_SYNC_MIN_INTERVAL_MINUTES": "0.01",
            "STORAGE_SCHEDULE_TICK_SECONDS": "0.2",
        },
    )
    yield process.start()
    process.stop()


def new_project(service):
    response = service.api("POST", "/api/projects/", json={"title": "background"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_storage(service, project, s3_server, bucket, **fields):
    config = s3_config(s3_server, bucket, use_blob_urls=True, recursive_scan=True, **fields)
    response = service.api("POST", "/api/storages/s3/", json={"project": project, **config})
    assert response.status_code == 201, response.text
    return response.json()


def storage_state(service, storage_id):
    response = service.api("GET", f"/api/storages/s3/{storage_id}")
    assert response.status_code == 200, response.text
    return response.json()


def task_total(service, project):
    response = service.api("GET", f"/api/tasks/?project={project}&page_size=1")
    assert response.status_code == 200, response.text
    return response.json()["total"]


def poll(service, storage_id, until, timeout=180.0):
    """Storage states seen every 20 ms until `until(state)` holds; the last one ends the list."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(storage_state(service, storage_id))
        if until(seen[-1]):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"gave up after {timeout} s; last state: {seen[-1] if seen else None}")


def finished(state):
    return state["status"] not in ("queued", "in_progress")


def test_the_sync_call_answers_queued_and_the_progress_is_visible(service, s3_server, big_bucket):
    project = new_project(service)
    storage = new_storage(service, project, s3_server, big_bucket)

    answer = service.api("POST", f"/api/storages/s3/{storage['id']}/sync")
    assert answer.status_code == 200, answer.text
    # The request did not wait for the sync: it is still to do.
    assert answer.json()["status"] in ("queued", "in_progress"), answer.json()
    assert answer.json()["last_sync_job"].startswith("local:")
    assert task_total(service, project) < N

    seen = poll(service, storage["id"], finished)
    running = [s["last_sync_count"] for s in seen if s["status"] == "in_progress"]
    assert len(set(running)) >= 3, f"progress seen while running: {sorted(set(running))}"
    assert running == sorted(running)  # it only grows
    assert seen[-1]["status"] == "completed", seen[-1]
    assert seen[-1]["last_sync_count"] == N and task_total(service, project) == N


def test_a_process_killed_mid_sync_is_noticed_and_the_next_sync_adds_only_what_is_missing(
    service, s3_server, big_bucket
):
    project = new_project(service)
    storage = new_storage(service, project, s3_server, big_bucket)
    service.api("POST", f"/api/storages/s3/{storage['id']}/sync")
    poll(service, storage["id"], lambda s: s["status"] == "in_progress" and s["last_sync_count"] >= 400)
    service.kill()

    service.start()  # same data directory: the storage row still says in_progress
    imported = task_total(service, project)
    assert 400 <= imported < N
    state = storage_state(service, storage["id"])  # the health check sees the dead process
    assert state["status"] == "failed" and "is gone" in state["traceback"], state

    service.api("POST", f"/api/storages/s3/{storage['id']}/sync")
    done = poll(service, storage["id"], finished)[-1]
    assert done["status"] == "completed", done
    assert done["last_sync_count"] == N - imported  # what the killed sync had not imported
    assert task_total(service, project) == N


def test_a_scheduled_storage_syncs_new_objects_on_its_own_one_sync_at_a_time(service, s3_server):
    bucket = new_bucket(s3_server)
    put_objects(s3_server, bucket, [f"first/{i}.jpg" for i in range(3)])
    project = new_project(service)
    # 0.01 minutes: due every 0.6 s, shorter than a sync of the second batch takes (batches
    # of 200 tasks, each its own transaction).
    storage = new_storage(service, project, s3_server, bucket, sync_interval_minutes=0.01)
    assert storage["sync_interval_minutes"] == 0.01

    poll(service, storage["id"], lambda s: s["status"] == "completed" and task_total(service, project) == 3, 60)
    put_objects(s3_server, bucket, [f"second/{i}.jpg" for i in range(600)])
    poll(service, storage["id"], lambda s: finished(s) and task_total(service, project) == 603, 120)

    # Syncs kept starting while one ran; none overlapped: no object was imported twice.
    time.sleep(2)
    assert task_total(service, project) == 603
    assert storage_state(service, storage["id"])["meta"]["attempts"] >= 3


def test_an_interval_below_the_minimum_is_refused(service, s3_server):
    project = new_project(service)
    bucket = new_bucket(s3_server)
    put_objects(s3_server, bucket, ["a.jpg"])
    config = s3_config(s3_server, bucket, sync_interval_minutes=0.001)
    response = service.api("POST", "/api/storages/s3/", json={"project": project, **config})
    assert response.status_code == 400
    assert "between 0.01 and" in response.json()["validation_errors"]["sync_interval_minutes"][0]


# --- with Redis: a separate worker ------------------------------------------------------


@pytest.fixture
def service_with_redis(tmp_path):
    if not redis_reachable():
        pytest.skip(f"needs a Redis server at {JOB_REDIS_URL}")
    connection = redis.Redis.from_url(JOB_REDIS_URL)
    connection.flushdb()
    env = {
        "REDIS_URL": JOB_REDIS_URL,
        "RQ_ASYNC": "true",
        "STORAGE_SYNC_MIN_INTERVAL_MINUTES": "0.01",
        "STORAGE_SCHEDULE_TICK_SECONDS": "1",
    }
    process = ServiceProcess(tmp_path / "data", env)
    yield process.start()
    process.stop()
    connection.flushdb()


@pytest.fixture
def background(service_with_redis):
    """start(*argv): a management command running beside the service until the test ends."""
    started = []
    yield lambda *argv: started.append(service_with_redis.popen(*argv)) or started[-1]
    for process in started:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_without_a_worker_the_storage_says_why_and_a_bare_rqworker_runs_the_sync(service_with_redis, s3_server):
    service = service_with_redis
    bucket = new_bucket(s3_server)
    put_objects(s3_server, bucket, [f"{i}.jpg" for i in range(5)])
    project = new_project(service)
    storage = new_storage(service, project, s3_server, bucket)

    queued = service.api("POST", f"/api/storages/s3/{storage['id']}/sync").json()
    assert queued["status"] == "queued" and not queued["last_sync_job"].startswith("local:")
    waiting = storage_state(service, storage["id"])
    assert waiting["status"] == "queued"
    assert "No worker listens to queue 'low'" in waiting["meta"]["waiting"], waiting["meta"]

    worker = service.popen("rqworker", "--burst")  # no queue named: it serves all of them
    assert worker.wait(120) == 0
    done = storage_state(service, storage["id"])
    assert done["status"] == "completed" and done["last_sync_count"] == 5, done
    assert "waiting" not in done["meta"]
    assert task_total(service, project) == 5


def test_with_redis_rq_cron_and_a_worker_run_the_scheduled_syncs(service_with_redis, background, s3_server):
    service = service_with_redis
    bucket = new_bucket(s3_server)
    put_objects(s3_server, bucket, ["a.jpg"])
    project = new_project(service)
    storage = new_storage(service, project, s3_server, bucket, sync_interval_minutes=0.01)
    background("rqcron", "core.cron")
    background("rqworker")

    poll(service, storage["id"], lambda s: s["status"] == "completed", 60)
    put_objects(s3_server, bucket, ["b.jpg"])
    poll(service, storage["id"], lambda s: finished(s) and task_total(service, project) == 2, 60)
