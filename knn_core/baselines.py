"""The classic baselines beside kNN, measured the same way.

The classic MNIST write-ups compare kNN with simpler classifiers: Gaussian
naive Bayes, logistic regression and linear models trained by stochastic
gradient descent (hinge loss: a linear SVM; log loss: logistic regression),
with 3-fold cross-validation on the training set.  Here every method in
:data:`METHODS` runs on every feature set in :data:`FEATURES` and gets the
same measurements (:class:`BaselineRow`):

- ``cv_scores``: accuracy of each fold of ``StratifiedKFold(cv)`` on the
  training set (unshuffled, so equal to ``cross_val_score(est, X, y, cv=cv)``:
  see :func:`folds`);
- ``test_accuracy``: a fit on the whole training set, scored on the test set
  (equal to the estimator's ``score``);
- ``fit_s`` / ``predict_s``: wall-clock seconds of that fit and of predicting
  the test set;
- ``predictions``: the test predictions, for galleries.

Features: ``"pixels"`` (784 values) and ``"10x10"`` (3x3 block means,
:func:`knn_core.features.downsample`), both scaled to [0, 1] floats for the
scikit-learn models.  kNN gets the same features as their uint8 codes (the
[0, 1] values times 255): scaling all features by one factor changes no
neighbour ranking, and the integer codes give exact distances and share the
neighbour-search cache with the rest of the app.

kNN with "the best k" chooses k over :data:`~knn_core.evaluate.DEFAULT_KS`
on the validation split (``ds.fit_*`` against ``ds.val_*``), never on the
test set, then is measured like the others with that k.

Each (method, features) row is cached on disk (:func:`knn_core.cache.cached_arrays`),
keyed by the method's estimator parameters, the features, the data, the
training-set size, the number of folds and the scikit-learn version; an
interrupted run keeps the rows it finished.  Seeds are fixed everywhere
(``random_state=0``), so a recomputation gives the same predictions (the
times, of course, vary).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Self, Sequence

import numpy as np

from . import cache
from .data import Dataset, bundled_path, stratified_subset
from .errors import ParameterError
from .evaluate import DEFAULT_KS, choose_k
from .lists import K_MAX, find_neighbors
from .threads import one_blas_thread

FEATURES = ("pixels", "10x10")
RANDOM_STATE = 0
CODE_VERSION = "1"  # bump when a change here changes what a cached row would hold

Progress = Optional[Callable[[int, int], None]]
Status = Optional[Callable[[str], None]]


# ----------------------------------------------------------------------------- methods


class Estimator(Protocol):
    """What the comparison uses of a classifier: scikit-learn's estimator interface."""

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> Self: ...

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Baseline:
    """One classifier of the comparison.

    factory: () -> an unfitted scikit-learn style estimator.
    scaled: True: it gets the features as floats in [0, 1]; False (kNN): as
    their uint8 codes (same neighbour ranking, exact integer distances).
    tune_k: choose ``n_neighbors`` on the validation split first.
    """

    key: str  # short name for the command line
    label: str  # name shown in tables and on the page
    factory: Callable[[], Estimator]
    summary: str
    scaled: bool = True
    tune_k: bool = False


def _gnb():
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _logreg():
    from sklearn.linear_model import LogisticRegression

    # lbfgs (multinomial) from scikit-learn's default tol; max_iter=1000 lets it converge on
    # scaled pixels (the default 100 stops early with a ConvergenceWarning).
    return LogisticRegression(max_iter=1000, random_state=RANDOM_STATE)


def _sgd(loss: str):
    def make():
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss=loss, random_state=RANDOM_STATE)

    return make


def _knn():
    from .classifier import KNNClassifier

    return KNNClassifier(n_neighbors=5)


METHODS: dict[str, Baseline] = {
    m.key: m
    for m in (
        Baseline("gnb", "Gaussian naive Bayes", _gnb,
               "GaussianNB: one Gaussian per pixel and class, pixels treated as independent."),
        Baseline("logreg", "Logistic regression", _logreg,
               "LogisticRegression (multinomial, lbfgs, L2 penalty C=1, max_iter=1000)."),
        Baseline("sgd-hinge", "SGD hinge (linear SVM)", _sgd("hinge"),
               "SGDClassifier(loss='hinge'): a linear SVM trained by stochastic gradient descent, "
               "one class against the rest."),
        Baseline("sgd-log", "SGD log loss (logistic)", _sgd("log_loss"),
               "SGDClassifier(loss='log_loss'): logistic regression trained by stochastic gradient "
               "descent, one class against the rest."),
        Baseline("knn-5", "kNN k=5", _knn,
               "knn_core.KNNClassifier, k=5, euclidean, uniform votes.", scaled=False),
        Baseline("knn-best", "kNN best k", _knn,
               f"knn_core.KNNClassifier with the k of {', '.join(map(str, DEFAULT_KS))} that is most "
               "accurate on the validation split.", scaled=False, tune_k=True),
    )
}


def method(name: str) -> Baseline:
    """A method by key ("sgd-hinge") or label ("SGD hinge (linear SVM)"), case-insensitive."""
    for m in METHODS.values():
        if name.lower() in (m.key, m.label.lower()):
            return m
    raise ParameterError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")


# ---------------------------------------------------------------------------- features


def feature_rows(images, features: str) -> np.ndarray:
    """Images (N, 28, 28) uint8 -> feature rows (N, D) uint8: "pixels" (D=784) or "10x10" (D=100)."""
    from .features import downsample

    a = np.asarray(images)
    if features == "pixels":
        return a.reshape(len(a), -1)
    if features == "10x10":
        return downsample(a).reshape(len(a), -1)
    raise ParameterError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")


def scaled(rows: np.ndarray) -> np.ndarray:
    """uint8 feature rows -> float32 in [0, 1]."""
    return np.asarray(rows, dtype=np.float32) / np.float32(255.0)


def model_input(rows: np.ndarray, m: Baseline) -> np.ndarray:
    """What method `m` is fed: the scaled floats, or (kNN) the uint8 codes."""
    return scaled(rows) if m.scaled else rows


def folds(cv: int):
    """The cross-validation splitter: StratifiedKFold(cv) unshuffled, as cross_val_score(cv=cv) uses."""
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=cv)


def training_indices(labels, train_size: int | None) -> np.ndarray:
    """The training digits used: all, or the class-balanced subset the app uses for this size."""
    n = len(labels)
    if train_size is None or train_size >= n:
        return np.arange(n)
    return stratified_subset(labels, train_size, random_state=0)


# --------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class BaselineRow:
    """One method on one feature set."""

    method: str  # key in METHODS
    label: str
    features: str
    cv_scores: np.ndarray  # accuracy per fold
    test_accuracy: float
    fit_s: float  # the final fit on the whole training set
    predict_s: float  # predicting the whole test set
    cv_s: float  # all the cross-validation folds (fits and scoring)
    predictions: np.ndarray  # on the test set
    n_train: int
    tuned: dict = field(default_factory=dict)  # parameters chosen on the validation split, e.g. {"n_neighbors": 3}
    detail: str = ""  # e.g. "k=3 (validation accuracy 0.9741)", or fits that did not converge

    def estimator(self) -> Estimator:
        """A fresh unfitted estimator of this row: the method's, with the tuned parameters."""
        est = METHODS[self.method].factory()
        return est.set_params(**self.tuned) if self.tuned else est

    @property
    def cv_accuracy(self) -> float:
        return float(np.mean(self.cv_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.cv_scores))


@dataclass
class _Data:
    """The features of one dataset, computed once per run and only when a row needs them."""

    ds: Dataset
    train_size: int | None
    _idx: np.ndarray | None = None
    _rows: dict | None = None

    @property
    def idx(self) -> np.ndarray:
        if self._idx is None:
            self._idx = training_indices(self.ds.train_labels, self.train_size)
        return self._idx

    @property
    def n_train(self) -> int:
        n = len(self.ds.train_labels)
        return n if self.train_size is None else min(n, self.train_size)

    def rows(self, features: str):
        """(train rows, train labels, test rows) as uint8 features."""
        self._rows = self._rows or {}
        if features not in self._rows:
            ds, idx = self.ds, self.idx
            X = ds.train_images if len(idx) == len(ds.train_images) else ds.train_images[idx]
            self._rows[features] = (feature_rows(X, features), ds.train_labels[idx],
                                    feature_rows(ds.test_images, features))
        return self._rows[features]


def _steps(m: Baseline, cv: int) -> int:
    """Progress steps of one row: each fold, the final fit, and (best k) the validation search."""
    return cv + 1 + int(m.tune_k)


def _cache_parts(m: Baseline, features: str, data: _Data, cv: int) -> dict:
    import sklearn

    est = m.factory()
    return dict(
        version=CODE_VERSION,
        method=m.key,
        estimator=type(est).__name__,
        params=repr(sorted(est.get_params().items())),
        tune_k=list(DEFAULT_KS) if m.tune_k else None,
        features=features,
        data=data.ds.fingerprint,  # all the images and labels, and n_val
        train_size=data.n_train,
        cv=cv,
        sklearn=sklearn.__version__,
    )


def _best_k(data: _Data, features: str, use_cache: bool) -> tuple[int, float]:
    """The k of DEFAULT_KS most accurate on the validation split, and that accuracy.

    The same neighbour lists as ``split_neighbors(ds, "val", train_size=...)``
    (for pixels they are the very same cache entry).
    """
    ds = data.ds
    X, y = ds.fit_images, ds.fit_labels
    if len(ds.val_labels) == 0 or len(y) == 0:
        raise ParameterError("choosing k needs a validation split (the dataset has n_val=0)")
    if data.train_size is not None and data.train_size < len(X):
        keep = stratified_subset(y, data.train_size)
        X, y = X[keep], y[keep]
    lists = find_neighbors(feature_rows(X, features), y, feature_rows(ds.val_images, features),
                           ds.val_labels, k_max=K_MAX, use_cache=use_cache)
    ks = [k for k in DEFAULT_KS if k <= lists.k_max]
    k = choose_k(lists, ks)
    return k, lists.accuracy(k)


def _fit(est, X, y) -> list[str]:
    """Fit; a note when an iterative solver stopped at max_iter without converging.

    (Read from n_iter_, not by catching the ConvergenceWarning: catching warnings
    changes process-wide state, and this may run in a thread of the app's server.)
    """
    est.fit(X, y)
    max_iter, n_iter = getattr(est, "max_iter", None), getattr(est, "n_iter_", None)
    if max_iter is not None and n_iter is not None and np.max(n_iter) >= max_iter:
        return [f"stopped at max_iter={max_iter} without converging"]
    return []


def _compute_row(m: Baseline, features: str, data: _Data, cv: int, use_cache: bool,
                 step: Callable[[str], None]) -> dict:
    """Everything one row holds, as arrays (for the cache). `step(text)` is called as each step starts."""
    with one_blas_thread():
        return _measure(m, features, data, cv, use_cache, step)


def _measure(m: Baseline, features: str, data: _Data, cv: int, use_cache: bool, step) -> dict:
    from sklearn.base import clone

    Xr, y, Tr = data.rows(features)
    X, T = model_input(Xr, m), model_input(Tr, m)
    est = m.factory()
    detail = ""
    tuned: dict = {}
    if m.tune_k:
        step(f"{m.label} on {features}: choosing k on the validation split")
        k, val_acc = _best_k(data, features, use_cache)
        k = min(k, len(y) - len(y) // cv)  # a fold's training part must hold k digits
        tuned = {"n_neighbors": k}
        est.set_params(**tuned)
        detail = f"k={k} (validation accuracy {val_acc:.4f})"

    messages: list[str] = []
    scores = []
    t0 = time.perf_counter()
    for i, (tr, va) in enumerate(folds(cv).split(X, y), start=1):
        step(f"{m.label} on {features}: cross-validation fold {i}/{cv}")
        fold = clone(est)
        messages += _fit(fold, X[tr], y[tr])
        scores.append(fold.score(X[va], y[va]))
    cv_s = time.perf_counter() - t0

    step(f"{m.label} on {features}: fitting on all {len(y):,} training digits and predicting the test set")
    t0 = time.perf_counter()
    messages += _fit(est, X, y)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = est.predict(T)
    predict_s = time.perf_counter() - t0

    if messages:
        note = f"{len(messages)} of {cv + 1} fits {messages[0]}"
        detail = f"{detail}; {note}" if detail else note
    return {
        "cv_scores": np.asarray(scores, dtype=np.float64),
        "test_accuracy": np.array(float(np.mean(pred == data.ds.test_labels))),
        "fit_s": np.array(fit_s),
        "predict_s": np.array(predict_s),
        "cv_s": np.array(cv_s),
        "predictions": np.asarray(pred).astype(data.ds.test_labels.dtype, copy=False),
        "n_train": np.array(len(y)),
        "tuned": np.array(json.dumps(tuned, sort_keys=True)),
        "detail": np.array(detail),
    }


def _as_row(m: Baseline, features: str, got: dict) -> BaselineRow:
    return BaselineRow(
        method=m.key,
        label=m.label,
        features=features,
        cv_scores=np.asarray(got["cv_scores"]),
        test_accuracy=float(got["test_accuracy"]),
        fit_s=float(got["fit_s"]),
        predict_s=float(got["predict_s"]),
        cv_s=float(got["cv_s"]),
        predictions=np.asarray(got["predictions"]),
        n_train=int(got["n_train"]),
        tuned=json.loads(str(got["tuned"])),
        detail=str(got["detail"]),
    )


class _NotCached(Exception):
    pass


# ------------------------------------------------------------------ the shipped table

SHIPPED_TABLE = bundled_path("baselines", "mnist_full_cv3.json")  # `python -m knn_core baselines --save PATH`
TABLE_FORMAT = 1


def save_table(rows: Sequence[BaselineRow], path, ds, cv: int) -> None:
    """The rows as a small JSON file (test predictions as one string of digits), with what they were
    measured on: the data's fingerprint, cv, the code's version, scikit-learn's, and the date."""
    import datetime
    from pathlib import Path

    import sklearn

    table = {
        "format": TABLE_FORMAT, "code_version": CODE_VERSION, "sklearn": sklearn.__version__,
        "data": ds.fingerprint, "cv": cv, "measured": datetime.date.today().isoformat(),
        "rows": [{
            "method": r.method, "features": r.features, "cv_scores": [float(v) for v in r.cv_scores],
            "test_accuracy": r.test_accuracy, "fit_s": r.fit_s, "predict_s": r.predict_s, "cv_s": r.cv_s,
            "n_train": r.n_train, "tuned": r.tuned, "detail": r.detail,
            "predictions": "".join(str(int(p)) for p in r.predictions),
        } for r in rows],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")


def load_table(path, ds, cv: int, n_train: int) -> tuple[list[BaselineRow], str] | None:
    """(rows, the date they were measured) from a file of save_table, or None when there is none or
    it was measured on other data, folds, training size or code (or is not such a file)."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        if (table["format"], table["code_version"], table["data"], table["cv"]) != (
                TABLE_FORMAT, CODE_VERSION, ds.fingerprint, cv):
            return None
        rows = []
        for r in table["rows"]:
            m = METHODS[r["method"]]
            predictions = np.frombuffer(r["predictions"].encode("ascii"), np.uint8) - ord("0")
            if int(r["n_train"]) != n_train or r["features"] not in FEATURES or len(predictions) != len(ds.test_labels):
                return None
            rows.append(BaselineRow(
                method=m.key, label=m.label, features=r["features"], cv_scores=np.asarray(r["cv_scores"], float),
                test_accuracy=float(r["test_accuracy"]), fit_s=float(r["fit_s"]), predict_s=float(r["predict_s"]),
                cv_s=float(r["cv_s"]), predictions=predictions.astype(ds.test_labels.dtype), n_train=n_train,
                tuned=dict(r["tuned"]), detail=str(r["detail"])))
        return rows, str(table["measured"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _plan(methods, features) -> list[tuple[Baseline, str]]:
    ms = list(METHODS.values()) if methods is None else [
        m if isinstance(m, Baseline) else method(m) for m in methods
    ]
    fs = [features] if isinstance(features, str) else list(features)
    for f in fs:
        if f not in FEATURES:
            raise ParameterError(f"unknown features {f!r}; choose from {', '.join(FEATURES)}")
    return [(m, f) for m in ms for f in fs]


def _check_cv(cv: int) -> None:
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ParameterError(f"cross-validation needs at least 2 folds; got cv={cv!r}")


def run_baselines(
    ds,
    methods: Sequence[str | Baseline] | None = None,
    features: Sequence[str] | str = FEATURES,
    cv: int = 3,
    train_size: int | None = None,
    progress: Progress = None,
    use_cache: bool = True,
    *,
    status: Status = None,
    only_cached: bool = False,
) -> list[BaselineRow]:
    """Every method on every feature set: one :class:`BaselineRow` each, in that order.

    ds: a :class:`knn_core.Dataset` (its test set is always used whole).
    methods: keys or labels of :data:`METHODS` (default: all).
    train_size: a class-balanced subset of the training set (default: all).
    progress(done, total): called after each step (a fold, a final fit, a
    validation search); cached rows count as done at once.
    status(text): called as each step starts, naming it (for progress displays).
    only_cached: return only the rows already in the cache; compute nothing.
    """
    _check_cv(cv)
    if train_size is not None and train_size < 2 * cv:
        raise ParameterError(f"train_size={train_size} is too small for {cv}-fold cross-validation")
    plan = _plan(methods, features)
    data = _Data(ds, train_size)
    total = sum(_steps(m, cv) for m, _ in plan)
    done = 0
    rows: list[BaselineRow] = []

    def step_done():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for m, f in plan:
        first = [True]

        def step(text, first=first):
            if first[0]:
                first[0] = False
            else:
                step_done()
            if status is not None:
                status(text)

        def compute(m=m, f=f, step=step):
            if only_cached:
                raise _NotCached
            return _compute_row(m, f, data, cv, use_cache, step)

        start = done
        try:
            got = cache.cached_arrays("baseline", _cache_parts(m, f, data, cv), compute, use_cache=use_cache)
        except _NotCached:
            continue
        rows.append(_as_row(m, f, got))
        while done < start + _steps(m, cv):  # the last step, or all of them for a cached row
            step_done()
    return rows


def missing(ds, methods=None, features=FEATURES, cv: int = 3, train_size: int | None = None):
    """The (method, features) pairs whose rows are not cached yet."""
    have = {(r.method, r.features) for r in run_baselines(ds, methods, features, cv, train_size, only_cached=True)}
    return [(m, f) for m, f in _plan(methods, features) if (m.key, f) not in have]


# ----------------------------------------------------------------------------- estimates

# CPU seconds of one fit of each scikit-learn model on the full training set (60,000 digits,
# one BLAS thread), measured on these machines; cross-validation adds cv fits on (cv-1)/cv
# of the digits.  A busy machine takes longer: this is an estimate, not a promise.
_FIT_S_FULL = {
    ("gnb", "pixels"): 0.7, ("gnb", "10x10"): 0.1,
    ("logreg", "pixels"): 25.0, ("logreg", "10x10"): 3.0,
    ("sgd-hinge", "pixels"): 18.0, ("sgd-hinge", "10x10"): 2.2,
    ("sgd-log", "pixels"): 25.0, ("sgd-log", "10x10"): 3.0,
}
# kNN: seconds per (query x training digit) pair of the exact search (2 workers), and of
# fitting its bound per training digit.
_KNN_PAIR_S = {"pixels": 7e-9, "10x10": 2.5e-9}
_KNN_FIT_S = {"pixels": 1e-4, "10x10": 2e-5}
_FULL = 60_000


def estimate_seconds(pairs, n_train: int, n_test: int = 10_000, cv: int = 3, n_val: int = 10_000) -> float:
    """A rough estimate of the time to compute these (method, features) rows (on 2 cores)."""
    total = 0.0
    for m, f in pairs:
        m = m if isinstance(m, Baseline) else method(m)
        if m.key in ("knn-5", "knn-best"):
            queries = n_test * n_train + (cv - 1) / cv * n_train * n_train
            if m.tune_k:
                queries += n_val * min(n_train, _FULL - n_val)
            total += _KNN_PAIR_S[f] * queries + _KNN_FIT_S[f] * n_train * (1 + (cv - 1)) + 0.5
        else:
            fit = _FIT_S_FULL.get((m.key, f), 60.0) * n_train / _FULL
            total += fit * (1 + (cv - 1)) + 0.2  # cv fits on (cv-1)/cv of the data ~ (cv-1) full fits
    return total


# --------------------------------------------------------------------------------- table


def format_table(rows: Sequence[BaselineRow]) -> str:
    """The rows as a plain-text table (the command line's output)."""
    head = (f"{'method':<26} {'features':<8} {'cv accuracy':>16} {'folds':<22} {'test acc':>8} "
            f"{'fit s':>7} {'predict s':>9} {'cv s':>7}  detail")
    lines = [head, "-" * len(head)]
    for r in rows:
        fold_text = " ".join(f"{s:.4f}" for s in r.cv_scores)
        lines.append(
            f"{r.label:<26} {r.features:<8} {r.cv_accuracy:>9.4f} ±{r.cv_std:.4f} {fold_text:<22} "
            f"{r.test_accuracy:>8.4f} {r.fit_s:>7.2f} {r.predict_s:>9.2f} {r.cv_s:>7.1f}  {r.detail}"
        )
    return "\n".join(lines)
