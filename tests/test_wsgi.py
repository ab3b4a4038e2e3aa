"""The WSGI entry point gunicorn loads (core.wsgi)."""

import json
import subprocess
import sys
from pathlib import Path

from io_storages.registry import PROVIDERS

ROOT = Path(__file__).resolve().parent.parent


def test_startup_imports_every_provider_and_freezes_what_it_made(tmp_path):
    # In a fresh interpreter, as a gunicorn worker would load it.
    script = (
        "import gc, json, sys, core.wsgi;"
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'modules': sorted(sys.modules)}))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "core.settings", "DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert {p.client_module for p in PROVIDERS.values()} <= set(loaded["modules"])
    assert loaded["frozen"] > 50_000  # Django and the SDKs: out of the cyclic GC's sight
