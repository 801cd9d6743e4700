"""What every session shares, built once per server process (st.cache_resource).

:func:`get_dataset` (the bundled MNIST), :func:`get_subset` (the class-balanced
training subset of a size), :func:`get_fitted` / :func:`get_fitted_method` (one
fitted classifier per (metric or method, training size), shared by every
session), :func:`classifier` (a cheap copy carrying this view's vote
parameters; the shared object is never mutated) and :func:`nearest` (one
digit's neighbours as the pages show them).  :func:`one_blas_thread_per_run`
(app.py, once per process): the sessions are the parallelism, not BLAS threads.

The calls into knn_core's search API are :func:`get_fitted`,
:func:`get_fitted_method`, :func:`classifier` and :func:`nearest` (and, for the
analysis pages' lists, ui/jobs.py).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import streamlit as st
from threadpoolctl import threadpool_limits

from knn_core import KNNClassifier, load_mnist
from knn_core.evaluate import stratified_subset
from knn_core.methods import PRESETS, MethodClassifier

from .settings import CLASSIC, MINKOWSKI_P, Settings

SERVER_BLAS_THREADS = 1


@st.cache_resource(show_spinner=False)
def one_blas_thread_per_run() -> None:
    """Once per server process (app.py): numpy's BLAS runs one thread per script run.

    One server process answers every session; the sessions are the parallelism.
    With its default two threads, OpenBLAS's second thread spins waiting for work
    after each small product: ~45 of a stroke's ~70 ms of server CPU, for no
    gain in latency (loadtest/README.md). Batch searches keep their own
    one-BLAS-thread-per-worker pool (knn_core.search).
    """
    threadpool_limits(limits=SERVER_BLAS_THREADS, user_api="blas")


@st.cache_resource(show_spinner="Loading MNIST…")
def get_dataset():
    """The bundled MNIST, loaded once per server process."""
    return load_mnist()


@st.cache_resource(show_spinner=False)
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


@st.cache_resource(show_spinner="Fitting the classifier (once per distance and size)…")
def get_fitted(metric: str, train_size: int) -> KNNClassifier:
    """A KNNClassifier fitted on `train_size` digits with `metric`, shared by every session.

    Never mutate it: use :func:`classifier` for per-view vote parameters.
    """
    return KNNClassifier(metric=metric, p=MINKOWSKI_P, random_state=0).fit(*_training_digits(train_size))


@st.cache_resource(show_spinner="Preparing the training digits for this method (once per method and size)…")
def get_fitted_method(method: str, train_size: int) -> MethodClassifier:
    """A MethodClassifier with preset `method` fitted on `train_size` digits, shared by every session."""
    return MethodClassifier(PRESETS[method].recipe, random_state=0).fit(*_training_digits(train_size))


def classifier(settings: Settings) -> KNNClassifier | MethodClassifier:
    """The shared fitted classifier of this view's method (or metric), with its k, weights and tie rule.

    A shallow copy: it shares the fitted search (no refit, no extra memory),
    and set_params on it leaves the cached object untouched.
    """
    if settings.method != CLASSIC:
        fitted = get_fitted_method(settings.method, settings.size)
    else:
        fitted = get_fitted(settings.metric, settings.size)
    return copy.copy(fitted).set_params(
        n_neighbors=settings.k, weights=settings.weights, tie_break=settings.tie
    )


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
    if isinstance(clf, MethodClassifier):
        nb = clf.kneighbors_detail(digit[None], n)
        dist, ind, shifts = nb.distances[0], nb.indices[0], nb.shifts[0]
        images = np.stack([clf.training_image(int(i), s) for i, s in zip(ind, shifts)])
        query = clf.transform(digit[None])[0]
        name = clf.distance_name
    else:
        d, i = clf.kneighbors(digit[None], n)
        dist, ind, shifts, query = d[0], i[0], None, digit
        name = f"{settings.distance_label} distance"
    rows = get_subset(settings.size)[ind]
    if shifts is None:
        images = ds.train_images[rows]
    elif not np.any(shifts):
        shifts = None  # a method without shifts: no need to say "shifted by (0, 0)"
    return Neighbours(dist, ind, rows, ds.train_labels[rows], images, query, shifts, name)
