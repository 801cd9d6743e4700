#!/usr/bin/env bash
# The code checks that CI runs before the tests (settings in pyproject.toml):
# ruff's lint rules on everything, mypy on the library.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
echo "== ruff check ."
.venv/bin/ruff check .
echo "== mypy knn_core"
.venv/bin/mypy knn_core
