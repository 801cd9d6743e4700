"""Validation (or test with --test and fixed choices) scoring of IDM / TD / distortion combinations."""

import sys

import numpy as np
from ana import errors, load, out, show

split = sys.argv[1] if len(sys.argv) > 1 else "val"
PENS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]
d = load(split)
y, clab, idm = d["y"], d["clab"], d["idm"].astype(np.float64)


def smooth_pick(res):
    best = None
    for w in ("uniform", "distance"):
        e = np.array([res[(w, k)] for k in range(1, 11)])
        s = np.convolve(e, np.ones(3) / 3, "valid")  # centres k=2..9
        for i, v in enumerate(s):
            key = (round(v, 6), w != "uniform", i + 2)
            if best is None or key < best[0]:
                best = (key, w, i + 2, v, e[i + 1])
    return best[1:]


def report(name, dist, cl):
    res = errors(dist, cl, y)
    w, k, sm, e = smooth_pick(res)
    raw = min(res.values())
    mean29 = np.mean([res[("distance", k)] for k in range(2, 10)])
    print(
        f"{name:60s} pick {w[:4]} k={k}: {e:.2f} (smoothed {sm:.3f}; best raw {raw:.2f}; mean 1/d k2-9 {mean29:.3f})",
        flush=True,
    )
    return res


res = report("IDM top500", idm, clab)
show(res, "IDM")
try:
    pos = np.load(out + f"{split}_td_pos.npy").astype(np.int64)
    td = np.load(out + f"{split}_td.npy").astype(np.float64)
except FileNotFoundError:
    pos = None
if pos is not None:
    n = len(td)
    pos, tdn = pos[:n], td
    I = np.take_along_axis(idm[:n], pos, 1)
    CL = np.take_along_axis(clab[:n], pos, 1)
    report("IDM on top100-by-IDM (sanity)", I, CL)
    ratio = np.median(I[:, :10] ** 2) / np.median(tdn[:, :10, 2] ** 2)
    print("median IDM^2/TD^2 ratio", ratio)
    for j, p in enumerate(PENS):
        report(f"TD alone (pen {p}) on top100 by IDM", tdn[:, :, j], CL)
    for j, p in enumerate(PENS):
        for f in (0.1, 0.25, 0.5, 1, 2, 4):
            lam = f * ratio
            report(f"IDM^2 + {f}*ratio({lam:.2f}) TD^2 pen {p}", np.sqrt(I**2 + lam * tdn[:, :, j] ** 2), CL)
try:
    dpos = np.load(out + f"{split}_dist_pos.npy").astype(np.int64)
    didm = np.load(out + f"{split}_dist_idm.npy").astype(np.float64)
except FileNotFoundError:
    dpos = None
if dpos is not None:
    names = ["rot+8", "rot-8", "scale0.9", "scale1.1", "wide", "tall"]
    I = np.take_along_axis(idm, dpos, 1)
    CL = np.take_along_axis(clab, dpos, 1)
    for sub in [(0, 1), (2, 3), (4, 5), (0, 1, 2, 3), (0, 1, 2, 3, 4, 5)]:
        m = np.minimum(I, didm[:, :, list(sub)].min(2))
        report("IDM min over copies " + "+".join(names[s] for s in sub), m, CL)
