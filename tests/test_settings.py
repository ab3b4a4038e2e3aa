"""Settings read from the environment, checked in a fresh interpreter per environment."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def database_options(tmp_path, **env):
    script = "import json, django; django.setup(); from django.conf import settings; "
    script += "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
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
    options = database_options(tmp_path, **env)
    expected = {"server_side_binding": True, "prepare_threshold": 5}
    assert (expected.items() <= options.items()) is prepared
