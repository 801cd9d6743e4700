"""Neighbour lists of a split, for any method, cached on disk.

One search per (data, split, training size, method) with the largest k
anyone asks for (K_MAX) serves every analysis: the predictions for any k,
weighting and tie rule are then a cheap vote. `neighbor_lists` is the one
way to get them (`is_cached` says whether it would search, `estimate_seconds`
how long that would take); `find_neighbors` does the same for arrays that
are not a Dataset.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from . import cache
from .data import stratified_subset
from .errors import ParameterError
from .methods import Method
from .vote import decide, neighbor_weights, tally

K_MAX = 50
SPLITS = ("test", "val", "loo")
# Bump when a change to the searches changes what a cached neighbour list would hold.
LISTS_VERSION = "2"

Progress = Optional[Callable[[int, int], None]]


@dataclass(frozen=True)
class NeighborLists:
    """Each query's K nearest training digits, ordered by (distance, index), and what they were searched on."""

    distances: np.ndarray  # (m, K) float64, the method's distance
    indices: np.ndarray  # (m, K) int64, into the training digits searched (train_labels, train_rows)
    train_labels: np.ndarray  # (n,)
    query_labels: np.ndarray  # (m,)
    train_rows: np.ndarray  # (n,) the dataset's training row of each training digit searched
    shifts: Optional[np.ndarray] = None  # (m, K, 2) int8, (dy, dx) of the matched shifted copy; None: no shifts
    method: Optional[Method] = None
    seconds: float = float("nan")  # wall time of the search when it was computed (not when read)
    cpu_seconds: float = float("nan")  # CPU time of the process over that search (all threads)

    @property
    def k_max(self) -> int:
        return self.indices.shape[1]

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.train_labels)

    def neighbor_labels(self, k: int) -> np.ndarray:
        return self.train_labels[self.indices[:, :k]]

    def neighbor_rows(self, k: int) -> np.ndarray:
        """The dataset's training rows of each query's k nearest (for pictures)."""
        return self.train_rows[self.indices[:, :k]]

    def vote(self, k: int, weights: str = "uniform", tie_break: str = "smallest", random_state=0):
        """(scores (m, n_classes), predicted labels (m,), tied mask) at this k."""
        if not 1 <= k <= self.k_max:
            raise ParameterError(f"k={k} is outside 1..{self.k_max}, the neighbours searched")
        classes = self.classes
        cls = np.searchsorted(classes, self.neighbor_labels(k))
        scores = tally(cls, self.distances[:, :k], len(classes), weights)
        winners, tied = decide(scores, cls, tie_break, random_state)
        return scores, classes[winners], tied

    def predict(self, k: int, weights: str = "uniform", tie_break: str = "smallest", random_state=0) -> np.ndarray:
        return self.vote(k, weights, tie_break, random_state)[1]

    def accuracy(self, k: int, **vote_options) -> float:
        return float(np.mean(self.predict(k, **vote_options) == self.query_labels))

    def sweep(self, ks: Sequence[int], weights: str = "uniform", tie_break: str = "smallest",
              random_state=0) -> np.ndarray:
        """Accuracy at each k, all from this one search, in one pass over the neighbours.

        The votes are added up one neighbour rank at a time, in the order
        tally() adds them, so the scores (and so the winners) are those of
        vote(k); 10-40x faster for 50 values of k.
        """
        ks = [int(k) for k in ks]
        if not ks:
            return np.empty(0)
        if min(ks) < 1 or max(ks) > self.k_max:
            raise ParameterError(f"k values must be within 1..{self.k_max}, the neighbours searched; got {ks}")
        K = max(ks)
        classes = self.classes
        cls = np.searchsorted(classes, self.neighbor_labels(K))
        w = neighbor_weights(self.distances[:, :K], weights)  # zeros come first, so as for any k
        rows = np.arange(len(cls))
        scores = np.zeros((len(classes), len(cls))).T  # column-major: the per-row max and sum are fast
        acc = {}
        for k in range(1, K + 1):
            scores[rows, cls[:, k - 1]] += w[:, k - 1]  # one neighbour per row: no repeated index
            if k in ks and k not in acc:
                winners, _ = decide(scores, cls[:, :k], tie_break, random_state)
                acc[k] = float(np.mean(classes[winners] == self.query_labels))
        return np.array([acc[k] for k in ks])


class Split(NamedTuple):
    """What a split searches: training digits (with their dataset rows) and queries (None: leave-one-out)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    query_images: Optional[np.ndarray]
    query_labels: Optional[np.ndarray]
    train_rows: np.ndarray

    @property
    def n_queries(self) -> int:
        return len(self.train_labels) if self.query_images is None else len(self.query_images)


def split_data(ds, split: str = "test", train_size: Optional[int] = None) -> Split:
    """The digits a split of a Dataset searches.

    test: the test digits against the training set; val: the last 10,000
    training digits against the ones before them (for choosing k honestly);
    loo: every training digit against the others. train_size keeps a
    class-balanced subset of the training digits (stratified_subset).
    """
    rows = np.arange(len(ds.train_labels))
    if split == "test":
        X, y, Q, qy = ds.train_images, ds.train_labels, ds.test_images, ds.test_labels
    elif split == "val":
        X, y, Q, qy = ds.fit_images, ds.fit_labels, ds.val_images, ds.val_labels
        rows = rows[: len(X)]
    elif split == "loo":
        X, y, Q, qy = ds.train_images, ds.train_labels, None, None
    else:
        raise ParameterError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if train_size is not None and train_size < len(X):
        keep = stratified_subset(y, train_size)
        X, y, rows = X[keep], y[keep], rows[keep]
    return Split(X, y, Q, qy, rows)


def neighbor_lists(ds, method="euclidean", split: str = "test", *, train_size: Optional[int] = None,
                   k_max: int = K_MAX, progress: Progress = None, use_cache: bool = True,
                   n_jobs: int = 2) -> NeighborLists:
    """The neighbour lists of a split of a Dataset under a method, cached on disk (knn_core.cache).

    method: anything `Method.parse` reads ("euclidean", "idm", a Recipe...).
    Keyed by the data's fingerprint, the split, the training size, the method
    and k_max, so the command line and the pages share one entry.
    """
    method = Method.parse(method)
    part = split_data(ds, split, train_size)
    k_max, key = _cache_entry(ds, method, split, part, k_max)
    return _search(method, part, k_max, key, progress=progress, use_cache=use_cache, n_jobs=n_jobs)


def is_cached(ds, method="euclidean", split: str = "test", *, train_size: Optional[int] = None,
              k_max: int = K_MAX) -> bool:
    """Whether neighbor_lists(ds, method, split, ...) would come from the disk cache (searches nothing)."""
    method = Method.parse(method)
    k_max, key = _cache_entry(ds, method, split, split_data(ds, split, train_size), k_max)
    return cache.is_cached("neighbors", key)


def estimate_seconds(ds, method="euclidean", split: str = "test", train_size: Optional[int] = None) -> float:
    """Rough wall time of an uncached neighbor_lists search (for a warning before it starts)."""
    part = split_data(ds, split, train_size)
    return Method.parse(method).estimate_seconds(len(part.train_labels), part.n_queries)


def find_neighbors(train_images, train_labels, query_images=None, query_labels=None, *, method="euclidean",
                   k_max: int = K_MAX, progress: Progress = None, use_cache: bool = True,
                   n_jobs: int = 2) -> NeighborLists:
    """neighbor_lists for arrays that are not a Dataset; no queries: leave-one-out on the training digits."""
    method = Method.parse(method)
    y = np.asarray(train_labels)
    part = Split(np.asarray(train_images), y, None if query_images is None else np.asarray(query_images),
                 None if query_labels is None else np.asarray(query_labels), np.arange(len(y)))
    k_max = _clamp_k_max(method, part, k_max)
    key = dict(train=cache.fingerprint(part.train_images, y), method=method.cache_id(), k_max=k_max,
               queries="loo" if part.query_images is None else cache.fingerprint(part.query_images),
               version=LISTS_VERSION)
    return _search(method, part, k_max, key, progress=progress, use_cache=use_cache, n_jobs=n_jobs)


def _clamp_k_max(method: Method, part: Split, k_max: int) -> int:
    """k_max, at most what the split holds (one digit fewer for leave-one-out, times the shifted copies)."""
    loo = part.query_images is None
    return min(int(k_max), (len(part.train_labels) - loo) * method.copies)


def _cache_entry(ds, method: Method, split: str, part: Split, k_max: int) -> tuple[int, dict]:
    """(k_max clamped to the split, the cache key's parts) of a Dataset split's lists."""
    k_max = _clamp_k_max(method, part, k_max)
    key = dict(data=ds.fingerprint, split=split, method=method.cache_id(), k_max=k_max, version=LISTS_VERSION)
    if len(part.train_labels) < len(split_data(ds, split).train_labels):
        key["train_size"] = len(part.train_labels)
    return k_max, key


def _search(method: Method, part: Split, k_max: int, key: dict, *, progress: Progress, use_cache: bool,
            n_jobs: int) -> NeighborLists:
    def compute():
        t0, c0 = time.perf_counter(), time.process_time()
        search = method.make_search(n_jobs).fit(part.train_images)
        if part.query_images is None:
            nb = search.kneighbors_training(k_max, progress=progress)
        else:
            nb = search.kneighbors(part.query_images, k_max, progress=progress)
        out = {"distances": nb.distances, "indices": nb.indices,
               "seconds": np.float64(time.perf_counter() - t0), "cpu_seconds": np.float64(time.process_time() - c0)}
        if nb.shifts is not None:
            out["shifts"] = nb.shifts
        return out

    got = cache.cached_arrays("neighbors", key, compute, use_cache=use_cache)
    y = np.asarray(part.train_labels)
    return NeighborLists(
        got["distances"], got["indices"], y, y if part.query_labels is None else np.asarray(part.query_labels),
        train_rows=part.train_rows, shifts=got.get("shifts"), method=method,
        seconds=float(got["seconds"]), cpu_seconds=float(got["cpu_seconds"]),
    )
