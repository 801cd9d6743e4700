"""Validation scoring of P2DHMDM (stage5) alone and combined with IDM, the affine copies (stage3) and TD (stage2)."""

import numpy as np
from ana import errors, load, out, show

d = load("val")
y, clab, idm = d["y"], d["clab"], d["idm"].astype(np.float64)
NAMES = ["w2 dev1", "w2 dev1 pen0.1", "w2 dev1 pen0.5", "w1 dev1", "w2 dev0"]


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


def report(name, dist, cl, full=False):
    res = errors(dist, cl, y[: len(dist)])
    w, k, sm, e = smooth_pick(res)
    print(
        f"{name:58s} {e:.2f} ({k}, {w[:4]}; smoothed {sm:.3f}; best raw {min(res.values()):.2f};"
        f" k=1 {res[('uniform', 1)]:.2f})",
        flush=True,
    )
    if full:
        show(res, name[:30])
    return sm


try:
    p2d = np.load(out + "val_p2d.npy").astype(np.float64)
except FileNotFoundError:
    p2d = np.load(out + "val_p2d_partial.npy").astype(np.float64)
n = len(p2d)
print("digits", n)
pos = np.load(out + "val_p2d_pos.npy").astype(np.int64)[:n] if n == len(y) else np.argsort(idm, 1, kind="stable")[:n, :100]
idm, clab, y = idm[:n], clab[:n], y[:n]
I = np.take_along_axis(idm, pos, 1)
CL = np.take_along_axis(clab, pos, 1)
report("IDM top500 (preset idm+blur)", idm, clab, full=True)
report("IDM, top 100 by IDM", I, CL)
for j, name in enumerate(NAMES):
    report(f"P2DHMDM {name}, top 100 by IDM", p2d[:, :, j], CL, full=j == 0)
    report(f"P2DHMDM {name}, top 50 by IDM", p2d[:, :50, j], CL[:, :50])
P = p2d[:, :, 0]
ratio = np.median(I[:, :10] ** 2) / np.median(P[:, :10] ** 2)
print("median IDM^2/P2D^2", ratio)
for f in (0.25, 1, 4):
    report(f"sqrt(IDM^2 + {f} x ratio P2D^2) (w2 dev1)", np.sqrt(I**2 + f * ratio * P**2), CL)
report(f"min(IDM, {ratio:.2f}^.5 x P2D w2 dev1), top 100", np.minimum(I, np.sqrt(ratio) * P), CL)
try:
    dpos = np.load(out + "val_dist_pos.npy").astype(np.int64)[:n]
    didm = np.load(out + "val_dist_idm.npy").astype(np.float64)[:n]
except FileNotFoundError:
    dpos = None
if dpos is not None:
    assert np.array_equal(dpos, pos[:, : dpos.shape[1]])  # both the top by IDM, stable order
    K = dpos.shape[1]
    A = np.minimum(I[:, :K], didm.min(2))
    report("IDM min over six affine copies, top 50 (the 0.48% of round 2)", A, CL[:, :K])
    ra = np.median(A[:, :10] ** 2) / np.median(P[:, :10] ** 2)
    for j in (0, 1, 2, 3):
        Pj = p2d[:, :K, j]
        rj = np.median(A[:, :10] ** 2) / np.median(Pj[:, :10] ** 2)
        report(f"min(affine IDM, {rj:.2f}^.5 x P2D {NAMES[j]})", np.minimum(A, np.sqrt(rj) * Pj), CL[:, :K], full=True)
        for f in (0.25, 1, 4):
            report(f"sqrt(affine IDM^2 + {f} x ratio P2D {NAMES[j]}^2)", np.sqrt(A**2 + f * rj * Pj**2), CL[:, :K])
    del ra
try:
    tpos = np.load(out + "val_td_pos.npy").astype(np.int64)[:n]
    td = np.load(out + "val_td.npy").astype(np.float64)[:n]
except FileNotFoundError:
    tpos = None
if tpos is not None:
    assert np.array_equal(tpos, pos)
    PENS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]
    for j in (2, 3):  # TD penalties 0.03, 0.1 (round 2's best was 0.1)
        T = td[:, :, j]
        rt = np.median(I[:, :10] ** 2) / np.median(T[:, :10] ** 2)
        for f in (0.1, 0.25, 0.5):
            report(f"sqrt(P2D^2 + {f} x {rt:.0f} TD(pen {PENS[j]})^2)", np.sqrt(P**2 + f * rt * T**2), CL)
        if dpos is not None:
            for f in (0.1, 0.25, 0.5):
                report(
                    f"sqrt(affine IDM^2 + {f} x {rt:.0f} TD(pen {PENS[j]})^2)",
                    np.sqrt(A**2 + f * rt * T[:, :K] ** 2),
                    CL[:, :K],
                )
