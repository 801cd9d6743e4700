#!/usr/bin/env bash
# Serve a school: N Streamlit processes behind nginx on one machine (README, "Running it for a school").
#   bash scripts/serve.sh --workers 2 --port 8620 [--database-url postgresql+psycopg://...] [--listen 0.0.0.0]
# Ctrl-C or SIGTERM stops them all.  `--help` lists every option (deploy/serve.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m deploy.serve "$@"
