"""Benchmark: latency from PutObject to the task being visible through the API, S3 bucket
notifications (SQS, `manage.py consume_events`) against a scheduled sync at its minimum
interval.

    .venv/bin/python bench/events.py                          # n=1000, interval 5 min: ~16 min
    .venv/bin/python bench/events.py --interval-minutes 0.5   # a quicker look
    .venv/bin/python bench/events.py --skip-notifications     # the scheduled sync only
    .venv/bin/python bench/events.py --database-url postgres://postgres@127.0.0.1:5432/test

1. starts its own moto server (S3 and SQS) on a free loopback port and runs the Django app
   in-process (fresh SQLite in a temp DATA_DIR, or a database `bench_events_<pid>` created and
   dropped here; REDIS_URL empty: in-process jobs; SSRF protection off, moto is on loopback);
2. notifications: a bucket whose ObjectCreated notifications go to an SQS queue, a project
   and an S3 storage (blob mode) with that `event_queue`, created through the REST API, and
   `manage.py consume_events` running as a subprocess (the worker of docker-compose);
3. scheduled sync: another bucket, project and storage (blob mode) without a queue, synced
   every `--interval-minutes` (default: STORAGE_SYNC_MIN_INTERVAL_MINUTES, the shortest a
   storage may ask for; 5 when the setting does not exist yet). The syncs are started by
   the scheduler's tick (`io_storages.schedule.start_due_syncs`) when the service has one,
   else by this script calling `io_storages.jobs.start_sync` every interval, as the
   scheduler does; the report says which;
4. for each side, puts `--n` one-byte objects at an even rate (default: n per interval, so
   the puts of the sync side cover one whole interval) from one thread, noting when each
   PutObject returned, while the main thread polls `GET /api/projects/<id>/tasks` (newest
   first, 20 a page; the whole list when a page holds nothing but new tasks) and notes when
   each task first appears. Latency = seen - put, per object;
5. prints one JSON object on stdout (p50, p90, p99, max per side; progress on stderr).

The poll's own time bounds the resolution (`poll_ms` in the report).
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import postgres_database  # noqa: E402
from bench.sync import api_client, log, post, setup_django  # noqa: E402
from tests.fixtures.s3 import (  # noqa: E402
    S3_ACCESS_KEY,
    S3_REGION,
    S3_SECRET_KEY,
    moto_argv,
    new_queue,
    notify_queue,
    s3_admin,
)
from tests.fixtures.servers import start_server  # noqa: E402

BENCH_DB = f"bench_events_{os.getpid()}"
PREFIX = "images/"
#: tasks per poll: a few times what arrives between two polls, so one poll usually sees all
#: new tasks while costing little (the whole list is fetched when a page is all new)
PAGE = 20


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


def summary(latencies):
    return {
        "count": len(latencies),
        "p50_seconds": round(percentile(latencies, 50), 3),
        "p90_seconds": round(percentile(latencies, 90), 3),
        "p99_seconds": round(percentile(latencies, 99), 3),
        "max_seconds": round(max(latencies), 3),
        "mean_seconds": round(sum(latencies) / len(latencies), 3),
    }


def new_storage(client, moto_url, bucket, **fields):
    """A project and a blob-mode S3 storage of `bucket` (which holds one seed object, so that
    the storage connects; it is never notified)."""
    s3_admin(moto_url).create_bucket(Bucket=bucket)
    s3_admin(moto_url).put_object(Bucket=bucket, Key=f"{PREFIX}seed.jpg", Body=b"x")
    project = post(
        client,
        "/api/projects/",
        {"title": "Bench events", "label_config": '<View><Image name="img" value="$image"/></View>'},
        201,
    )
    config = {
        "project": project["id"],
        "bucket": bucket,
        "prefix": PREFIX,
        "use_blob_urls": True,
        "s3_endpoint": moto_url,
        "aws_access_key_id": S3_ACCESS_KEY,
        "aws_secret_access_key": S3_SECRET_KEY,
        "region_name": S3_REGION,
        **fields,
    }
    return project, post(client, "/api/storages/s3/", config, 201)


class Putter(threading.Thread):
    """Puts n objects at `rate` per second; `put_at[key]` = when its PutObject returned."""

    def __init__(self, moto_url, bucket, n, rate):
        super().__init__(daemon=True)
        self.s3, self.bucket, self.n, self.rate = s3_admin(moto_url), bucket, n, rate
        self.put_at = {}
        self.error = None

    def keys(self):
        return [f"{PREFIX}{i:06d}.jpg" for i in range(1, self.n + 1)]

    def run(self):
        try:
            start = time.monotonic()
            for i, key in enumerate(self.keys()):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"x")
                self.put_at[key] = time.monotonic()
        except Exception as e:  # reported by the main thread
            self.error = e


def watch(client, project_id, bucket, putter, timeout):
    """Poll the project's task list until every put object has a task: {key: seen at}, and
    the mean seconds per poll."""
    uri_prefix = f"s3://{bucket}/"
    seen, polls, polling = {}, 0, 0.0
    wanted = set(putter.keys())
    deadline = time.monotonic() + timeout
    while not wanted <= seen.keys() and time.monotonic() < deadline:
        if putter.error:
            raise putter.error
        started = time.monotonic()
        fresh = _poll(client, project_id, PAGE, uri_prefix, seen)
        if fresh == PAGE:  # the page held nothing else: there may be more new ones
            _poll(client, project_id, 10000, uri_prefix, seen)
        now = time.monotonic()
        polls, polling = polls + 1, polling + (now - started)
        time.sleep(0.01)
    missing = wanted - set(seen)
    if missing:
        raise RuntimeError(f"{len(missing)} objects had no task after {timeout:.0f} s, e.g. {sorted(missing)[:3]}")
    return seen, polling / max(polls, 1)


def _poll(client, project_id, page_size, uri_prefix, seen):
    """One page of the task list (newest first); new keys noted in `seen`; the number of
    tasks on the page that were new."""
    response = client.get(f"/api/projects/{project_id}/tasks?page_size={page_size}")
    if response.status_code == 404:  # no task yet: Label Studio's empty page
        return 0
    assert response.status_code == 200, (response.status_code, response.content[:500])
    now, fresh = time.monotonic(), 0
    for task in response.json():
        key = task["data"]["image"][len(uri_prefix) :]
        if key not in seen:
            seen[key] = now
            fresh += 1
    return fresh


def latencies(putter, seen):
    return [seen[key] - put for key, put in putter.put_at.items() if not key.endswith("seed.jpg")]


def start_consumer(env):
    """`manage.py consume_events` as its own process; returns once it reads the queue."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "consume_events", "--wait", "20", "--rescan", "30"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("Reading events for 1 storages"):
        proc.kill()
        raise RuntimeError(f"consume_events did not start: {line}{proc.stdout.read()}")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep the pipe drained
    return proc


def stop_process(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def notifications_side(client, moto, args, rate):
    bucket = f"bench-events-{uuid.uuid4().hex[:8]}"
    queue = new_queue(moto.url)
    project, storage = new_storage(client, moto.url, bucket, event_queue=queue)
    notify_queue(moto.url, bucket, queue, events=("s3:ObjectCreated:*",))
    consumer = start_consumer({**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(2)  # the consumer has read the configuration's test event
        putter = Putter(moto.url, bucket, args.n, rate)
        putter.start()
        seen, poll = watch(client, project["id"], bucket, putter, timeout=args.n / rate + 120)
        putter.join()
    finally:
        stop_process(consumer)
    from io_storages.s3.models import S3ImportStorage

    events = S3ImportStorage.objects.get(pk=storage["id"]).meta.get("events", {})
    return {
        **summary(latencies(putter, seen)),
        "poll_ms": round(poll * 1000, 1),
        "events_imported": events.get("imported"),
    }


def scheduled_side(client, moto, args, rate):
    from django.conf import settings

    from io_storages.jobs import start_sync
    from io_storages.s3.models import S3ImportStorage

    bucket = f"bench-sync-{uuid.uuid4().hex[:8]}"
    interval = args.interval_minutes * 60
    project, storage = new_storage(client, moto.url, bucket, sync_interval_minutes=args.interval_minutes)
    model = S3ImportStorage.objects.get(pk=storage["id"])
    try:
        from io_storages.schedule import start_due_syncs  # the lead's scheduler, when merged
    except ImportError:
        start_due_syncs = None
    stop = threading.Event()
    syncs = []

    def schedule():
        if start_due_syncs is not None:
            tick = min(1.0, interval / 10)
            while not stop.wait(tick):
                if any(s.pk == model.pk for s in start_due_syncs()):
                    syncs.append(time.monotonic())
        else:
            while not stop.wait(interval):
                start_sync(S3ImportStorage.objects.get(pk=model.pk))
                syncs.append(time.monotonic())

    scheduler = threading.Thread(target=schedule, daemon=True)
    putter = Putter(moto.url, bucket, args.n, rate)
    scheduler.start()
    putter.start()
    try:
        seen, poll = watch(client, project["id"], bucket, putter, timeout=args.n / rate + 2 * interval + 120)
    finally:
        stop.set()
        putter.join()
        scheduler.join()
    return {
        **summary(latencies(putter, seen)),
        "poll_ms": round(poll * 1000, 1),
        "syncs_started": len(syncs),
        "started_by": (
            "io_storages.schedule.start_due_syncs"
            if start_due_syncs
            else "this script calling io_storages.jobs.start_sync every interval (no scheduler in the service yet)"
        ),
        "min_interval_setting": getattr(settings, "STORAGE_SYNC_MIN_INTERVAL_MINUTES", None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="objects put on each side")
    parser.add_argument(
        "--interval-minutes",
        type=float,
        help="sync interval (default: STORAGE_SYNC_MIN_INTERVAL_MINUTES, else 5)",
    )
    parser.add_argument("--rate", type=float, help="puts per second (default: n per sync interval)")
    parser.add_argument("--skip-sync", action="store_true", help="measure the notifications side only")
    parser.add_argument("--skip-notifications", action="store_true", help="measure the scheduled sync only")
    parser.add_argument(
        "--database-url", help="PostgreSQL server to use (a database bench_events_<pid> is created and dropped)"
    )
    args = parser.parse_args()

    load_at_start = round(os.getloadavg()[0], 2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    moto = start_server(moto_argv, name="moto")
    drop_db, data_dir = None, tempfile.mkdtemp(prefix="bench-events-")
    try:
        database_url = None
        if args.database_url:
            database_url, drop_db = postgres_database(args.database_url, BENCH_DB)
        if args.interval_minutes is not None:  # the scheduler must allow it
            os.environ["STORAGE_SYNC_MIN_INTERVAL_MINUTES"] = str(args.interval_minutes)
        setup_django(data_dir, database_url)
        import logging

        logging.getLogger("django.request").setLevel(logging.ERROR)  # the empty task list's 404s
        from django.conf import settings
        from django.db import connection

        if args.interval_minutes is None:
            args.interval_minutes = getattr(settings, "STORAGE_SYNC_MIN_INTERVAL_MINUTES", 5.0)
        rate = args.rate or args.n / (args.interval_minutes * 60)
        client = api_client()
        report = {
            "n": args.n,
            "database": connection.vendor,
            "puts_per_second": round(rate, 3),
            "sync_interval_minutes": args.interval_minutes,
        }
        if not args.skip_notifications:
            log(f"notifications: {args.n} objects at {rate:.2f}/s")
            report["notifications"] = notifications_side(client, moto, args, rate)
            log(json.dumps(report["notifications"]))
        if not args.skip_sync:
            log(f"scheduled sync every {args.interval_minutes} min: {args.n} objects at {rate:.2f}/s")
            report["scheduled_sync"] = scheduled_side(client, moto, args, rate)
            log(json.dumps(report["scheduled_sync"]))
        report.update(
            python=platform.python_version(),
            cpus=os.cpu_count(),
            load_average_1min_at_start=load_at_start,
        )
        print(json.dumps(report))
    finally:
        moto.stop()
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if drop_db:
            drop_db()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
