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


names = ["rot+8", "rot-8", "scale0.9", "scale1.1", "wide", "tall"]
dpos = np.load(out + "val_dist_pos.npy").astype(np.int64)
didm = np.load(out + "val_dist_idm.npy").astype(float)
I = np.take_along_axis(idm, dpos, 1)
CL = np.take_along_axis(clab, dpos, 1)
rep("IDM, top 50 by IDM", I, CL)
for sub in [(0,), (0, 1), (2, 3), (4, 5), (0, 1, 2, 3), (0, 1, 2, 3, 4, 5)]:
    rep("IDM min over copies " + "+".join(names[s] for s in sub), np.minimum(I, didm[:, :, list(sub)].min(2)), CL)
