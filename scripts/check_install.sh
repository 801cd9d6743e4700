#!/usr/bin/env bash
# What `pip install .` gives, checked outside the checkout: build the wheel, install it (without
# dependencies: .venv has them) into a temporary folder, then from that folder run the console
# script and load the bundled MNIST, and check that both came from the installed copy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py="$PWD/.venv/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf build  # setuptools' build folder keeps files deleted since: they would ship in the wheel
"$py" -m pip wheel -q --disable-pip-version-check --no-deps -w "$tmp/wheel" .
"$py" -m pip install -q --disable-pip-version-check --no-deps --target "$tmp/site" "$tmp"/wheel/*.whl
cd "$tmp"
export PYTHONPATH="$tmp/site"
"$tmp/site/bin/knn-lab" --help >/dev/null
"$py" - "$tmp/site" <<'PY'
import sys
from pathlib import Path

import knn_core
from knn_core import load_mnist
from knn_core.data import BUNDLED_DIR

site = Path(sys.argv[1])
package = Path(knn_core.__file__).parent
assert package.is_relative_to(site), f"knn_core imported from {package}, not from {site}"
assert BUNDLED_DIR.is_relative_to(package) and BUNDLED_DIR.is_dir(), f"no bundled MNIST in the installed copy: {BUNDLED_DIR}"
ds = load_mnist()
assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
print(f"installed copy OK: knn-lab --help, load_mnist() from {BUNDLED_DIR.relative_to(site)}: "
      f"{len(ds.train_images)} training + {len(ds.test_images)} test digits")
PY
