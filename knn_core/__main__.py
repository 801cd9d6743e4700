"""python -m knn_core: the command line (knn_core.cli), the same as the knn-lab console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
