"""A 2-D map of (a sample of) the training set, and where a new digit lands on it.

The map is a t-SNE embedding of a class-balanced sample of the training
digits (5,000 by default: t-SNE of all 60,000 takes far too long on two
cores), computed once by ``scripts/make_embedding.py`` and shipped in
``assets/embedding/`` (indices into the training set and 2-D coordinates,
about 60 kB).  :func:`load_map` reads it, and checks that it belongs to the
training set in use (a fingerprint of the sampled digits); when the shipped
file is missing or belongs to other data, it computes a PCA map of the same
kind of sample instead (a second, not minutes), cached on disk with
:mod:`knn_core.cache`.

t-SNE has no ``transform`` for new points, so a drawn digit is *placed*:
:func:`place` puts it at the distance-weighted mean (weights 1/d) of the map
positions of its k nearest digits **among the sampled ones** (not among the
whole training set, most of which is not on the map).  A digit that sits in
a tight cluster of one class lands inside that cluster; an ambiguous one
lands between clusters, which is the point of showing it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache
from .data import bundled_path, stratified_subset
from .errors import DataError, ParameterError

__all__ = ["DigitMap", "METHODS", "SHIPPED", "compute_map", "load_map", "place", "read_map", "write_map"]

METHODS = ("tsne", "pca")
SAMPLE_SIZE = 5000
SHIPPED = bundled_path("embedding", "tsne_5000.npz")
_FORMAT = "knn-digit-lab-map-1"


@dataclass(frozen=True)
class DigitMap:
    """A 2-D map of sampled training digits.

    indices : (n,) int, rows of the training set on the map (sorted)
    coords : (n, 2) float32, their positions (centred, spread about +-1)
    labels : (n,) uint8, their labels (a copy, to check against the data)
    method : "tsne" or "pca"
    digits_fingerprint : hash of the sampled images and labels
    """

    indices: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    method: str
    digits_fingerprint: str
    note: str = ""  # why this map is not the shipped one, for the page to say

    def __len__(self) -> int:
        return len(self.indices)


def _digits_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(images, dtype=np.uint8), np.ascontiguousarray(labels, dtype=np.uint8)):
        h.update(str(a.shape).encode())
        h.update(a.data.cast("B"))
    return h.hexdigest()[:20]


def _normalise(coords: np.ndarray) -> np.ndarray:
    """Centre at 0 and scale so the larger spread (std) is 0.5: maps look alike whatever the method."""
    c = coords - coords.mean(axis=0)
    s = c.std(axis=0).max()
    return (c / (2 * s if s > 0 else 1.0)).astype(np.float32)


def compute_map(train_images, train_labels, *, n: int = SAMPLE_SIZE, method: str = "tsne",
                random_state: int = 0, perplexity: float = 30.0) -> DigitMap:
    """Embed a class-balanced sample of n training digits in 2-D.

    method="tsne": PCA to 50 dimensions, then scikit-learn's t-SNE
    (Barnes-Hut, PCA initialisation, fixed seed); minutes on two cores.
    method="pca": the first two principal components; about a second.
    """
    if method not in METHODS:
        raise ParameterError(f"unknown map method {method!r}; choose one of {', '.join(METHODS)}")
    train_images = np.asarray(train_images)
    train_labels = np.asarray(train_labels)
    idx = stratified_subset(train_labels, n, random_state=random_state)
    X = train_images[idx].reshape(len(idx), -1).astype(np.float32) / 255.0
    from sklearn.decomposition import PCA

    if method == "pca":
        coords = PCA(2, random_state=random_state).fit_transform(X)
    else:
        from sklearn.manifold import TSNE

        Z = PCA(min(50, X.shape[1], len(X)), random_state=random_state).fit_transform(X)
        coords = TSNE(2, perplexity=min(perplexity, (len(X) - 1) / 3), init="pca",
                      random_state=random_state, n_jobs=2).fit_transform(Z)
    labels = train_labels[idx].astype(np.uint8)
    return DigitMap(indices=idx.astype(np.int64), coords=_normalise(coords), labels=labels, method=method,
                    digits_fingerprint=_digits_fingerprint(train_images[idx], labels))


def write_map(m: DigitMap, path) -> None:
    """Save as .npz (arrays only), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, format=np.array(_FORMAT), indices=m.indices.astype(np.int32),
                        coords=m.coords.astype(np.float32), labels=m.labels.astype(np.uint8),
                        method=np.array(m.method), digits_fingerprint=np.array(m.digits_fingerprint))
    tmp.replace(path)


def read_map(path) -> DigitMap:
    """Read a map written by write_map; ValueError (or OSError) if it is not one."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataError(f"{path} is not a digit map ({type(exc).__name__})") from exc
    if str(a.get("format", "")) != _FORMAT:
        raise DataError(f"{path} is not a digit map (format {a.get('format')!r})")
    idx, coords, labels = a["indices"].astype(np.int64), a["coords"], a["labels"]
    if idx.ndim != 1 or coords.shape != (len(idx), 2) or labels.shape != idx.shape \
            or not np.isfinite(coords).all():
        raise DataError(f"{path} holds arrays of inconsistent shapes")
    return DigitMap(indices=idx, coords=coords.astype(np.float32), labels=labels.astype(np.uint8),
                    method=str(a["method"]), digits_fingerprint=str(a["digits_fingerprint"]))


def _matches(m: DigitMap, train_images, train_labels) -> bool:
    if len(m) == 0 or m.indices.min() < 0 or m.indices.max() >= len(train_labels):
        return False
    return _digits_fingerprint(train_images[m.indices], train_labels[m.indices]) == m.digits_fingerprint


def load_map(train_images, train_labels, *, shipped=None, n: int = SAMPLE_SIZE) -> DigitMap:
    """The shipped t-SNE map if it belongs to this training set; otherwise a PCA map, cached on disk.

    shipped: the map file (default: SHIPPED, looked up at call time).
    Never raises for a missing, corrupt or foreign shipped file: the
    returned map's ``note`` says what happened.
    """
    shipped = SHIPPED if shipped is None else shipped
    train_images = np.asarray(train_images)
    train_labels = np.asarray(train_labels)
    try:
        m = read_map(shipped)
        if _matches(m, train_images, train_labels):
            return m
        why = f"the shipped map {Path(shipped).name} belongs to other training data"
    except FileNotFoundError:
        why = f"the shipped map {Path(shipped).name} is missing"
    except (OSError, ValueError) as exc:
        why = f"the shipped map {Path(shipped).name} is unreadable ({exc})"

    n = min(n, len(train_labels))

    def compute() -> dict:
        p = compute_map(train_images, train_labels, n=n, method="pca")
        return {"indices": p.indices, "coords": p.coords}

    parts = {"train": cache.fingerprint(train_images, train_labels), "n": n, "method": "pca"}
    got = cache.cached_arrays("map", parts, compute)
    idx = got["indices"].astype(np.int64)
    labels = train_labels[idx].astype(np.uint8)
    return DigitMap(indices=idx, coords=got["coords"].astype(np.float32), labels=labels, method="pca",
                    digits_fingerprint=_digits_fingerprint(train_images[idx], labels),
                    note=f"{why}: showing a PCA map instead (python scripts/make_embedding.py makes the t-SNE one)")


def place(m: DigitMap, distances, positions) -> np.ndarray:
    """Where a query lands: the 1/d-weighted mean of the map positions of its nearest sampled digits.

    distances : (k,) distances to those digits; positions : (k,) their rows in ``m``.
    A digit at distance 0 takes that digit's position exactly.
    """
    d = np.asarray(distances, dtype=np.float64)
    pos = np.asarray(positions)
    if d.ndim != 1 or d.shape != pos.shape or len(d) == 0:
        raise ParameterError("place needs one distance per neighbour, at least one")
    zero = d == 0
    w = zero.astype(np.float64) if zero.any() else 1.0 / d
    return (w[:, None] * m.coords[pos]).sum(axis=0) / w.sum()
