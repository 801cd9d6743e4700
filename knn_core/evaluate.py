"""Accuracy, confusion, per-class report, k sweeps, leave-one-out and size curves.

Everything here starts from one neighbour search per (training set, queries,
metric) with the largest k anyone asks for (K_MAX), cached on disk; the
predictions for any k, weighting and tie rule are then a cheap vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from . import cache
from .classifier import decide, tally
from .search import ExactSearch, as_rows

K_MAX = 50
DEFAULT_KS = (1, 3, 5, 9, 15, 25)
SPLITS = ("test", "val", "loo")

Progress = Optional[Callable[[int, int], None]]


@dataclass(frozen=True)
class NeighborLists:
    """Each query's K nearest training digits, ordered by (distance, index)."""

    distances: np.ndarray  # (m, K) float64
    indices: np.ndarray  # (m, K) int64, into the training set searched
    train_labels: np.ndarray  # (n,)
    query_labels: np.ndarray  # (m,)

    @property
    def k_max(self) -> int:
        return self.indices.shape[1]

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.train_labels)

    def neighbor_labels(self, k: int) -> np.ndarray:
        return self.train_labels[self.indices[:, :k]]

    def vote(self, k: int, weights: str = "uniform", tie_break: str = "smallest", random_state=0):
        """(scores (m, n_classes), predicted labels (m,), tied mask) at this k."""
        if not 1 <= k <= self.k_max:
            raise ValueError(f"k={k} is outside 1..{self.k_max}, the neighbours searched")
        classes = self.classes
        cls = np.searchsorted(classes, self.neighbor_labels(k))
        scores = tally(cls, self.distances[:, :k], len(classes), weights)
        winners, tied = decide(scores, cls, tie_break, random_state)
        return scores, classes[winners], tied

    def predict(self, k: int, weights: str = "uniform", tie_break: str = "smallest", random_state=0) -> np.ndarray:
        return self.vote(k, weights, tie_break, random_state)[1]

    def accuracy(self, k: int, **vote_options) -> float:
        return float(np.mean(self.predict(k, **vote_options) == self.query_labels))

    def sweep(self, ks: Sequence[int], **vote_options) -> np.ndarray:
        """Accuracy at each k, all from this one search."""
        return accuracy_by_k(self, ks, **vote_options)


def find_neighbors(
    train_images,
    train_labels,
    query_images=None,
    query_labels=None,
    *,
    metric: str = "euclidean",
    p: float = 3,
    k_max: int = K_MAX,
    progress: Progress = None,
    use_cache: bool = True,
) -> NeighborLists:
    """Neighbour lists of the queries; with no queries, leave-one-out on the training set."""
    X = as_rows(train_images, "training images")
    y = np.asarray(train_labels)
    loo = query_images is None
    Q = X if loo else as_rows(query_images, "query images")
    qy = y if loo else np.asarray(query_labels)
    k_max = min(k_max, len(X) - loo)
    parts = dict(
        train=cache.fingerprint(X, y),
        queries="loo" if loo else cache.fingerprint(Q),
        metric=metric,
        p=p if metric == "minkowski" else None,
        k_max=k_max,
    )

    def compute():
        search = ExactSearch(metric, p=p).fit(X)
        exclude = np.arange(len(X)) if loo else None
        d, i = search.kneighbors(Q, k_max, exclude=exclude, progress=progress)
        return {"distances": d, "indices": i}

    got = cache.cached_arrays("neighbors", parts, compute, use_cache=use_cache)
    return NeighborLists(got["distances"], got["indices"], y, qy)


def split_neighbors(ds, split: str = "test", *, metric="euclidean", p=3, train_size=None, **kw) -> NeighborLists:
    """Neighbour lists for a split of a Dataset.

    test: test digits against the training set; val: the validation digits
    against the training digits before them (for choosing k honestly);
    loo: each training digit against all the others.
    """
    X, y, Q, qy, _ = split_data(ds, split, train_size)
    return find_neighbors(X, y, Q, qy, metric=metric, p=p, **kw)


@dataclass(frozen=True)
class Report:
    """Accuracy, confusion matrix and per-class precision / recall / F1."""

    labels: np.ndarray
    accuracy: float
    confusion: np.ndarray  # rows: true, columns: predicted
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    def table(self) -> str:
        lines = [f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}"]
        for i, c in enumerate(self.labels):
            lines.append(
                f"{c:>5} {self.precision[i]:9.4f} {self.recall[i]:7.4f} {self.f1[i]:7.4f} {self.support[i]:7d}"
            )
        return "\n".join(lines)

    def confusion_table(self) -> str:
        head = "true\\pred " + " ".join(f"{c:>5}" for c in self.labels)
        rows = [f"{c:>9} " + " ".join(f"{v:5d}" for v in self.confusion[i]) for i, c in enumerate(self.labels)]
        return "\n".join([head, *rows])


def report(y_true, y_pred, labels=None) -> Report:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.unique(np.concatenate([np.unique(y_true), np.unique(y_pred)])) if labels is None else np.asarray(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return Report(
        labels=labels,
        accuracy=float(accuracy_score(y_true, y_pred)),
        confusion=confusion_matrix(y_true, y_pred, labels=labels),
        precision=p,
        recall=r,
        f1=f,
        support=s,
    )


def misclassified(lists: NeighborLists, k: int, **vote_options) -> np.ndarray:
    """Indices of wrongly classified queries, the most confidently wrong first."""
    scores, pred, _ = lists.vote(k, **vote_options)
    wrong = np.flatnonzero(pred != lists.query_labels)
    conf = scores.max(axis=1)[wrong] / scores[wrong].sum(axis=1)
    return wrong[np.lexsort((wrong, -conf))]


def suspicious_labels(lists: NeighborLists, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Digits whose label most of their k neighbours disagree with, most disagreed first.

    Use leave-one-out lists for training digits (a digit must not vote for
    itself). Returns (indices, disagreement fractions) for those above 1/2.
    """
    disagree = np.mean(lists.neighbor_labels(k) != lists.query_labels[:, None], axis=1)
    mean_dist = lists.distances[:, :k].mean(axis=1)
    order = np.lexsort((mean_dist, -disagree))
    order = order[disagree[order] > 0.5]
    return order, disagree[order]


def choose_k(val_lists: NeighborLists, ks: Sequence[int], **vote_options) -> int:
    """The k with the best validation accuracy (the smallest such k on ties)."""
    acc = val_lists.sweep(ks, **vote_options)
    return int(np.asarray(ks)[int(np.argmax(acc))])


def size_curve(
    ds,
    sizes: Sequence[int],
    ks: Sequence[int],
    *,
    metric="euclidean",
    p=3,
    progress: Progress = None,
    use_cache: bool = True,
    **vote_options,
) -> np.ndarray:
    """Test accuracy (len(sizes), len(ks)) for stratified training subsets of each size."""
    out = np.empty((len(sizes), len(ks)))
    for row, n in enumerate(sizes):
        lists = split_neighbors(
            ds, "test", metric=metric, p=p, train_size=n, k_max=max(ks), use_cache=use_cache
        )
        out[row] = [lists.accuracy(k, **vote_options) if k <= lists.k_max else np.nan for k in ks]
        if progress is not None:
            progress(row + 1, len(sizes))
    return out


def stratified_subset(labels, n: int, random_state: int = 0) -> np.ndarray:
    """Sorted indices of n items with the class proportions of `labels` (all of them when n >= len)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"a training subset needs at least 1 digit; got {n}")
    from sklearn.model_selection import train_test_split

    if n < len(np.unique(labels)):
        rng = np.random.default_rng(random_state)
        return np.sort(rng.choice(len(labels), n, replace=False))
    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=random_state)
    return np.sort(idx)


# ---------------------------------------------------------------- for the analysis pages and the CLI

# Cost of a first (uncached) search on this project's 2-core machines: (seconds per query,
# distance pairs per second), fitted to measured runs with 50 neighbours: test set vs 60,000
# euclidean ~5 s, leave-one-out ~30 s, 10,000 queries vs 1,000 digits ~2.5 s (selecting 50
# neighbours has a floor per query), cosine ~3x euclidean, manhattan minutes and minkowski p=3
# ~50 min on the full set (scikit-learn's brute force). Rough: it is for a warning, not a promise.
SEARCH_COST = {"euclidean": (2e-4, 2e8), "cosine": (8e-4, 6e7), "manhattan": (0.0, 3e6), "minkowski": (0.0, 2e5)}

def split_data(ds, split: str, train_size=None):
    """(training images, labels, queries or None, query labels or None, dataset rows of the training
    images) of a split, as split_neighbors and methods.recipe_neighbors search them.

    test: the test digits against the training set; val: the last 10,000 training digits
    against the ones before them; loo: every training digit against the others. train_size
    keeps a class-balanced subset of the training digits."""
    rows = np.arange(len(ds.train_labels))
    if split == "test":
        X, y, Q, qy = ds.train_images, ds.train_labels, ds.test_images, ds.test_labels
    elif split == "val":
        X, y, Q, qy = ds.fit_images, ds.fit_labels, ds.val_images, ds.val_labels
        rows = rows[: len(X)]
    elif split == "loo":
        X, y, Q, qy = ds.train_images, ds.train_labels, None, None
    else:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if train_size is not None and train_size < len(X):
        keep = stratified_subset(y, train_size)
        X, y, rows = X[keep], y[keep], rows[keep]
    return X, y, Q, qy, rows


def train_rows(ds, split: str = "test", train_size=None) -> np.ndarray:
    """Rows of ds.train_images that the neighbour indices of split_neighbors(ds, split,
    train_size=...) point to (a leave-one-out query i is training row train_rows(...)[i])."""
    return split_data(ds, split, train_size)[4]


def estimate_search_seconds(ds, split: str, metric: str = "euclidean", train_size=None) -> float:
    """Rough wall time of an uncached split_neighbors search (for a warning before it starts)."""
    X, _, Q, _, _ = split_data(ds, split, train_size)
    n_queries = len(X) if Q is None else len(Q)
    per_query, pairs_per_second = SEARCH_COST[metric]
    return 0.5 + n_queries * per_query + len(X) * n_queries / pairs_per_second


def neighbors_cached(ds, split: str, *, metric="euclidean", p=3, train_size=None, k_max=K_MAX) -> bool:
    """Whether split_neighbors(ds, split, ...) would come from the disk cache (searches nothing)."""
    X, y, Q, _, _ = split_data(ds, split, train_size)
    X = as_rows(X, "training images")
    loo = Q is None
    parts = dict(
        train=cache.fingerprint(X, np.asarray(y)),
        queries="loo" if loo else cache.fingerprint(as_rows(Q, "query images")),
        metric=metric,
        p=p if metric == "minkowski" else None,
        k_max=min(k_max, len(X) - loo),
    )  # as find_neighbors keys its entries
    return (cache.cache_dir() / f"neighbors-{cache.cache_key(name='neighbors', **parts)}.npz").exists()


def accuracy_by_k(lists: NeighborLists, ks: Sequence[int], weights: str = "uniform",
                  tie_break: str = "smallest", random_state=0) -> np.ndarray:
    """The same numbers as lists.sweep(ks, ...), in one pass over the neighbours.

    The votes are added up one neighbour rank at a time, in the order tally()
    adds them, so the scores (and so the winners) are identical; 10-40x faster
    for 50 values of k.
    """
    ks = [int(k) for k in ks]
    if not ks:
        return np.empty(0)
    if min(ks) < 1 or max(ks) > lists.k_max:
        raise ValueError(f"k values must be within 1..{lists.k_max}, the neighbours searched; got {ks}")
    from .classifier import neighbor_weights

    K = max(ks)
    classes = lists.classes
    cls = np.searchsorted(classes, lists.neighbor_labels(K))
    w = neighbor_weights(lists.distances[:, :K], weights)  # zeros come first, so as for any k
    m = len(cls)
    rows = np.arange(m)
    scores = np.zeros((len(classes), m)).T  # column-major: the per-row max and sum are fast
    acc = {}
    for k in range(1, K + 1):
        scores[rows, cls[:, k - 1]] += w[:, k - 1]  # one neighbour per row: no repeated index
        if k in ks and k not in acc:
            winners, _ = decide(scores, cls[:, :k], tie_break, random_state)
            acc[k] = float(np.mean(classes[winners] == lists.query_labels))
    return np.array([acc[k] for k in ks])


def wrong_votes(lists: NeighborLists, k: int, **vote_options) -> dict:
    """The misclassified queries, most confidently wrong first (the order of misclassified()):
    query index, true label, predicted label and confidence (the winner's share of the vote)."""
    scores, pred, _ = lists.vote(k, **vote_options)
    idx = misclassified(lists, k, **vote_options)
    share = scores[idx].max(axis=1) / scores[idx].sum(axis=1)
    return {"index": idx, "true": lists.query_labels[idx], "predicted": pred[idx], "confidence": share}


def label_doubts(lists: NeighborLists, k: int, **vote_options) -> dict:
    """suspicious_labels() with what the neighbours' vote says instead: query index, its label,
    the label kNN gives it from its neighbours, and the fraction of the k neighbours that disagree."""
    idx, frac = suspicious_labels(lists, k)
    pred = lists.predict(k, **vote_options)
    return {"index": idx, "label": lists.query_labels[idx], "predicted": pred[idx], "disagreement": frac}


def recipe_neighbors(ds, recipe="plain", split: str = "test", **kw):
    """Neighbour lists of a knn_core.methods recipe or preset name (deskew, blur, L3, shifts, IDM)
    for a split, cached on disk; indices into the split's original training digits, plus the
    matched shift of each neighbour. See knn_core.methods.recipe_neighbors."""
    from .methods import recipe_neighbors as _recipe_neighbors

    return _recipe_neighbors(ds, recipe, split, **kw)
