"""Make the repo root importable, so plain `pytest` finds `knn_core` without installing it."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
