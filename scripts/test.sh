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

# The browser tests (tests/browser/) drive Debian's Chromium through its ChromeDriver: install
# both when they are missing and this machine allows it (root with apt-get); otherwise those
# tests are skipped and say why.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium and chromium-driver for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; } \
      || echo "Could not install chromium: the browser tests will be skipped, saying why" >&2
  else
    echo "No /usr/bin/chromium or /usr/bin/chromedriver, and no root with apt-get to install them:" \
      "the browser tests will be skipped, saying why" >&2
  fi
fi

eval "$(.venv/bin/python scripts/test_services.py)"
exec .venv/bin/python -m pytest "$@"
