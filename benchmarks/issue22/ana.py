import os

import numpy as np

from knn_core.data import load_mnist
from knn_core.vote import decide, tally

out = os.environ.get("ISSUE22_DIR", "/tmp/h4") + "/"
_ds = None


def trlabels(split):
    global _ds
    if _ds is None:
        _ds = load_mnist()
    return _ds.train_labels[:50000] if split == "val" else _ds.train_labels


def load(split, n=None):
    d = dict(
        cands=np.load(out + f"{split}_cands.npy"),
        l2=np.load(out + f"{split}_l2.npy"),
        y=np.load(out + f"{split}_labels.npy"),
    )
    try:
        d["idm"] = np.load(out + f"{split}_idm.npy")
    except FileNotFoundError:
        d["idm"] = np.load(out + f"{split}_idm_partial.npy")
    m = len(d["idm"]) if n is None else n
    for k in list(d):
        d[k] = d[k][:m]
    d["clab"] = trlabels(split)[d["cands"]]
    return d


def errors(dist, clab, y, ks=range(1, 11), weights=("uniform", "distance")):
    """dist (N, C) distances over candidate columns -> {(w, k): error %}."""
    o = np.argsort(dist, 1, kind="stable")[:, : max(ks)]
    dd = np.take_along_axis(dist, o, 1).astype(np.float64)
    cl = np.take_along_axis(clab, o, 1)
    res = {}
    for w in weights:
        for k in ks:
            win, _ = decide(tally(cl[:, :k], dd[:, :k], 10, w), cl[:, :k], "smallest")
            res[(w, k)] = 100 * np.mean(win != y)
    return res


def show(res, label=""):
    for w in ("uniform", "distance"):
        row = [res[(w, k)] for k in range(1, 11) if (w, k) in res]
        print(f"{label:30s} {w[:4]} " + " ".join(f"{e:.2f}" for e in row))
