#!/usr/bin/env bash
# Screenshots of the console's main screens into docs/screenshots/ (shown in the README): the
# browser tests save them as they pass when CONSOLE_SCREENSHOTS names a directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONSOLE_SCREENSHOTS="$PWD/docs/screenshots"
exec ./scripts/test.sh tests/browser "$@"
