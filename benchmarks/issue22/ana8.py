"""Validation: how solid is min(affine-copies IDM, scaled P2D) against idm+blur? Halves and discordant digits."""

import numpy as np
from ana import load, out

from knn_core.vote import decide, tally


def smooth_pick(res):  # as in ana7.py: k and votes by the mean error over k-1..k+1
    best = None
    for w in ("uniform", "distance"):
        e = np.array([res[(w, k)] for k in range(1, 11)])
        s = np.convolve(e, np.ones(3) / 3, "valid")
        for i, v in enumerate(s):
            key = (round(v, 6), w != "uniform", i + 2)
            if best is None or key < best[0]:
                best = (key, w, i + 2, v, e[i + 1])
    return best[1:]


d = load("val")
y, clab, idm = d["y"], d["clab"], d["idm"].astype(np.float64)
pos = np.load(out + "val_p2d_pos.npy").astype(np.int64)
p2d = np.load(out + "val_p2d.npy").astype(np.float64)[:, :50, 1]  # w2 dev1 penalty 0.1 unit
dpos = np.load(out + "val_dist_pos.npy").astype(np.int64)
didm = np.load(out + "val_dist_idm.npy").astype(np.float64)
I = np.take_along_axis(idm, dpos, 1)
CL = np.take_along_axis(clab, dpos, 1)
A = np.minimum(I, didm.min(2))
r = np.median(A[:, :10] ** 2) / np.median(p2d[:, :10] ** 2)
M = np.minimum(A, np.sqrt(r) * p2d)


def predictions(dist, cl, k, w):
    o = np.argsort(dist, 1, kind="stable")[:, :k]
    return decide(tally(np.take_along_axis(cl, o, 1), np.take_along_axis(dist, o, 1), 10, w),
                  np.take_along_axis(cl, o, 1), "smallest")[0]


def errs(dist, cl, sl):
    return {(w, k): 100 * np.mean(predictions(dist[sl], cl[sl], k, w) != y[sl])
            for w in ("uniform", "distance") for k in range(1, 11)}


for name, sl in [("all", slice(None)), ("first 5,000", slice(0, 5000)), ("last 5,000", slice(5000, None))]:
    for label, dist, cl in [("idm+blur", idm, clab), ("affine IDM", A, CL), ("min(affine IDM, P2D pen0.1)", M, CL)]:
        w, k, sm, e = smooth_pick(errs(dist, cl, sl))
        print(f"{name:12s} {label:30s} pick {k} {w[:4]}: {e:.2f} smoothed {sm:.3f}")
a = predictions(idm, clab, 5, "distance") == y
b = predictions(M, CL, 4, "distance") == y
print("idm+blur (k5 1/d) wrong, new (k4 1/d) right:", int(np.sum(~a & b)), "; the reverse:", int(np.sum(a & ~b)))
