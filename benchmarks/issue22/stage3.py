"""Scratch: IDM against affine-distorted copies of the top-K IDM candidates (6 distortions), cached."""

import os
import sys
import time

import numpy as np
from scipy.ndimage import affine_transform

from knn_core.data import load_mnist
from knn_core.features import blur, deskew
from knn_core.methods.kernels import idm_distances

split = sys.argv[1]
K = int(sys.argv[2]) if len(sys.argv) > 2 else 50
out = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
A = np.deg2rad(8)
# matrices mapping OUTPUT (row, col) coordinates to INPUT coordinates, about the centre
DIST = {
    "rot+8": np.array([[np.cos(A), -np.sin(A)], [np.sin(A), np.cos(A)]]),
    "rot-8": np.array([[np.cos(A), np.sin(A)], [-np.sin(A), np.cos(A)]]),
    "scale0.9": np.eye(2) / 0.9,
    "scale1.1": np.eye(2) / 1.1,
    "wide": np.diag([1 / 0.9, 1 / 1.1]),
    "tall": np.diag([1 / 1.1, 1 / 0.9]),
}
ds = load_mnist()
dk = deskew(ds.train_images, progress=False)
if split == "val":
    dk = dk[:50000]
c = np.array([13.5, 13.5])
copies = []
for name, M in DIST.items():
    off = c - M @ c
    f = np.stack([affine_transform(im.astype(np.float32), M, offset=off, order=1, mode="constant") for im in dk])
    copies.append(blur(np.clip(np.rint(f), 0, 255).astype(np.uint8), 0.5))
print(split, "copies built", flush=True)
while not os.path.exists(out + f"{split}_idm.npy"):
    time.sleep(20)
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images

r = Recipe(deskew=True, blur_sigma=0.5)
q = prepare_images(ds.train_images[50000:], r) if split == "val" else prepare_images(ds.test_images, r)
cands = np.load(out + f"{split}_cands.npy")
idm = np.load(out + f"{split}_idm.npy")
o = np.argsort(idm, 1, kind="stable")[:, :K]
res = np.empty((len(q), K, len(DIST)), np.float32)
t0 = time.time()
c0 = time.process_time()
for i in range(len(q)):
    idx = cands[i, o[i]]
    for j, cp in enumerate(copies):
        res[i, :, j] = idm_distances(q[i], cp[idx], 2, 1)
    if i % 1000 == 999:
        print(split, i + 1, time.time() - t0, time.process_time() - c0, flush=True)
np.save(out + f"{split}_dist_pos.npy", o.astype(np.int16))
np.save(out + f"{split}_dist_idm.npy", res)
print(split, "distorted IDM done", time.time() - t0, time.process_time() - c0, flush=True)
