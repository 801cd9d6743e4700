"""What every session shares, built once per server process.

:func:`get_dataset` (the bundled MNIST), :func:`get_subset` (the class-balanced
training subset of a size), :func:`get_fitted` (one fitted classifier per
(method, training size), shared by every session; at most FITTED_MAX of them,
least recently used dropped first, so no sequence of links can pin
gigabytes), :func:`classifier` (a cheap copy carrying this view's vote
parameters; the shared object is never mutated) and :func:`nearest` (one
digit's neighbours as the pages show them). :func:`start_server` (app.py, once
per process): the sessions are the parallelism, not BLAS or OpenCV threads,
and the default classifier is fitted before the first student draws.

These are plain process-wide objects, not Streamlit caches: a browser can
clear Streamlit's caches, and a fit must not be repeated because of that.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from knn_core import KNNClassifier, Method, load_mnist, stratified_subset
from knn_core.threads import limit_blas_threads

from .settings import Settings

SERVER_BLAS_THREADS = 1
FITTED_MAX = 3  # fitted classifiers kept: the default, and two more (a recipe's holds up to ~0.5 GB)
DEFAULT_SEARCH = Settings().search


@lru_cache(maxsize=1)
def start_server() -> None:
    """Once per server process (app.py): one BLAS and one OpenCV thread per script run, and the
    default classifier fitted in the background, so the first drawing is answered at once.

    One server process answers every session; the sessions are the parallelism.
    With its default two threads, OpenBLAS's second thread spins waiting for work
    after each small product: ~45 of a stroke's ~70 ms of server CPU, for no
    gain in latency (loadtest/README.md). Batch searches keep their own
    one-BLAS-thread-per-worker pool (knn_core.search).
    """
    import cv2

    limit_blas_threads(SERVER_BLAS_THREADS)
    cv2.setNumThreads(1)
    threading.Thread(target=get_fitted, args=(DEFAULT_SEARCH, Settings().size), name="knn-lab-warm-up",
                     daemon=True).start()


@lru_cache(maxsize=1)
def get_dataset():
    """The bundled MNIST, loaded once per server process."""
    return load_mnist()


@lru_cache(maxsize=16)
def get_subset(train_size: int) -> np.ndarray:
    """Indices into the training set of the class-balanced subset of this size (read-only)."""
    idx = stratified_subset(get_dataset().train_labels, train_size, random_state=0)
    idx.setflags(write=False)
    return idx


def _training_digits(train_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the training subset of this size (the full set without a copy)."""
    ds = get_dataset()
    idx = get_subset(train_size)
    X = ds.train_images if len(idx) == len(ds.train_images) else ds.train_images[idx]
    return X, ds.train_labels[idx]


class _FittedClassifiers:
    """At most `size` fitted classifiers, least recently used dropped first; one fit per key at a time
    (a second session asking for the same waits for it), different keys fit side by side."""

    def __init__(self, size: int):
        self.size = size
        self._done: OrderedDict = OrderedDict()
        self._fitting: dict = {}
        self._lock = threading.Lock()

    def get(self, search: Method, train_size: int) -> KNNClassifier:
        key = (search, train_size)
        while True:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    return self._done[key]
                waiting = self._fitting.get(key)
                if waiting is None:
                    waiting = self._fitting[key] = threading.Event()
                    break
            waiting.wait()
        try:
            clf = KNNClassifier(method=search, random_state=0).fit(*_training_digits(train_size))
            with self._lock:
                self._done[key] = clf
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
            return clf
        finally:
            with self._lock:
                self._fitting.pop(key).set()

    def keys(self) -> list:
        with self._lock:
            return list(self._done)


_FITTED = _FittedClassifiers(FITTED_MAX)


def get_fitted(search: Method, train_size: int) -> KNNClassifier:
    """A KNNClassifier of this method fitted on `train_size` digits, shared by every session.

    Never mutate it: use :func:`classifier` for per-view vote parameters.
    """
    return _FITTED.get(search, train_size)


def is_fitted(search: Method, train_size: int) -> bool:
    """Whether get_fitted would answer at once (for a spinner while it fits)."""
    return (search, train_size) in _FITTED.keys()


def classifier(settings: Settings) -> KNNClassifier:
    """The shared fitted classifier of this view's method, with its k, weights and tie rule.

    A shallow copy: it shares the fitted search (no refit, no extra memory),
    and set_params on it leaves the cached object untouched.
    """
    if not is_fitted(settings.search, settings.size):
        import streamlit as st

        with st.spinner("Preparing the training digits for this method (once per method and size)…"):
            fitted = get_fitted(settings.search, settings.size)
    else:
        fitted = get_fitted(settings.search, settings.size)
    return copy.copy(fitted).set_params(n_neighbors=settings.k, weights=settings.weights, tie_break=settings.tie)


@dataclass(frozen=True)
class Neighbours:
    """One digit's nearest training digits as a page shows them, whatever found them."""

    distances: np.ndarray
    indices: np.ndarray  # into the classifier's training digits (the votes)
    rows: np.ndarray  # into get_dataset().train_images
    labels: np.ndarray
    images: np.ndarray  # the training digits as they were compared (a method's: prepared, shifted)
    query: np.ndarray  # the digit as it was compared
    shifts: np.ndarray | None  # (n, 2) (dy, dx) of the matched shifted copies, or None
    distance_name: str  # e.g. "euclidean distance", "IDM distance"


def nearest(clf, digit: np.ndarray, settings: Settings, n: int | None = None) -> Neighbours:
    """The n (default k) nearest training digits of one 28x28 digit under this view's settings.

    With a method, the pictures are what the method compared: the query and the
    training digits deskewed / blurred, each neighbour at the shift that matched.
    """
    ds = get_dataset()
    n = settings.k if n is None else n
    nb = clf.kneighbors_detail(digit[None], n)
    dist, ind = nb.distances[0], nb.indices[0]
    shifts = None if nb.shifts is None or not np.any(nb.shifts[0]) else nb.shifts[0]  # no "moved by (0, 0)"
    moves = shifts if shifts is not None else np.zeros((len(ind), 2), int)
    images = np.stack([clf.training_image(int(i), s) for i, s in zip(ind, moves)])
    query = clf.transform(digit[None])[0]
    rows = get_subset(settings.size)[ind]
    return Neighbours(dist, ind, rows, ds.train_labels[rows], images, query, shifts, clf.distance_name)
