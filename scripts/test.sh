#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite (extra arguments go to pytest).
# Uses the PostgreSQL and Redis of this machine when they answer (CI has both), otherwise
# SQLite and in-process jobs; the pytest header says which it ran against.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
# Azurite (Azure Blob emulator) from npm, in a folder of its own; 3.35 is the last for Node 20.
if [ ! -x .cache/azurite/node_modules/.bin/azurite-blob ]; then
  mkdir -p .cache/azurite
  npm install --prefix .cache/azurite azurite@3.35.0 --no-audit --no-fund --loglevel=error
fi

eval "$(.venv/bin/python scripts/test_services.py)"
exec .venv/bin/python -m pytest "$@"
