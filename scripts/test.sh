#!/usr/bin/env bash
# Set up and run the whole test suite: a virtualenv with the package and its dev extras, Debian's chromium for
# the browser tests (installed when missing and we are root), then pytest on a real PostgreSQL — the embedded one,
# or the server named by MANDATE_TEST_DATABASE_URL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing Debian's chromium for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "the browser tests need Chromium on PATH: sudo apt-get install chromium" >&2
        exit 1
    fi
fi

exec .venv/bin/python -m pytest "$@"
