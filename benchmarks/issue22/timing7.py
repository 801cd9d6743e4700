"""Scratch: CPU time per query of the parts of min(affine-copies IDM, P2D): IDM on 500, IDM on 6 x 50, P2D on 50."""

import time

import numpy as np

from knn_core.data import load_mnist
from knn_core.methods import idm_distances, p2dhmdm_distances
from knn_core.methods.recipes import Recipe
from knn_core.methods.search import prepare_images

ds = load_mnist()
r = Recipe(deskew=True, blur_sigma=0.5)
X = prepare_images(ds.train_images[:3000], r)
Q = prepare_images(ds.train_images[50000:50020], r)  # validation digits
t_idm500, t_copies, t_p2d = [], [], []
for q in Q:
    t = time.process_time()
    idm_distances(q, X[:500])
    t_idm500.append(time.process_time() - t)
    t = time.process_time()
    for j in range(6):
        idm_distances(q, X[500 + 50 * j : 550 + 50 * j])  # stand-ins for the 50 candidates' six copies
    t_copies.append(time.process_time() - t)
    t = time.process_time()
    p2dhmdm_distances(q, X[:50], 2, 1, penalty=7303.3)
    t_p2d.append(time.process_time() - t)
print(
    "CPU ms (median of 20): IDM 500 %.1f, IDM 6x50 %.1f, P2D 50 %.1f" % tuple(1000 * np.median(a) for a in (t_idm500, t_copies, t_p2d))
)
