#!/usr/bin/env bash
# Set up (first time) and start the app on the bundled MNIST: http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The default classifier's fit into the disk cache, beside the starting server: the server's own
# warm-up (when the first page opens) then reads it back instead of fitting (ui.resources.warm_up).
.venv/bin/python -c "from ui.resources import warm_up; warm_up()" >/dev/null 2>&1 &
# And one headless page opened on the server once it answers (deploy/warm.py): the server process
# imports the app's modules (seconds) then, not while the first visitor looks at a blank page.
.venv/bin/python -m deploy.warm "$@" &
exec .venv/bin/streamlit run app.py "$@"
