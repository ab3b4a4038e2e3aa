"""Benchmark: the resolve endpoint's S3 proxy (and redirect) mode against direct boto3 reads.

    .venv/bin/python bench/proxy.py
    .venv/bin/python bench/proxy.py --profile 200     # plus an in-process cProfile of the view
    .venv/bin/python bench/proxy.py --database-url postgres://postgres@127.0.0.1:5432/test

1. starts a moto server on a free loopback port and puts a 100 MB object and a 10 KB object;
2. runs `manage.py migrate` and `manage.py createuser bench@example.com --password x
   --token BENCHTOKEN` in a fresh temp DATA_DIR (SQLite there, or with `--database-url` a
   database bench_proxy_<pid> created on that PostgreSQL server and dropped after; REDIS_URL empty,
   SSRF_PROTECTION_ENABLED=false so the loopback moto endpoint is accepted,
   RESOLVER_PROXY_TIMEOUT=120 so a 100 MB stream is not cut by the 10 s default), then starts
   the service as production does: `gunicorn core.wsgi --workers 2 --threads 8
   --worker-class gthread --timeout 120` on a free port;
3. through the REST API (`Authorization: Token BENCHTOKEN`): two projects, each with an S3
   import storage on the bucket (project "proxy": presign=false, project "redirect":
   presign=true) and two imported tasks (`s3://bucket/big.bin`, `s3://bucket/small.bin`);
   the resolve URLs are taken from `GET /api/tasks/<id>/` (data rewritten by the service;
   relative links, as without HOSTNAME, are joined with the service's URL);
4. throughput: the 100 MB object, direct (boto3 get_object, read in 1 MB chunks), through
   the proxy (requests, stream=True, iter_content(1 MB)) and, as a reference, boto3 again
   through bench/relay.py (a zero-copy TCP relay: the cost of one more loopback hop and
   nothing else, what any proxy could reach here); in turn, best of `--rounds`;
5. latency: the 10 KB object, `--requests` requests from `--clients` threads (one
   requests.Session per thread, one shared boto3 client) for direct boto3, proxy-mode resolve
   (whole body read and checked) and redirect-mode resolve (the 303 is not followed);
   `--runs` runs of each, the modes taking turns, so that the machine's changing load hits
   all of them alike; p50/p99/mean in ms over all runs' requests, and each run's p50. The
   same is repeated with one client (`sequential`) to separate the per-request cost from CPU
   queueing on this machine;
6. stops gunicorn and moto (their process groups, by the pids started here) even on error
   or SIGTERM;
7. prints one JSON object on stdout (progress goes to stderr).

CPU accounting: besides wall times, every phase reports CPU seconds (utime+stime from /proc)
of this process (the clients), the gunicorn master and workers (`service`) and moto, per
request or per download. On a shared machine wall times move with its load; CPU per request
much less, so that is the figure to compare between runs.

Trying a fix without editing the service: `--env NAME=VALUE` (repeatable) adds a setting to
the service's environment (e.g. `--env RESOLVER_PROXY_BUFFER_SIZE=1048576`), `--wsgi MODULE`
makes gunicorn serve another WSGI module (e.g. one on `--env PYTHONPATH=DIR` that patches
something, then imports `core.wsgi.application`). `--requests 0 --sequential-requests 0`
measures throughput only.

Everything (client, moto, gunicorn) runs on this machine: on 2 cores the three compete for
CPU, and moto (single-process Python) costs milliseconds per GET; see docs/performance.md.
"""

import argparse
import base64
import cProfile
import io
import json
import math
import os
import platform
import pstats
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.databases import postgres_database  # noqa: E402
from tests.fixtures.s3 import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, moto_argv, s3_admin  # noqa: E402
from tests.fixtures.servers import _bin, start_server  # noqa: E402

BUCKET = "bench-proxy"
BIG_KEY, SMALL_KEY = "media/big.bin", "media/small.bin"
MB = 1024 * 1024
TOKEN = "BENCHTOKEN"
AUTH = {"Authorization": f"Token {TOKEN}"}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime + stime of one process, seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found


class CpuMeter:
    """CPU seconds used by this process (the clients), the gunicorn master and workers, moto
    and the relay: wall times on a shared machine vary with its load, CPU per request much less."""

    def __init__(self, web_pid, moto_pid, relay_pid):
        self.web_pid, self.moto_pid, self.relay_pid = web_pid, moto_pid, relay_pid

    def sample(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        web = proc_cpu(self.web_pid) + sum(proc_cpu(p) for p in children(self.web_pid))
        return {
            "client": usage.ru_utime + usage.ru_stime,
            "service": web,
            "moto": proc_cpu(self.moto_pid),
            "relay": proc_cpu(self.relay_pid),
        }


def service_env(data_dir):
    return {
        "DATA_DIR": data_dir,
        "DATABASE_URL": f"sqlite:///{data_dir}/db.sqlite3",
        "REDIS_URL": "",
        "SSRF_PROTECTION_ENABLED": "false",
        "RESOLVER_PROXY_TIMEOUT": "120",
        "LOG_LEVEL": "WARNING",
    }


def manage(env, *args):
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )


WSGI_APP = "core.wsgi"
WORKERS, THREADS = 2, 8  # as in the Dockerfile; --workers/--threads try others


def gunicorn_argv(port):
    return [
        _bin("gunicorn"),
        WSGI_APP,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--worker-class",
        "gthread",
        "--timeout",
        "120",
    ]


def relay_argv(target_url):
    """bench/relay.py between a free port and `target_url` (for `start_server`)."""
    target = urlsplit(target_url).netloc
    return lambda port: [sys.executable, str(ROOT / "bench" / "relay.py"), str(port), target]


def wait_ready(base, timeout=60):
    """The master binds the port before its workers import Django: wait for a real answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base}/api/projects/", headers=AUTH, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not answer /api/projects/ in time")
        time.sleep(0.2)


def api(session, method, url, expect, **kwargs):
    response = session.request(method, url, headers=AUTH, timeout=60, **kwargs)
    assert response.status_code == expect, (method, url, response.status_code, response.text[:2000])
    return response.json() if response.content else None


def setup_project(base, moto_url, title, presign):
    """A project with an S3 import storage and two tasks; {key: resolve URL}."""
    s = requests.Session()
    project = api(s, "POST", f"{base}/api/projects/", 201, json={"title": title})
    api(
        s,
        "POST",
        f"{base}/api/storages/s3/",
        201,
        json={
            "project": project["id"],
            "title": f"{title} storage",
            "bucket": BUCKET,
            "prefix": "media",
            "s3_endpoint": moto_url,
            "aws_access_key_id": S3_ACCESS_KEY,
            "aws_secret_access_key": S3_SECRET_KEY,
            "region_name": S3_REGION,
            "presign": presign,
            "use_blob_urls": True,
        },
    )
    api(
        s,
        "POST",
        f"{base}/api/projects/{project['id']}/import",
        201,
        json=[{"file": f"s3://{BUCKET}/{BIG_KEY}"}, {"file": f"s3://{BUCKET}/{SMALL_KEY}"}],
    )
    tasks = api(s, "GET", f"{base}/api/tasks/?project={project['id']}", 200)["tasks"]
    urls = {}
    for task in tasks:
        # Relative unless the service's HOSTNAME is set (as in Label Studio): join it with ours.
        url = urljoin(f"{base}/", api(s, "GET", f"{base}/api/tasks/{task['id']}/", 200)["data"]["file"])
        assert "/resolve/?fileuri=" in url, f"task data not rewritten: {url}"
        fileuri = parse_qs(urlsplit(url).query)["fileuri"][0]
        uri = base64.urlsafe_b64decode(fileuri + "=" * (-len(fileuri) % 4)).decode()
        urls[uri.split(f"s3://{BUCKET}/", 1)[1]] = url
    assert set(urls) == {BIG_KEY, SMALL_KEY}, urls
    return project["id"], urls


# --- throughput ----------------------------------------------------------------
def direct_download(s3, expected_size, tail):
    started = time.perf_counter()
    body = s3.get_object(Bucket=BUCKET, Key=BIG_KEY)["Body"]
    total, last = 0, b""
    while True:
        chunk = body.read(MB)
        if not chunk:
            break
        total += len(chunk)
        last = chunk[-len(tail) :] if len(chunk) >= len(tail) else (last + chunk)[-len(tail) :]
    seconds = time.perf_counter() - started
    assert total == expected_size and last == tail, (total, expected_size)
    return seconds


def proxy_download(session, url, expected_size, tail):
    started = time.perf_counter()
    with session.get(url, headers=AUTH, stream=True, timeout=180) as response:
        assert response.status_code == 200, (response.status_code, response.text[:500])
        total, last = 0, b""
        for chunk in response.iter_content(MB):
            total += len(chunk)
            last = chunk[-len(tail) :] if len(chunk) >= len(tail) else (last + chunk)[-len(tail) :]
    seconds = time.perf_counter() - started
    assert total == expected_size and last == tail, ("short or wrong body through the proxy", total)
    return seconds


# --- latency -------------------------------------------------------------------
def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(latencies, wall):
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
        "requests_per_s": round(len(ms) / wall, 1),
    }


def run_load(make_call, n, clients, meter, warmup=16):
    """`make_call()` gives a per-thread function doing one request; n timed requests shared
    by `clients` threads after `warmup` untimed ones (connections opened, caches warm).
    Returns the latencies (s), the wall time (s) and the CPU seconds of each process."""
    local = threading.local()

    def one(_):
        call = getattr(local, "call", None)
        if call is None:
            call = local.call = make_call()
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(warmup)))
        cpu, started = meter.sample(), time.perf_counter()
        latencies = list(pool.map(one, range(n)))
        wall = time.perf_counter() - started
        after = meter.sample()
    return latencies, wall, {k: after[k] - cpu[k] for k in cpu}


def measure_modes(modes, n, clients, meter, runs):
    """`runs` runs of n requests for every mode, the modes taking turns (direct, proxy,
    redirect, direct, ...) so that a change in the machine's load hits them alike. Latency
    figures are over all runs' requests; `p50_ms_per_run` shows the spread."""
    pooled = {mode: {"latencies": [], "wall": 0.0, "cpu": {}, "p50s": []} for mode in modes}
    for run in range(runs):
        for mode, make in modes.items():
            latencies, wall, cpu = run_load(make, n, clients, meter)
            entry = pooled[mode]
            entry["latencies"] += latencies
            entry["wall"] += wall
            entry["p50s"].append(round(statistics.median(latencies) * 1000, 2))
            for k, v in cpu.items():
                entry["cpu"][k] = entry["cpu"].get(k, 0.0) + v
            log(f"{clients} clients, run {run + 1}, {mode}: p50 {entry['p50s'][-1]} ms")
    results = {}
    for mode, entry in pooled.items():
        count = len(entry["latencies"])
        results[mode] = {
            **summary(entry["latencies"], entry["wall"]),
            "p50_ms_per_run": entry["p50s"],
            "cpu_ms_per_request": {k: round(v / count * 1000, 2) for k, v in entry["cpu"].items()},
        }
    return results


def direct_small(s3, content):
    def make():
        def call():
            assert s3.get_object(Bucket=BUCKET, Key=SMALL_KEY)["Body"].read() == content

        return call

    return make


def proxy_small(url, content):
    def make():
        session = requests.Session()

        def call():
            response = session.get(url, headers=AUTH, timeout=60)
            assert response.status_code == 200 and response.content == content, response.status_code

        return call

    return make


def redirect_small(url):
    def make():
        session = requests.Session()

        def call():
            response = session.get(url, headers=AUTH, timeout=60, allow_redirects=False)
            assert response.status_code == 303 and response.headers["Location"].startswith("http"), response.status_code

        return call

    return make


# --- in-process profile ----------------------------------------------------------
def profile_view(env, project_id, url, n, top=30):
    """The proxied small read through Django's test client in this process (same database and
    moto as the server): wall and CPU per request, SQL queries, the wall/CPU median of each
    step the view takes (same calls, timed one by one) and a cProfile (stderr)."""
    os.environ.update(env, DJANGO_SETTINGS_MODULE="core.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from io_storages.registry import project_storages
    from io_storages.resolve import decode_fileuri, find_storage

    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    client = Client(HTTP_AUTHORIZATION=f"Token {TOKEN}")

    def view():
        response = client.get(path)
        assert response.status_code == 200
        return b"".join(response.streaming_content) if response.streaming else response.content

    def measure(fn, count=n):
        for _ in range(3):
            fn()
        walls, cpus = [], []
        for _ in range(count):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        return {
            "wall_ms": round(statistics.median(walls) * 1000, 2),
            "cpu_ms": round(statistics.median(cpus) * 1000, 2),
        }

    queries = []

    def count_queries(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_queries):
        view()

    fileuri = parse_qs(urlsplit(url).query)["fileuri"][0]
    storage, key = find_storage(project_storages(project_id), decode_fileuri(fileuri))

    def fresh_client_read():
        with storage.get_client().open(key) as stream:
            stream.read()

    reused = storage.get_client()

    def reused_client_read():
        with reused.open(key) as stream:
            stream.read()

    result = {
        "requests": n,
        "whole_view": measure(view),
        "db_queries_per_request": len(queries),
        "steps": {
            "find_storage (project_storages + match)": measure(
                lambda: find_storage(project_storages(project_id), decode_fileuri(fileuri))
            ),
            "storage.get_client() (new boto3 client)": measure(storage.get_client),
            "open+read 10 KB with that new client": measure(fresh_client_read),
            "open+read 10 KB with a reused client": measure(reused_client_read),
            "presign with a new client": measure(lambda: storage.get_client().presign(key, 60)),
            "presign with a reused client": measure(lambda: reused.presign(key, 60)),
        },
    }
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        view()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        log(text.getvalue())
    return result


def main():
    global WSGI_APP, WORKERS, THREADS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--small-kb", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs of each kind (best is kept)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="latency runs of every mode, in turn")
    parser.add_argument("--sequential-requests", type=int, default=100, help="0: skip the one-client runs")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also profile N proxied reads in-process")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra service setting, e.g. RESOLVER_PROXY_BUFFER_SIZE=1048576 (repeatable)",
    )
    parser.add_argument("--wsgi", default="core.wsgi", help="WSGI module gunicorn serves (to try a variant)")
    parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per gunicorn worker")
    parser.add_argument(
        "--database-url", help="PostgreSQL server to use (a database bench_proxy_<pid> is created and dropped)"
    )
    args = parser.parse_args()
    WSGI_APP, WORKERS, THREADS = args.wsgi, args.workers, args.threads
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below

    started_servers = []
    data_dir = tempfile.mkdtemp(prefix="bench-proxy-")
    env = service_env(data_dir)
    drop_database = None
    if args.database_url:
        env["DATABASE_URL"], drop_database = postgres_database(args.database_url, f"bench_proxy_{os.getpid()}")
    env.update(item.split("=", 1) for item in args.env)
    load_before = os.getloadavg()
    try:
        log("starting moto")
        moto = start_server(moto_argv, name="moto")
        started_servers.append(moto)
        s3 = s3_admin(moto.url)
        s3.create_bucket(Bucket=BUCKET)
        big = os.urandom(args.big_mb * MB)
        small = os.urandom(args.small_kb * 1024)
        log(f"putting {args.big_mb} MB and {args.small_kb} KB objects")
        s3.put_object(Bucket=BUCKET, Key=BIG_KEY, Body=big)
        s3.put_object(Bucket=BUCKET, Key=SMALL_KEY, Body=small)
        big_size, tail = len(big), big[-64:]  # the last bytes are checked on every download
        del big

        log(f"migrate + createuser in {data_dir}")
        manage(env, "migrate", "--noinput")
        manage(env, "createuser", "bench@example.com", "--password", "x", "--token", TOKEN)
        log("starting gunicorn")
        web = start_server(gunicorn_argv, name="gunicorn", env=env, cwd=str(ROOT), timeout=30)
        started_servers.append(web)
        wait_ready(web.url)

        proxy_project, proxy_urls = setup_project(web.url, moto.url, "bench proxy", presign=False)
        _, redirect_urls = setup_project(web.url, moto.url, "bench redirect", presign=True)
        log("resolve URL (proxy):", proxy_urls[SMALL_KEY])
        relay = start_server(relay_argv(moto.url), name="relay")
        started_servers.append(relay)
        meter = CpuMeter(web.proc.pid, moto.proc.pid, relay.proc.pid)

        # Throughput: the three kinds take turns so that the machine's load hits them alike.
        session, s3_relayed = requests.Session(), s3_admin(relay.url)
        downloads = {
            "direct_boto3": lambda: direct_download(s3, big_size, tail),
            "proxy": lambda: proxy_download(session, proxy_urls[BIG_KEY], big_size, tail),
            "relay_boto3": lambda: direct_download(s3_relayed, big_size, tail),
        }
        runs = {kind: [] for kind in downloads}
        cpu = {kind: dict.fromkeys(meter.sample(), 0.0) for kind in downloads}
        for i in range(args.rounds):
            for kind, download in downloads.items():
                before = meter.sample()
                runs[kind].append(download())
                after = meter.sample()
                for k in before:
                    cpu[kind][k] += after[k] - before[k]
            log(f"round {i + 1}: " + ", ".join(f"{k} {big_size / MB / v[-1]:.0f} MB/s" for k, v in runs.items()))
        mb_s = {kind: big_size / MB / min(seconds) for kind, seconds in runs.items()}
        ratio = mb_s["proxy"] / mb_s["direct_boto3"]

        latency = {}
        modes = {
            "direct_boto3": direct_small(s3, small),
            "proxy": proxy_small(proxy_urls[SMALL_KEY], small),
            "redirect_303": redirect_small(redirect_urls[SMALL_KEY]),
        }
        for label, clients, n in (
            ("concurrent", args.clients, args.requests),
            ("sequential", 1, args.sequential_requests),
        ):
            if not n:
                continue
            results = measure_modes(modes, n, clients, meter, args.runs)
            latency[label] = {"clients": clients, "runs": args.runs, **results}

        def p50_overhead(label):
            if label not in latency:
                return None
            return round(latency[label]["proxy"]["p50_ms"] - latency[label]["direct_boto3"]["p50_ms"], 2)

        overhead = p50_overhead("concurrent")

        result = {
            "command": " ".join([".venv/bin/python bench/proxy.py", *sys.argv[1:]]),
            "machine": {
                "nproc": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
                "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
            },
            "setup": {
                "s3_server": "moto server (single-process Python) on loopback",
                "service": " ".join(["gunicorn"] + gunicorn_argv(0)[1:]).replace(
                    "127.0.0.1:0", "127.0.0.1:<free port>"
                ),
                "cpu_accounting": "cpu_* figures: utime+stime from /proc of this process (clients), "
                "the gunicorn master+workers (service), moto and bench/relay.py, per request or per download",
                "service_env": {k: v for k, v in env.items() if k != "DATA_DIR"},
                "note": "RESOLVER_PROXY_TIMEOUT=120 (default 10 s) so the 100 MB stream is not cut; "
                "client, moto and gunicorn share the machine's CPUs",
                "proxy_chunk_bytes": int(env.get("RESOLVER_PROXY_BUFFER_SIZE", 65536)),
            },
            "throughput": {
                "object_mb": args.big_mb,
                "rounds": args.rounds,
                **{f"{kind}_mb_s": round(value, 1) for kind, value in mb_s.items()},
                "ratio_proxy_over_direct": round(ratio, 3),
                "target_ratio": 0.8,
                "target_met": ratio >= 0.8,
                "ratio_relay_over_direct": round(mb_s["relay_boto3"] / mb_s["direct_boto3"], 3),
                "ratio_proxy_over_relay": round(mb_s["proxy"] / mb_s["relay_boto3"], 3),
                "runs_s": {kind: [round(x, 3) for x in seconds] for kind, seconds in runs.items()},
                "cpu_s_per_download": {
                    kind: {k: round(v / args.rounds, 3) for k, v in used.items()} for kind, used in cpu.items()
                },
            },
            "latency": {
                "object_kb": args.small_kb,
                **latency,
                "p50_overhead_proxy_over_direct_ms": overhead,
                "target_overhead_ms": 10,
                "target_met": None if overhead is None else overhead < 10,
                "sequential_p50_overhead_proxy_over_direct_ms": p50_overhead("sequential"),
            },
        }
        if args.profile:
            log(f"profiling {args.profile} proxied reads in-process")
            result["profile"] = profile_view(env, proxy_project, proxy_urls[SMALL_KEY], args.profile)
        print(json.dumps(result, indent=2))
    finally:
        for server in reversed(started_servers):
            log(f"stopping {server.name} (pid {server.proc.pid})")
            server.stop()
        if drop_database:
            drop_database()
        subprocess.run(["rm", "-rf", data_dir], check=False)


if __name__ == "__main__":
    main()
