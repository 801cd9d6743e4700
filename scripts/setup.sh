#!/usr/bin/env bash
# Create .venv and install the pinned requirements (runtime, or with --dev the test tools too),
# then the project itself, editable and without dependencies (the pins are the tested set): the
# venv then imports this checkout's knn_core from any folder, scripts need no sys.path edits,
# and an edit counts at once (a non-editable copy would go stale beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" -r "$req"
# Building the editable install takes seconds, so it is redone only when pyproject.toml changed.
stamp=.venv/.installed-pyproject.toml
if ! cmp -s pyproject.toml "$stamp"; then
  "${pip[@]}" --no-deps -e .
  cp pyproject.toml "$stamp"
fi
