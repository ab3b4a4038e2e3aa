"""Fuzz the whole REST API from its own OpenAPI schema with schemathesis; exit 1 on any 5xx.

    .venv/bin/python scripts/fuzz.py                       # SQLite, about 6 minutes
    .venv/bin/python scripts/fuzz.py --database-url postgres://postgres@127.0.0.1:5432/test
    .venv/bin/python scripts/fuzz.py --max-examples 200    # longer

Installs schemathesis in .cache/fuzz-venv (it is not a dependency of the service or of the
tests), starts the service under gunicorn on a throw-away database (SQLite in a temporary
folder, or a database fuzz_<pid> created on the given PostgreSQL server and dropped after),
creates a user and one project, task, annotation and storage of each type, all with the same
id, and runs schemathesis once per storage type with that id in every path, so generated
bodies reach the views instead of a 404 (DELETE operations in a second round, after all the
others). Exit status: 1 if the service logged a 5xx or a worker timeout, else 2 if
schemathesis reported anything (errors of its own included), else 0. The service's log (with the
tracebacks) is kept and its path printed. docs/fuzzing.md says what earlier runs found.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import postgres_database  # noqa: E402
from io_storages.registry import PROVIDERS  # noqa: E402
from tests.fixtures.servers import _bin, start_server  # noqa: E402

VENV = ROOT / ".cache" / "fuzz-venv"
SCHEMATHESIS_VERSION = "4.32.5"
TOKEN, ID = "FUZZTOKEN", 900001

SEED = f"""
import json
from django.contrib.auth import get_user_model
from core.models import Organization
from io_storages import registry
from projects.models import Project
from tasks.models import Annotation, Task
# The seeded rows are what a hostile tenant would have stored before today's checks, so every
# fuzzed request also meets them: an endpoint with the backslash trick and stored keys, a Redis
# password for a loopback port, a token_uri on loopback, a local-files path outside every
# organization's directory, and task data nested past the limit holding a traversal path.
GCS_KEY = {{"type": "service_account", "client_email": "f@example.com", "private_key": "x",
           "token_uri": "http://127.0.0.1:9/token"}}
HOSTILE = {{
    "s3": {{"bucket": "b", "s3_endpoint": "http://127.0.0.1:9\\\\@example.com",
            "aws_access_key_id": "AKIAFUZZ", "aws_secret_access_key": "fuzz-secret"}},
    "gcs": {{"bucket": "b", "google_application_credentials": json.dumps(GCS_KEY)}},
    "azure": {{"container": "c", "account_name": "fuzz", "account_key": "a2V5"}},
    "redis": {{"host": "127.0.0.1", "port": 9, "password": "fuzz-password"}},
    "localfiles": {{"path": "/etc"}},
}}
DEEP = {{"text": "/data/local-files/?d=../../etc/passwd"}}
for _ in range(150):
    DEEP = {{"a": DEEP}}
user = get_user_model().objects.get(email="fuzz@example.com")
organization = Organization.objects.get(members=user)
project = Project.objects.create(pk={ID}, title="Fuzzed", organization=organization, created_by=user)
Task.objects.create(pk={ID}, project=project, data={{"image": "s3://b/a.jpg", "deep": DEEP}}, inner_id=1)
Annotation.objects.create(pk={ID}, task_id={ID}, project=project, result=[], completed_by=user)
for name in registry.PROVIDERS:
    for export in (False, True):
        registry.storage_model(name, export=export).objects.create(pk={ID}, project=project, **HOSTILE[name])
"""

CONFIG = f"""
request-timeout = 30.0
[auth.openapi.tokenAuth]
api_key = "Token {TOKEN}"
[[operations]]
include-path-regex = "\\\\{{id\\\\}}"
parameters = {{ "path.id" = {ID}, "path.storage_type" = "%s" }}
"""


def schemathesis():
    binary = VENV / "bin" / "schemathesis"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"schemathesis=={SCHEMATHESIS_VERSION}"], check=True)
    return str(binary)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL server (default: SQLite in a temporary folder)")
    parser.add_argument("--max-examples", type=int, default=30, help="fuzzing examples per operation")
    parser.add_argument("--types", nargs="+", choices=list(PROVIDERS), default=list(PROVIDERS), help="storage types")
    args = parser.parse_args()

    binary = schemathesis()
    data_dir = tempfile.mkdtemp(prefix="fuzz-")
    env = {**os.environ, "DATA_DIR": data_dir, "DATABASE_URL": f"sqlite:///{data_dir}/db.sqlite3", "REDIS_URL": ""}
    env.update(LOG_LEVEL="WARNING", LOCAL_FILES_SERVING_ENABLED="true")
    drop = None
    if args.database_url:
        env["DATABASE_URL"], drop = postgres_database(args.database_url, f"fuzz_{os.getpid()}")
    manage = [sys.executable, "manage.py"]
    try:
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        createuser = [*manage, "createuser", "fuzz@example.com", "--password", "x", "--token", TOKEN]
        subprocess.run(createuser, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*manage, "shell", "-c", SEED], cwd=ROOT, env=env, check=True)
        gunicorn = start_server(
            lambda port: [_bin("gunicorn"), "core.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "4",
                          "--worker-class", "gthread", "--timeout", "60"],
            name="fuzz-service", env=env, cwd=str(ROOT), timeout=30,
        )  # fmt: skip
        failed = []
        try:
            # Deletes last: before them, every run finds the seeded rows in place.
            runs = [(name, ["--exclude-method", "DELETE"]) for name in args.types]
            runs += [(name, ["--include-method", "DELETE"]) for name in args.types]
            for storage_type, methods in runs:
                config = Path(data_dir) / f"{storage_type}.toml"
                config.write_text(CONFIG % storage_type)
                print(f"--- storage type {storage_type}, {' '.join(methods)}", flush=True)
                run = subprocess.run(
                    [binary, "--config-file", str(config), "run", f"{gunicorn.url}/api/schema/?format=json",
                     "--checks", "not_a_server_error", "--max-examples", str(args.max_examples), "--workers", "2",
                     "--exclude-path", "/api/current-user/token/", *methods],  # a new token would end the login
                    cwd=data_dir,
                )  # fmt: skip
                if run.returncode:
                    failed.append(f"{storage_type} ({' '.join(methods)})")
        finally:
            log = Path(data_dir) / "service.log"
            log.write_text(gunicorn.output())  # stop() removes the server's own copy
            gunicorn.stop()
        # The service's log decides: schemathesis also exits 1 on errors of its own (a
        # generator that gives up on a schema construct), which are no fault of the service.
        errors = sum(log.read_text().count(line) for line in ("Internal Server Error", "WORKER TIMEOUT"))
        print(f"service log: {log}\n5xx or timeouts in the service's log: {errors}")
        if failed:
            print("schemathesis reported problems (above) in the runs: " + ", ".join(failed))
        return 1 if errors else 2 if failed else 0
    finally:
        if drop:
            drop()


if __name__ == "__main__":
    sys.exit(main())
