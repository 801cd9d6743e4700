"""Fourth round: the preset idm+affine+p2d on N validation digits against the third round's arrays (ISSUE22_DIR):
its copies against stage3.py's way of making them, and its 50 neighbours and distances against ana7's."""
import os
import sys
import time

import numpy as np
from scipy.ndimage import affine_transform

from knn_core.data import load_mnist
from knn_core.features import blur, deskew
from knn_core.methods import PRESETS, MethodSearch, affine_copies, affine_matrices
from knn_core.vote import decide, tally

o = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
n = int(sys.argv[1])
ds = load_mnist()
rec = PRESETS["idm+affine+p2d"].recipe
# 1. the copies against stage3.py's way of making them, on the candidates of the first digits
dk = deskew(ds.train_images[:2000], progress=False)
c = np.array([13.5, 13.5])
mine = affine_copies(dk, 0.5)
for j, M in enumerate(affine_matrices()):
    f = np.stack([affine_transform(im.astype(np.float32), M, offset=c - M @ c, order=1, mode="constant") for im in dk])
    ref = blur(np.clip(np.rint(f), 0, 255).astype(np.uint8), 0.5)
    print("copy", j, "pixels differing", int((ref != mine[j]).sum()), "of", ref.size, flush=True)
# 2. the search
t = time.time()
s = MethodSearch(rec, n_jobs=1).fit(ds.train_images[:50000])
print("fit", time.time() - t, flush=True)
rng = np.random.default_rng(0)
qi = np.sort(rng.choice(10000, n, replace=False))
t = time.process_time()
nb = s.kneighbors(ds.train_images[50000 + qi], 50)
print("search CPU per query", (time.process_time() - t) / n, flush=True)
cands = np.load(o + "val_cands.npy", mmap_mode="r")
idm = np.load(o + "val_idm.npy", mmap_mode="r")
dpos = np.load(o + "val_dist_pos.npy", mmap_mode="r")
didm = np.load(o + "val_dist_idm.npy", mmap_mode="r")
p2d = np.load(o + "val_p2d.npy", mmap_mode="r")
y = np.load(o + "val_labels.npy")
r = 0.8670277381707372
same_set = 0
maxrel = 0
same_order = 0
for a, i in enumerate(qi):
    pos = dpos[i].astype(np.int64)
    A = np.minimum(idm[i][pos].astype(np.float64), didm[i].astype(np.float64).min(1))
    M = np.minimum(A, np.sqrt(r) * p2d[i, :50, 1].astype(np.float64))
    ids = cands[i][pos]
    ref = dict(zip(ids.tolist(), M))
    same_set += set(ref) == set(nb.indices[a].tolist())
    got = dict(zip(nb.indices[a].tolist(), nb.distances[a]))
    common = set(ref) & set(got)
    maxrel = max(maxrel, max(abs(got[j] - ref[j]) / max(ref[j], 1) for j in common))
    same_order += list(ids[np.argsort(M, kind="stable")][:10]) == list(nb.indices[a, :10])
print(f"{n} digits: same 50 candidates {same_set}, same first 10 in order {same_order}, max rel diff {maxrel:.2e}")
lab = ds.train_labels[:50000][nb.indices]
pred = decide(tally(lab[:, :4], nb.distances[:, :4], 10, "distance"), lab[:, :4], "smallest")[0]
print("errors at k=4 1/d:", int((pred != y[qi]).sum()))
