import numpy as np
from ana import load, out

from knn_core.vote import tally

d = load("val")
y = d["y"]
pos = np.load(out + "val_td_pos.npy").astype(np.int64)
td = np.load(out + "val_td.npy").astype(np.float64)
I = np.take_along_axis(d["idm"].astype(float), pos, 1)
CL = np.take_along_axis(d["clab"], pos, 1)
L2 = np.take_along_axis(d["l2"].astype(float), pos, 1)


def scores(dist, k):
    o = np.argsort(dist, 1, kind="stable")[:, :k]
    s = tally(np.take_along_axis(CL, o, 1), np.take_along_axis(dist, o, 1), 10, "distance")
    return s / s.sum(1, keepdims=True)


for j, pen in [(0, 0.0), (3, 0.1)]:
    for a in (0.25, 0.5, 1.0):
        row = []
        for k in range(2, 10):
            s = scores(I, k) + a * scores(td[:, :, j], k)
            row.append(100 * np.mean(s.argmax(1) != y))
        print(f"vote IDM + {a} TD(pen {pen})", " ".join(f"{e:.2f}" for e in row), f"mean {np.mean(row):.3f}")
# rank-sum of the two distances
for j, pen in [(0, 0.0)]:
    rI = np.argsort(np.argsort(I, 1), 1)
    rT = np.argsort(np.argsort(td[:, :, j], 1), 1)
    for a in (0.5, 1.0):
        r = rI + a * rT + 1.0
        row = []
        for k in range(2, 10):
            o = np.argsort(r, 1, kind="stable")[:, :k]
            s = tally(np.take_along_axis(CL, o, 1), np.take_along_axis(r, o, 1), 10, "distance")
            row.append(100 * np.mean(s.argmax(1) != y))
        print(f"rank IDM + {a} rank TD", " ".join(f"{e:.2f}" for e in row), f"mean {np.mean(row):.3f}")
