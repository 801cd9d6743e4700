"""Scratch: top-500 L2 candidates (deskew+blur 0.5) and their IDM (w=2, c=1) distances, cached as .npy."""

import os
import sys
import time

import numpy as np

from knn_core.data import load_mnist
from knn_core.methods.kernels import idm_distances
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images
from knn_core.threads import one_blas_thread

split = sys.argv[1]
N = 500
out = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
ds = load_mnist()
r = Recipe(deskew=True, blur_sigma=0.5)
tr_all = prepare_images(ds.train_images, r)
if split == "val":
    tr, q, ql = tr_all[:50000], tr_all[50000:], ds.train_labels[50000:]
else:
    tr, q, ql = tr_all, prepare_images(ds.test_images, r), ds.test_labels
np.save(out + f"{split}_labels.npy", ql)
T = tr.reshape(len(tr), -1).astype(np.float64)
Q = q.reshape(len(q), -1).astype(np.float64)
tn = (T * T).sum(1)
cands = np.empty((len(q), N), np.int32)
l2 = np.empty((len(q), N), np.float32)
t0 = time.time()
with one_blas_thread():
    for s in range(0, len(Q), 500):
        d = tn[None] - 2 * Q[s : s + 500] @ T.T
        p = np.argpartition(d, N, axis=1)[:, :N]
        dv = np.take_along_axis(d, p, 1)
        o = np.argsort(dv, 1, kind="stable")
        cands[s : s + 500] = np.take_along_axis(p, o, 1)
        l2[s : s + 500] = np.sqrt(np.maximum(np.take_along_axis(dv, o, 1) + (Q[s : s + 500] ** 2).sum(1)[:, None], 0))
print(split, "L2 done", time.time() - t0, flush=True)
np.save(out + f"{split}_cands.npy", cands)
np.save(out + f"{split}_l2.npy", l2)
idm = np.empty((len(q), N), np.float32)
t0 = time.time()
c0 = time.process_time()
for i in range(len(q)):
    idm[i] = idm_distances(q[i], tr[cands[i]], 2, 1)
    if i % 1000 == 999:
        print(split, i + 1, time.time() - t0, time.process_time() - c0, flush=True)
        np.save(out + f"{split}_idm_partial.npy", idm[: i + 1])
np.save(out + f"{split}_idm.npy", idm)
print(split, "IDM done", time.time() - t0, time.process_time() - c0, flush=True)
