"""Scratch: IDM variants (5x5 context w=2; 3x3 context w=3) on the top-100 by IDM (3x3, w=2), validation."""

import os
import sys
import time

import numpy as np

from knn_core.data import load_mnist
from knn_core.methods.kernels import idm_distances
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images

split = sys.argv[1]
K = 100
out = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
ds = load_mnist()
r = Recipe(deskew=True, blur_sigma=0.5)
tr_all = prepare_images(ds.train_images, r)
tr, q = (tr_all[:50000], tr_all[50000:]) if split == "val" else (tr_all, prepare_images(ds.test_images, r))
cands = np.load(out + f"{split}_cands.npy")
idm = np.load(out + f"{split}_idm.npy")
o = np.argsort(idm, 1, kind="stable")[:, :K]
res = np.empty((len(q), K, 2), np.float32)
t0 = time.time()
c0 = time.process_time()
for i in range(len(q)):
    Y = tr[cands[i, o[i]]]
    res[i, :, 0] = idm_distances(q[i], Y, 2, 2)
    res[i, :, 1] = idm_distances(q[i], Y, 3, 1)
    if i % 1000 == 999:
        print(split, i + 1, time.time() - t0, time.process_time() - c0, flush=True)
np.save(out + f"{split}_ctx_pos.npy", o.astype(np.int16))
np.save(out + f"{split}_ctx.npy", res)
print(split, "ctx done", time.time() - t0, time.process_time() - c0, flush=True)
