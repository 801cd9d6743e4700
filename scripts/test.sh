#!/usr/bin/env bash
# Set up (first time) and run the whole test suite, browser tests included.
# Chromium (with an emoji font, so that the README's screenshots show the page icons), nginx and
# PostgreSQL come from Debian; they are installed here when missing.
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow and not e2e"` for the quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# Debian packages the tests use, installed when missing (as root): chromium for the browser tests, nginx
# for scripts/serve.sh's (tests/e2e/test_serve.py), PostgreSQL for the class room store on PostgreSQL.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver fonts-noto-color-emoji)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
bash scripts/postgres.sh check >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${need[*]} for the tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null
  else
    echo "not installed (and this is not root): ${need[*]}; the tests that need them will be skipped"
  fi
fi
exec .venv/bin/python -m pytest "$@"
