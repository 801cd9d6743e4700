import numpy as np
from ana import errors, load, out

d = load("val")
y = d["y"]
idm = d["idm"].astype(float)
clab = d["clab"]


def pick(res):
    best = None
    for w in ("uniform", "distance"):
        e = np.array([res[(w, k)] for k in range(1, 11)])
        s = np.convolve(e, np.ones(3) / 3, "valid")
        for i, v in enumerate(s):
            key = (round(v, 6), w != "uniform", i + 2)
            if best is None or key < best[0]:
                best = (key, w, i + 2, v, e[i + 1])
    return best[1:]


def rep(name, dist, cl):
    res = errors(dist, cl, y)
    w, k, sm, e = pick(res)
    print(
        f"{name:55s} {e:.2f} ({k}, {w[:4]}; smoothed {sm:.2f}; best raw {min(res.values()):.2f}; k=1 {res[('uniform', 1)]:.2f})",
        flush=True,
    )


pos = np.load(out + "val_ctx_pos.npy").astype(np.int64)
ctx = np.load(out + "val_ctx.npy").astype(float)
I = np.take_along_axis(idm, pos, 1)
CL = np.take_along_axis(clab, pos, 1)
rep("IDM 3x3 w=2, top 100 by it", I, CL)
rep("IDM 5x5 w=2", ctx[:, :, 0], CL)
rep("IDM 3x3 w=3", ctx[:, :, 1], CL)
r = np.median(I[:, :10] ** 2) / np.median(ctx[:, :10, 0] ** 2)
rep("IDM 3x3 + 5x5 (sum of squares, scaled)", np.sqrt(I**2 + r * ctx[:, :, 0] ** 2), CL)
