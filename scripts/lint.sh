#!/usr/bin/env bash
# The code checks that CI runs before the tests (settings in pyproject.toml): ruff's lint rules
# on everything, mypy on the library. Both run, so one look shows every finding.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
status=0
echo "== ruff check ."
.venv/bin/ruff check --output-format concise . || status=1
echo "== mypy knn_core"
.venv/bin/mypy knn_core || status=1
exit $status
