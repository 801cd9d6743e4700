"""The preset's validation lists (all 10,000, cached as beyond_classics.py reads them) and the smoothed pick."""
import sys
import time

import numpy as np

sys.path.insert(0, "benchmarks")
from beyond_classics import KS, WEIGHTS, choose_vote, progress

from knn_core import neighbor_lists
from knn_core.data import load_mnist
from knn_core.methods import PRESETS

ds = load_mnist()
r = PRESETS["idm+affine+p2d"].recipe
t = time.time()
val = neighbor_lists(ds, r, "val", progress=progress("val"))
print("val lists", time.time() - t, "s; recorded", val.seconds, val.cpu_seconds, flush=True)
acc = {w: val.sweep(KS, weights=w) for w in WEIGHTS}
for w in WEIGHTS:
    e = 100 * (1 - np.asarray(acc[w], float))
    print(w, " ".join(f"{v:.2f}" for v in e), "smoothed", " ".join(f"{v:.3f}" for v in np.convolve(e, np.ones(3) / 3, "valid")))
w, k = choose_vote(acc, True)
print("smoothed pick", k, w, "validation error", 100 * (1 - acc[w][KS.index(k)]))
