"""Scratch: two-sided tangent distances on the top-K IDM candidates, for several penalties at once."""

import os
import sys
import time

import numpy as np

from knn_core.data import load_mnist
from knn_core.methods.kernels import tangent_vectors
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images
from knn_core.threads import one_blas_thread

split = sys.argv[1]
K = int(sys.argv[2]) if len(sys.argv) > 2 else 100
PENS = np.array([0.0, 0.01, 0.03, 0.1, 0.3, 1.0])
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
pos = o.astype(np.int16)  # positions into the 500 candidate columns
td = np.empty((len(q), K, len(PENS)), np.float32)
t0 = time.time()
c0 = time.process_time()
with one_blas_thread():
    for i in range(len(q)):
        Yi = tr[cands[i, o[i]]]
        qf = q[i].astype(np.float64).ravel()
        Y = Yi.reshape(K, -1).astype(np.float64)
        tq = tangent_vectors(q[i][None])[0]
        ty = tangent_vectors(Yi)
        d = qf[None] - Y
        m = 7
        G = np.empty((K, 14, 14))
        G[:, :m, :m] = tq @ tq.T
        cross = -(ty.reshape(K * m, -1) @ tq.T).reshape(K, m, m).transpose(0, 2, 1)
        G[:, :m, m:] = cross
        G[:, m:, :m] = cross.transpose(0, 2, 1)
        G[:, m:, m:] = ty @ ty.transpose(0, 2, 1)
        b = np.concatenate([d @ tq.T, -(ty @ d[:, :, None])[:, :, 0]], axis=1)
        dd = (d * d).sum(1)
        for j, p in enumerate(PENS):
            Gp = G + max(p, 1e-9) * np.eye(14)
            x = np.linalg.solve(Gp, b[:, :, None])[:, :, 0]
            td[i, :, j] = np.sqrt(np.maximum(dd - (b * x).sum(1), 0))
        if i % 1000 == 999:
            print(split, i + 1, time.time() - t0, time.process_time() - c0, flush=True)
np.save(out + f"{split}_td_pos.npy", pos)
np.save(out + f"{split}_td.npy", td)
print(split, "TD done", time.time() - t0, time.process_time() - c0, flush=True)
