"""KNNClassifier: a scikit-learn style estimator over the exact search.

The vote is kept apart from the search (`tally` and `decide`), so that one
neighbour search with the largest k serves the predictions for every k.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .search import METRICS, ExactSearch, as_rows

WEIGHTS = ("uniform", "distance")
TIE_BREAKS = ("smallest", "nearest", "random")


def neighbor_weights(distances: np.ndarray, weights: str) -> np.ndarray:
    """Vote weight of each neighbour.

    "distance" weighs by 1/d; where a query sits at distance 0 from some
    training digits, those get weight 1 and the rest 0 (as scikit-learn).
    """
    if weights == "uniform":
        return np.ones_like(distances, dtype=np.float64)
    if weights != "distance":
        raise ValueError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    with np.errstate(divide="ignore"):
        w = 1.0 / distances
    zero = distances == 0
    rows = zero.any(axis=1)
    w[rows] = zero[rows].astype(np.float64)
    return w


def tally(neighbor_classes: np.ndarray, distances: np.ndarray, n_classes: int, weights: str) -> np.ndarray:
    """Per query, the summed vote of each class: (m, n_classes)."""
    w = neighbor_weights(distances, weights)
    m = len(neighbor_classes)
    scores = np.zeros((m, n_classes), dtype=np.float64)
    np.add.at(scores, (np.repeat(np.arange(m), neighbor_classes.shape[1]), neighbor_classes.ravel()), w.ravel())
    return scores


def decide(scores: np.ndarray, neighbor_classes: np.ndarray, tie_break: str, random_state=None):
    """The winning class of each vote, and which classes tied for the top.

    smallest: the lowest class wins (scikit-learn's rule); nearest: among the
    tied classes, the one holding the nearest neighbour; random: a seeded draw
    (the classic numpy solution's rule). Returns (winners, tied mask).
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}")
    tied = scores == scores.max(axis=1, keepdims=True)
    winners = tied.argmax(axis=1)  # the smallest tied class
    multi = np.flatnonzero(tied.sum(axis=1) > 1)
    if tie_break == "nearest" and len(multi):
        in_tie = np.take_along_axis(tied[multi], neighbor_classes[multi], axis=1)
        first = in_tie.argmax(axis=1)  # neighbours are ordered nearest first
        winners[multi] = neighbor_classes[multi, first]
    elif tie_break == "random" and len(multi):
        rng = np.random.default_rng(random_state)
        draws = rng.random(len(multi))
        counts = tied[multi].sum(axis=1)
        pick = (draws * counts).astype(int)  # index among the tied classes
        order = np.cumsum(tied[multi], axis=1) - 1
        winners[multi] = (tied[multi] & (order == pick[:, None])).argmax(axis=1)
    return winners, tied


@dataclass(frozen=True)
class VoteExplanation:
    """One query's vote, in words and numbers, for pages that explain it."""

    scores: np.ndarray  # per class, in classes_ order
    winner: int
    tied_classes: tuple
    tie_break: str

    @property
    def was_tied(self) -> bool:
        return len(self.tied_classes) > 1

    def describe(self) -> str:
        if not self.was_tied:
            return f"{self.winner} won the vote outright."
        names = ", ".join(str(c) for c in self.tied_classes)
        how = {
            "smallest": "the smallest label wins",
            "nearest": "the class of the nearest tied neighbour wins",
            "random": "a seeded random draw picks",
        }[self.tie_break]
        return f"Tie between {names}: {how}, so {self.winner}."


class VotingMixin:
    """The vote on top of a neighbour search, shared by KNNClassifier and methods.MethodClassifier.

    Needs ``kneighbors``, ``n_neighbors``, ``weights``, ``tie_break``,
    ``random_state`` and, once fitted, ``classes_`` and ``_y`` (each training
    digit's class index).
    """

    @staticmethod
    def _check_k(k, n_available):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_neighbors must be a positive whole number; got {k!r}")
        if k > n_available:
            raise ValueError(f"n_neighbors={k} is larger than the {n_available} training digits available")

    @staticmethod
    def _check_vote_params(weights, tie_break):
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"unknown tie_break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}")

    def vote_from_neighbors(self, distances, indices, k=None):
        """Class scores and winners from precomputed neighbour lists (any k up to their width)."""
        k = self.n_neighbors if k is None else k
        cls = self._y[np.asarray(indices)[:, :k]]
        scores = tally(cls, np.asarray(distances)[:, :k], len(self.classes_), self.weights)
        winners, tied = decide(scores, cls, self.tie_break, self.random_state)
        return scores, winners, tied

    def predict_from_neighbors(self, distances, indices, k=None) -> np.ndarray:
        return self.classes_[self.vote_from_neighbors(distances, indices, k)[1]]

    def predict(self, X, *, progress=None):
        return self.predict_from_neighbors(*self.kneighbors(X, progress=progress))

    def predict_proba(self, X, *, progress=None):
        scores, _, _ = self.vote_from_neighbors(*self.kneighbors(X, progress=progress))
        return scores / scores.sum(axis=1, keepdims=True)

    def explain(self, distances, indices) -> VoteExplanation:
        """The vote of one query (1-D neighbour lists), for showing people."""
        scores, winners, tied = self.vote_from_neighbors(np.asarray(distances)[None, :], np.asarray(indices)[None, :])
        return VoteExplanation(
            scores=scores[0],
            winner=self.classes_[winners[0]].item(),
            tied_classes=tuple(self.classes_[tied[0]].tolist()),
            tie_break=self.tie_break,
        )


class KNNClassifier(VotingMixin, ClassifierMixin, BaseEstimator):
    """Exact k-nearest-neighbours classifier for images or feature rows.

    Parameters
    ----------
    n_neighbors : int, default=5
    metric : {"euclidean", "manhattan", "minkowski", "cosine"}, default="euclidean"
    p : float, default=3
        Power for metric="minkowski" (only used there).
    weights : {"uniform", "distance"}, default="uniform"
    tie_break : {"smallest", "nearest", "random"}, default="smallest"
        How a tied vote is decided; see `decide`.
    random_state : int or None
        Seed of the "random" tie rule.
    n_jobs : int, default=2
        Worker threads of the neighbour search.

    Notes
    -----
    Neighbours are ordered by (distance, training index): results are
    reproducible and equal scikit-learn's brute force except among exactly
    equal distances, where scikit-learn's order is unspecified.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0, 0], [0, 1], [5, 5], [6, 5]], dtype=np.uint8)
    >>> KNNClassifier(n_neighbors=1).fit(X, [0, 0, 1, 1]).predict([[5, 6]])
    array([1])
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        metric: str = "euclidean",
        p: float = 3,
        weights: str = "uniform",
        tie_break: str = "smallest",
        random_state=None,
        n_jobs: int = 2,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.p = p
        self.weights = weights
        self.tie_break = tie_break
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        self._check_vote_params(self.weights, self.tie_break)
        X = as_rows(X, "X")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have one label per row of X: X has {len(X)} rows, y has shape {y.shape}")
        self._check_k(self.n_neighbors, len(X))
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self._search = ExactSearch(self.metric, p=self.p, n_jobs=self.n_jobs).fit(X)
        self.n_samples_fit_ = len(X)
        self.n_features_in_ = X.shape[1]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True, *, progress=None):
        """Distances and training indices of the nearest neighbours.

        With X=None, each training digit's neighbours other than itself
        (leave-one-out), as scikit-learn does.
        """
        check_is_fitted(self, "n_samples_fit_")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            self._check_k(k, self.n_samples_fit_ - 1)
            dist, ind = self._search.kneighbors(
                self._search.X_, k, exclude=np.arange(self.n_samples_fit_), progress=progress
            )
        else:
            self._check_k(k, self.n_samples_fit_)
            dist, ind = self._search.kneighbors(X, k, progress=progress)
        return (dist, ind) if return_distance else ind
