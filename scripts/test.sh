#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite (extra arguments go to pytest).
# Uses the PostgreSQL and Redis of this machine when they answer (CI has both), otherwise
# SQLite and in-process jobs; the pytest header says which it ran against.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt

eval "$(.venv/bin/python scripts/test_services.py)"
exec .venv/bin/python -m pytest "$@"
