"""What a process gets when it starts: settings from the environment and the WSGI entry point
gunicorn loads, each checked in a fresh interpreter."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from io_storages.registry import PROVIDERS

ROOT = Path(__file__).resolve().parent.parent


def fresh_interpreter(tmp_path, script, **env):
    """What `script` prints last (JSON), run by a new Python with only `env` (and Django's
    settings module) in its environment."""
    env = {"DJANGO_SETTINGS_MODULE": "core.settings", "DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "env, prepared",
    [
        ({"DATABASE_URL": "postgres://u@127.0.0.1:5432/db"}, False),
        ({"DATABASE_URL": "postgres://u@127.0.0.1:5432/db", "DB_PREPARED_STATEMENTS": "true"}, True),
        ({"DB_PREPARED_STATEMENTS": "true"}, False),  # SQLite: nothing to prepare
    ],
)
def test_prepared_statements_are_opt_in_and_postgresql_only(tmp_path, env, prepared):
    script = "import json, django; django.setup(); from django.conf import settings; "
    script += "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
    options = fresh_interpreter(tmp_path, script, **env)
    assert ({"server_side_binding": True, "prepare_threshold": 5}.items() <= options.items()) is prepared


def test_wsgi_imports_every_provider_and_freezes_what_start_up_made(tmp_path):
    script = "import gc, json, sys, core.wsgi; "
    script += "print(json.dumps({'frozen': gc.get_freeze_count(), 'modules': sorted(sys.modules)}))"
    loaded = fresh_interpreter(tmp_path, script)
    assert {p.client_module for p in PROVIDERS.values()} <= set(loaded["modules"])
    assert loaded["frozen"] > 50_000  # Django and the SDKs: out of the cyclic GC's sight


CONCURRENT_WRITERS = """
import json, threading, time, django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
call_command("migrate", verbosity=0)
from core.models import Organization
from projects.models import Project
org, errors = Organization.objects.create(title="o"), []

def writer(i):
    try:
        for n in range(20):
            with transaction.atomic():  # what a delete or an import does: read, then write
                list(Project.objects.all()[:5])
                time.sleep(0.001)
                Project.objects.create(title=f"{i}-{n}", organization=org)
    except Exception as e:
        errors.append(repr(e))
    finally:
        connection.close()

threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"errors": errors, "projects": Project.objects.count()}))
"""


def test_embedded_sqlite_makes_concurrent_writers_wait_instead_of_failing(tmp_path):
    # gunicorn's threads share one SQLite file: a read-then-write transaction used to fail at
    # once with "database is locked" when another thread wrote first (a 500 on the API).
    result = fresh_interpreter(tmp_path, CONCURRENT_WRITERS, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert result == {"errors": [], "projects": 160}
