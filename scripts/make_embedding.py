"""Compute the 2-D map of the training set that the Neighbour vote page shows.

    .venv/bin/python scripts/make_embedding.py            # t-SNE of 5,000 digits (a few minutes)
    .venv/bin/python scripts/make_embedding.py --method pca --out /tmp/pca.npz

Writes assets/embedding/tsne_5000.npz: the indices of a class-balanced sample
of the bundled MNIST training set and their 2-D t-SNE coordinates (seed 0,
perplexity 30).  The result is committed, so the app never runs t-SNE.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from knn_core import load_mnist
from knn_core.embedding import METHODS, SAMPLE_SIZE, SHIPPED, compute_map, read_map, write_map


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=SAMPLE_SIZE, help="training digits on the map (default %(default)s)")
    p.add_argument("--method", choices=METHODS, default="tsne")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=SHIPPED)
    args = p.parse_args(argv)

    ds = load_mnist()
    t = time.perf_counter()
    m = compute_map(ds.train_images, ds.train_labels, n=args.n, method=args.method, random_state=args.seed)
    write_map(m, args.out)
    back = read_map(args.out)
    assert (back.indices == m.indices).all()
    print(f"{args.method} map of {len(m)} digits in {time.perf_counter() - t:.0f} s -> {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
