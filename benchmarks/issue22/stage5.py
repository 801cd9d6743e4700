"""Scratch: P2DHMDM distances (several windows and penalties from one cost volume) on the top-K IDM candidates."""

import os
import sys
import time

import numpy as np

from knn_core.data import load_mnist
from knn_core.methods.kernels import displacement_costs, p2dhmdm_from_costs
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images

split = sys.argv[1]
K = int(sys.argv[2]) if len(sys.argv) > 2 else 100
out = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
while not os.path.exists(out + f"{split}_idm.npy"):
    time.sleep(20)
ds = load_mnist()
r = Recipe(deskew=True, blur_sigma=0.5)
tr_all = prepare_images(ds.train_images, r)
if split == "val":
    tr, q = tr_all[:50000], tr_all[50000:]
else:
    tr, q = tr_all, prepare_images(ds.test_images, r)
cands = np.load(out + f"{split}_cands.npy")
idm = np.load(out + f"{split}_idm.npy")
o = np.argsort(idm, 1, kind="stable")[:, :K]
# the penalty's unit: the median cost per pixel of the nearest neighbour by IDM (validation's, fixed for test)
unit = float(np.median(np.sort(np.load(out + "val_idm.npy"), 1)[:, 0].astype(np.float64) ** 2) / 784)
# (window, deviation, penalty in units)
VARIANTS = [(2, 1, 0.0), (2, 1, 0.1), (2, 1, 0.5), (1, 1, 0.0), (2, 0, 0.0)]
print(split, "penalty unit", unit, "variants", VARIANTS, flush=True)
res = np.empty((len(q), K, len(VARIANTS)), np.float32)
t0 = time.time()
c0 = time.process_time()
for i in range(len(q)):
    costs = displacement_costs(q[i], tr[cands[i, o[i]]], 2, 3)
    for j, (w, v, p) in enumerate(VARIANTS):
        res[i, :, j] = p2dhmdm_from_costs(costs, w, v, p * unit)
    if i % 1000 == 999:
        print(split, i + 1, time.time() - t0, time.process_time() - c0, flush=True)
        np.save(out + f"{split}_p2d_partial.npy", res[: i + 1])
np.save(out + f"{split}_p2d_pos.npy", o.astype(np.int16))
np.save(out + f"{split}_p2d.npy", res)
print(split, "P2DHMDM done", time.time() - t0, time.process_time() - c0, flush=True)
