#!/usr/bin/env bash
# Set up (first time) and run the whole test suite, browser tests included.
# Chromium for the browser tests comes from Debian; it is installed here when missing, with an
# emoji font so that the README's screenshots (scripts/screenshots.py) show the page icons (not empty boxes).
# So does PostgreSQL 15 for the class room's store tests.
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow and not e2e"` for the quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji) >/dev/null
  else
    echo "chromium is not installed (and this is not root): the browser tests will be skipped"
  fi
fi
# PostgreSQL 15 (Debian's package) for the class room's store tests, which start a throwaway cluster
# themselves (scripts/postgres.sh; as root it runs as the postgres user).
if ! bash scripts/postgres.sh check >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's postgresql for the class room's store tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null
  else
    echo "PostgreSQL is not installed (and this is not root): the store's PostgreSQL tests will be skipped"
  fi
fi
exec .venv/bin/python -m pytest "$@"
