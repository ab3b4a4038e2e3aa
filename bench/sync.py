"""Benchmark: S3 import sync in blob mode against a bare boto3 listing of the same bucket.

    .venv/bin/python bench/sync.py --n 10000
    .venv/bin/python bench/sync.py --n 10000 --database-url postgres://postgres@127.0.0.1:5432/test

1. starts its own moto server on a free loopback port and puts N one-byte objects
   (`images/000001.jpg`, ...) from a thread pool;
2. runs the Django app in-process (fresh SQLite in a temp DATA_DIR, or a dedicated PostgreSQL
   database `bench_sync_<pid>`, created and dropped here; REDIS_URL empty: in-process jobs) and
   creates a user and organization;
3. each of `--rounds` rounds: times a bare boto3 `list_objects_v2` paginator over the bucket,
   then creates a fresh project and S3 storage (`use_blob_urls=true`) through the REST API,
   times `POST /api/storages/s3/<id>/sync` (checks N tasks were created) and a second sync
   that creates nothing. Listing and sync run back to back, so machine load hits both alike;
   the report takes the best listing and the best sync (and lists every round);
4. prints one JSON object on stdout (progress goes to stderr).

Memory: VmRSS is sampled every 50 ms during each sync; `rss_growth_mb` is the largest sampled
peak minus VmRSS just before that sync. `peak_rss_mb` is ru_maxrss of the whole process
(setup included). `sync_lookup/flush_seconds` are wall seconds in ImportSync's two database
steps (methods wrapped by this script), `sync_recheck_seconds` the part of flush that
re-checks each batch under the storage's row lock; the rest of a sync is listing and
per-object Python.
`--profile FILE`: one round, its sync under cProfile, top costs printed to stderr.
"""

import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import postgres_database  # noqa: E402
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, moto_argv, s3_admin  # noqa: E402
from tests.fixtures.servers import start_server  # noqa: E402

BUCKET = "bench-sync"
PREFIX = "images/"
BENCH_DB = f"bench_sync_{os.getpid()}"  # own name: concurrent runs do not drop each other's


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Max VmRSS seen while running, sampled every `interval` seconds."""

    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, rss_mb(), threading.Event()

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def stop(self):
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, rss_mb())
        return self.peak


def seed_objects(s3, host, port, n, workers):
    """Put n one-byte objects: plain keep-alive HTTP PUTs (moto checks no signatures, and
    boto3's per-request signing/hashing costs more client CPU than moto spends per PUT),
    each worker thread taking every `workers`-th key."""
    s3.create_bucket(Bucket=BUCKET)

    def put_every(start):
        conn = http.client.HTTPConnection(host, port, timeout=60)
        for i in range(start, n, workers):
            conn.request("PUT", f"/{BUCKET}/{PREFIX}{i + 1:06d}.jpg", body=b"x")
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (response.status, response.reason)
        conn.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put_every, range(workers)))


def bare_list_seconds(s3, n, repeat=3):
    """(best wall seconds, CPU seconds of this process in that run)."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        cpu, started, count = cpu_seconds(), time.perf_counter(), 0
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=PREFIX, PaginationConfig={"PageSize": 1000}
        ):
            count += len(page.get("Contents", []))
        best = min(best, (time.perf_counter() - started, cpu_seconds() - cpu))
        assert count == n, f"listed {count} keys, expected {n}"
    return best


def setup_django(data_dir, database_url):
    os.environ.update(
        DATA_DIR=data_dir,
        DATABASE_URL=database_url or f"sqlite:///{data_dir}/db.sqlite3",
        REDIS_URL="",
        SSRF_PROTECTION_ENABLED="false",
        DJANGO_SETTINGS_MODULE="core.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def api_client():
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from core.models import Membership, Organization

    user = get_user_model().objects.create_user(username="bench@example.com", email="bench@example.com", password="pw")
    Membership.objects.create(user=user, organization=Organization.objects.create(title="Bench"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post(client, path, body, status=200):
    response = client.post(path, body, format="json")
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json()


def instrument_sync():
    """Wall seconds spent in ImportSync's database steps, by wrapping its methods here (the
    service code is untouched): `lookup` (already linked?) and `flush` (create tasks+links)."""
    from io_storages.sync import ImportSync

    spent = {"lookup": 0.0, "flush": 0.0, "recheck": 0.0}

    def timed(name, method):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    ImportSync._linked_task_counts = timed("lookup", ImportSync._linked_task_counts)
    ImportSync._flush = timed("flush", ImportSync._flush)
    # inside flush: the batch re-checked under the storage's row lock
    ImportSync._not_linked_meanwhile = timed("recheck", ImportSync._not_linked_meanwhile)
    return spent


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_sync(client, storage_id, spent, profile=None):
    """(wall seconds, CPU seconds of this process, seconds in DB steps, API result)."""
    spent.update(lookup=0.0, flush=0.0, recheck=0.0)
    cpu, started = cpu_seconds(), time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(post, client, f"/api/storages/s3/{storage_id}/sync", {})
    else:
        result = post(client, f"/api/storages/s3/{storage_id}/sync", {})
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    assert result["status"] == "completed", result
    if profile:
        import pstats

        profiler.dump_stats(profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    return seconds, cpu, dict(spent), result


def one_round(client, moto_url, s3, n, spent, profile=None):
    """Bare listing, then a new project + storage synced twice; returns the round's numbers."""
    from tasks.models import Task

    list_seconds, list_cpu = bare_list_seconds(s3, n, repeat=1)
    project = post(
        client,
        "/api/projects/",
        {"title": "Bench", "label_config": '<View><Image name="img" value="$image"/></View>'},
        201,
    )
    config = {
        "project": project["id"],
        "bucket": BUCKET,
        "prefix": PREFIX,
        "recursive_scan": True,  # the same ListObjectsV2 requests as the bare listing (no delimiter)
        "use_blob_urls": True,
        "s3_endpoint": moto_url,
        "aws_access_key_id": S3_ACCESS_KEY,
        "aws_secret_access_key": S3_SECRET_KEY,
        "region_name": S3_REGION,
    }
    storage = post(client, "/api/storages/s3/", config, 201)

    rss_before, sampler = rss_mb(), RssSampler()
    sampler.start()
    sync_seconds, sync_cpu, sync_db, result = timed_sync(client, storage["id"], spent, profile)
    rss_peak = sampler.stop()
    tasks = Task.objects.filter(project_id=project["id"]).count()
    assert tasks == n == result["last_sync_count"], (tasks, result["last_sync_count"])

    resync_seconds, _, resync_db, result = timed_sync(client, storage["id"], spent)
    assert result["last_sync_count"] == 0 and Task.objects.filter(project_id=project["id"]).count() == n

    numbers = {
        "list_seconds": list_seconds,
        "list_cpu_seconds": list_cpu,
        "sync_seconds": sync_seconds,
        "sync_cpu_seconds": sync_cpu,
        "sync_lookup_seconds": sync_db["lookup"],
        "sync_flush_seconds": sync_db["flush"],
        "sync_recheck_seconds": sync_db["recheck"],
        "ratio": sync_seconds / list_seconds,
        "tasks_created": tasks,
        "resync_seconds": resync_seconds,
        "resync_lookup_seconds": resync_db["lookup"],
        "rss_before_sync_mb": rss_before,
        "rss_growth_mb": rss_peak - rss_before,
    }
    log("round: " + ", ".join(f"{k} {v:.2f}" for k, v in numbers.items()))
    return {k: round(v, 3) for k, v in numbers.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="objects in the bucket")
    parser.add_argument("--rounds", type=int, default=3, help="listing + fresh-project sync pairs; best is reported")
    parser.add_argument(
        "--database-url", help="PostgreSQL server to use (a database bench_sync_<pid> is created and dropped)"
    )
    parser.add_argument("--workers", type=int, default=16, help="threads putting objects")
    parser.add_argument("--profile", metavar="FILE", help="one round, its sync under cProfile (timings inflated)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the PostgreSQL benchmark database")
    args = parser.parse_args()
    rounds = 1 if args.profile else args.rounds

    load_at_start = round(os.getloadavg()[0], 2)  # other jobs on the machine skew timings
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still runs the cleanup below
    moto = start_server(moto_argv, name="moto")
    drop_db, data_dir = None, tempfile.mkdtemp(prefix="bench-sync-")  # SQLite file, secret key
    try:
        s3 = s3_admin(moto.url)
        started = time.perf_counter()
        seed_objects(s3, moto.host, moto.port, args.n, args.workers)
        put_seconds = time.perf_counter() - started
        log(f"put {args.n} objects in {put_seconds:.1f} s ({args.n / put_seconds:.0f}/s)")

        database_url = None
        if args.database_url:
            database_url, drop_db = postgres_database(args.database_url, BENCH_DB)
        setup_django(data_dir, database_url)
        from django.conf import settings
        from django.db import connection

        spent = instrument_sync()
        client = api_client()
        results = [one_round(client, moto.url, s3, args.n, spent, args.profile) for _ in range(rounds)]

        list_seconds = min(r["list_seconds"] for r in results)
        sync_seconds = min(r["sync_seconds"] for r in results)
        report = {
            "n": args.n,
            "database": connection.vendor,
            "put_seconds": round(put_seconds, 2),
            "puts_per_second": round(args.n / put_seconds),
            "list_seconds": list_seconds,
            "listed_keys_per_second": round(args.n / list_seconds),
            "sync_seconds": sync_seconds,
            "tasks_per_second": round(args.n / sync_seconds),
            "ratio": round(sync_seconds / list_seconds, 3),
            "ratio_per_round": [r["ratio"] for r in results],
            "tasks_created": results[0]["tasks_created"],
            "resync_seconds": min(r["resync_seconds"] for r in results),
            "rss_growth_mb": max(r["rss_growth_mb"] for r in results),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "batch_size": settings.STORAGE_SYNC_BATCH_SIZE,
            "profiled": bool(args.profile),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_start": load_at_start,
            "rounds": results,
        }
        print(json.dumps(report))
    finally:
        moto.stop()
        if "django.db" in sys.modules:  # close before deleting the SQLite file / dropping the database
            from django.db import connections

            connections.close_all()
        if drop_db and not args.keep_db:
            drop_db()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
