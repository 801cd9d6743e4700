"""KNNClassifier: one scikit-learn style estimator for every method.

Search and vote stay apart, as in scikit-learn's `KNeighborsMixin` /
`KNeighborsClassifier`: a `Method` makes the search (classic metric on raw
pixels, or a recipe: deskew, blur, L3, shifts, IDM), and the vote
(`knn_core.vote`) turns any neighbour lists into a prediction.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .errors import ParameterError
from .methods import Method, Neighbors
from .methods.search import as_images
from .search import as_rows
from .vote import TIE_BREAKS, WEIGHTS, VoteExplanation, decide, tally


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """Exact k-nearest-neighbours classifier for images or feature rows.

    Parameters
    ----------
    n_neighbors : int, default=5
    method : Method, preset name, Recipe, dict or JSON, or None
        How neighbours are found beyond the classic metrics: e.g. "idm" or
        "deskew+blur+L3+shift1" (see `knn_core.methods.PRESETS`). None (the
        default): classic kNN with ``metric`` and ``p``.
    metric : {"euclidean", "manhattan", "minkowski", "cosine"}, default="euclidean"
        Classic kNN's distance (used when ``method`` is None).
    p : float, default=3
        Power for metric="minkowski" (only used there).
    weights : {"uniform", "distance"}, default="uniform"
    tie_break : {"smallest", "nearest", "random"}, default="smallest"
        How a tied vote is decided; see `knn_core.vote.decide`.
    random_state : int or None
        Seed of the "random" tie rule.
    n_jobs : int, default=2
        Worker threads of the neighbour search.

    Notes
    -----
    Neighbours are ordered by (distance, training index): results are
    reproducible and equal scikit-learn's brute force except among exactly
    equal distances, where scikit-learn's order is unspecified. With a
    method that shifts the training digits, a training digit may be several
    of the k neighbours (one per shifted copy) and vote once for each, unless
    its recipe says ``one_vote_per_digit``; ``kneighbors_detail`` says which
    copy matched.

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
        method=None,
        metric: str = "euclidean",
        p: float = 3,
        weights: str = "uniform",
        tie_break: str = "smallest",
        random_state=None,
        n_jobs: int = 2,
    ):
        self.n_neighbors = n_neighbors
        self.method = method
        self.metric = metric
        self.p = p
        self.weights = weights
        self.tie_break = tie_break
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        method = Method.classic(self.metric, self.p) if self.method is None else Method.parse(self.method)
        _check_vote_params(self.weights, self.tie_break)
        X = as_rows(X, "X").reshape(np.shape(X)) if method.is_classic else as_images(X, "X")  # images stay images
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ParameterError(f"y must have one label per image of X: X has {len(X)}, y has shape {y.shape}")
        _check_k(self.n_neighbors, len(X) * method.copies)
        self.method_ = method
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self.search_ = method.make_search(self.n_jobs).fit(X)
        self.n_samples_fit_ = len(X)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        return self

    @property
    def distance_name(self) -> str:
        """The distance the neighbours are ranked by, e.g. 'euclidean distance', 'IDM distance'."""
        check_is_fitted(self, "method_")
        return self.method_.distance_name

    # -------------------------------------------------------------- search
    def kneighbors_detail(self, X=None, n_neighbors=None, *, progress=None) -> Neighbors:
        """(distances, training indices, shifts (dy, dx) of the matched copies or None); X=None: leave-one-out."""
        check_is_fitted(self, "n_samples_fit_")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            _check_k(k, (self.n_samples_fit_ - 1) * self.method_.copies)
            return self.search_.kneighbors_training(k, progress=progress)
        _check_k(k, self.n_samples_fit_ * self.method_.copies)
        return self.search_.kneighbors(X, k, progress=progress)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True, *, progress=None):
        """Distances and training indices of the nearest neighbours.

        With X=None, each training digit's neighbours other than itself
        (leave-one-out), as scikit-learn does.
        """
        nb = self.kneighbors_detail(X, n_neighbors, progress=progress)
        return (nb.distances, nb.indices) if return_distance else nb.indices

    def transform(self, X) -> np.ndarray:
        """Queries as the method compares them (a recipe's: prepared, in the padded frame when shifting)."""
        check_is_fitted(self, "search_")
        return self.search_.transform(X)

    def training_image(self, index: int, shift=(0, 0)) -> np.ndarray:
        """A training digit as the method compared it (a recipe's: prepared, moved by `shift`)."""
        check_is_fitted(self, "search_")
        return self.search_.training_image(index, shift)

    def neighbor_labels(self, indices) -> np.ndarray:
        """The class labels of training digits given by index (e.g. of a neighbour list)."""
        check_is_fitted(self, "classes_")
        return self.classes_[self._y[np.asarray(indices)]]

    # ---------------------------------------------------------------- vote
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


def _check_k(k, n_available) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"n_neighbors must be a positive whole number; got {k!r}")
    if k > n_available:
        raise ParameterError(f"n_neighbors={k} is larger than the {n_available} training digits available")


def _check_vote_params(weights, tie_break) -> None:
    if weights not in WEIGHTS:
        raise ParameterError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    if tie_break not in TIE_BREAKS:
        raise ParameterError(f"unknown tie_break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}")
