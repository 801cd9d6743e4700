"""knn_core.classifier.KNNClassifier: equal to scikit-learn's brute force, tie rules, explain(), sklearn API."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from knn_core import KNNClassifier
from knn_core.errors import ParameterError
from knn_core.vote import VoteExplanation, decide, neighbor_weights, tally

WEIGHTS = ("uniform", "distance")
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def sk_classifier(k, metric="euclidean", weights="uniform"):
    name, p = {"minkowski": ("minkowski", 3)}.get(metric, (metric, 2))
    return KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=name, p=p, weights=weights)


def rows64(X):
    X = np.asarray(X)
    return X.reshape(len(X), -1).astype(np.float64)


def true_distances(X, Q, ind, metric):
    X, Q = rows64(X), rows64(Q)
    a, b = np.repeat(Q[:, None, :], ind.shape[1], axis=1), X[ind]
    if metric == "euclidean":
        return np.sqrt(((a - b) ** 2).sum(-1))
    if metric == "manhattan":
        return np.abs(a - b).sum(-1)
    if metric == "minkowski":
        return (np.abs(a - b) ** 3).sum(-1) ** (1 / 3)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    dot = (a * b).sum(-1)
    return 1.0 - np.divide(dot, na * nb, out=np.zeros_like(dot), where=(na * nb) > 0)


def assert_same_neighbors(ours, theirs, X, Q, metric):
    (d, i), (sd, si) = ours, theirs
    np.testing.assert_allclose(d, sd, rtol=1e-9, atol=1e-9)
    diff = i != si
    if diff.any():  # different order only among exactly equal distances
        np.testing.assert_allclose(true_distances(X, Q, i, metric)[diff], true_distances(X, Q, si, metric)[diff],
                                   rtol=1e-12, atol=1e-12)


def assert_same_as_sklearn(X, y, Q, k, metric, weights):
    ours = KNNClassifier(k, metric=metric, weights=weights).fit(X, y)
    ref = sk_classifier(k, metric, weights).fit(rows64(X), y)
    assert_same_neighbors(ours.kneighbors(Q), ref.kneighbors(rows64(Q)), X, Q, metric)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(Q), ref.predict(rows64(Q)))
    np.testing.assert_allclose(ours.predict_proba(Q), ref.predict_proba(rows64(Q)), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- equality with scikit-learn


def random_set(kind, rng):
    if kind == "uint8_images":
        X = rng.integers(0, 256, (80, 16, 16), dtype=np.uint8)
        Q = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8)
        y = rng.integers(0, 10, 80)
    elif kind == "float_features":
        X, Q = rng.normal(size=(160, 7)), rng.normal(size=(40, 7))
        y = (X[:, 0] + 0.5 * rng.normal(size=160) > 0).astype(int) + 2 * (X[:, 1] > 0)
    elif kind == "string_labels":
        X, Q = rng.normal(size=(60, 3)), rng.normal(size=(25, 3))
        y = np.array(["seven", "three", "zero"])[rng.integers(0, 3, 60)]
    elif kind == "sparse_labels":  # classes 3, 40, 100: classes_ are labels, not 0..n-1
        X, Q = rng.random((70, 5)) * 10, rng.random((30, 5)) * 10
        y = np.array([3, 40, 100])[rng.integers(0, 3, 70)]
    else:
        raise AssertionError(kind)
    return X, y, Q


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "minkowski", "cosine"])
@pytest.mark.parametrize("kind", ["uint8_images", "float_features", "string_labels", "sparse_labels"])
def test_random_data_matches_sklearn(kind, metric, weights):
    rng = np.random.default_rng(sum(map(ord, kind + metric + weights)))
    X, y, Q = random_set(kind, rng)
    for k in (1, 4, len(X)):
        assert_same_as_sklearn(X, y, Q, k, metric, weights)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "minkowski", "cosine"])
@pytest.mark.parametrize("n,k", [(1, 1), (3, 3), (5, 1), (6, 2), (9, 4)])
def test_tiny_training_sets_match_sklearn(n, k, metric, weights):
    rng = np.random.default_rng(n * 10 + k)
    X, Q = rng.normal(size=(n, 3)) + 1.0, rng.normal(size=(12, 3)) + 1.0
    y = rng.integers(0, 3, n)
    assert_same_as_sklearn(X, y, Q, k, metric, weights)


def test_single_training_digit_predicts_its_label_everywhere():
    clf = KNNClassifier(1).fit(np.array([[1.0, 2.0]]), [7])
    Q = np.random.default_rng(0).normal(size=(5, 2))
    assert clf.predict(Q).tolist() == [7] * 5
    np.testing.assert_array_equal(clf.predict_proba(Q), np.ones((5, 1)))


@pytest.fixture(scope="module")
def mnist_subset(mnist):
    """3000 training x 300 test digits (test_search.py compares the neighbours on 3000 x 500)."""
    return (mnist.train_images[:3000], mnist.train_labels[:3000], mnist.test_images[:300], mnist.test_labels[:300])


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_mnist_subset_matches_sklearn(mnist_subset, metric):
    X, y, Q, qy = mnist_subset
    ours = KNNClassifier(5, metric=metric).fit(X, y)
    d, i = ours.kneighbors(Q)
    ref_neighbors = sk_classifier(5, metric).fit(rows64(X), y).kneighbors(rows64(Q))
    assert_same_neighbors((d, i), ref_neighbors, X, Q, metric)
    for weights in WEIGHTS:
        ours.set_params(weights=weights)
        ref = sk_classifier(5, metric, weights).fit(rows64(X), y)
        ref_pred, ref_proba = ref.predict(rows64(Q)), ref.predict_proba(rows64(Q))
        # the vote from our neighbour lists equals scikit-learn's predict / predict_proba ...
        np.testing.assert_array_equal(ours.predict_from_neighbors(d, i), ref_pred)
        scores = ours.vote_from_neighbors(d, i)[0]
        np.testing.assert_allclose(scores / scores.sum(1, keepdims=True), ref_proba, rtol=1e-12, atol=1e-12)
    # ... and so does the whole predict path (which searches again), here with distance weights
    pred = ours.predict(Q)
    np.testing.assert_array_equal(pred, ref_pred)
    np.testing.assert_allclose(ours.predict_proba(Q), ref_proba, rtol=1e-12, atol=1e-12)
    assert np.mean(pred == qy) > 0.85  # and it is a sensible classifier


@pytest.mark.parametrize("weights", WEIGHTS)
def test_mnist_small_minkowski_matches_sklearn(mnist, weights):
    X, y, Q = mnist.train_images[:400], mnist.train_labels[:400], mnist.test_images[:40]
    assert_same_as_sklearn(X, y, Q, 3, "minkowski", weights)


@pytest.mark.parametrize("p", [1.5, 4])
def test_minkowski_with_other_p_matches_sklearn(p):
    rng = np.random.default_rng(int(p * 10))
    X, y, Q = random_set("uint8_images", rng)
    ours = KNNClassifier(5, metric="minkowski", p=p, weights="distance").fit(X, y)
    ref = KNeighborsClassifier(5, algorithm="brute", metric="minkowski", p=p, weights="distance").fit(rows64(X), y)
    d, i = ours.kneighbors(Q)
    sd, si = ref.kneighbors(rows64(Q))
    np.testing.assert_allclose(d, sd, rtol=1e-9)
    np.testing.assert_array_equal(i, si)  # random uint8 images: no exact ties
    np.testing.assert_array_equal(ours.predict(Q), ref.predict(rows64(Q)))
    np.testing.assert_allclose(ours.predict_proba(Q), ref.predict_proba(rows64(Q)), rtol=1e-12, atol=1e-12)


def test_leave_one_out_kneighbors_matches_sklearn_and_keeps_duplicates():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (150, 30)).astype(np.uint8)
    X[100] = X[3]
    X[[20, 21]] = X[50]
    y = rng.integers(0, 4, 150)
    ours = KNNClassifier(4).fit(X, y)
    d, i = ours.kneighbors()  # X=None
    ref = sk_classifier(4).fit(rows64(X), y)
    assert_same_neighbors((d, i), ref.kneighbors(), X, X, "euclidean")
    assert not np.any(i == np.arange(150)[:, None]), "a digit must not be its own neighbour"
    assert i[3, 0] == 100 and i[100, 0] == 3 and d[3, 0] == d[100, 0] == 0
    assert i[50, :2].tolist() == [20, 21] and i[20, :2].tolist() == [21, 50]
    assert ours.kneighbors(return_distance=False).tolist() == i.tolist()
    with pytest.raises(ParameterError, match="149 training digits"):
        ours.kneighbors(n_neighbors=150)  # only n - 1 are left once the digit itself is out
    assert ours.kneighbors(n_neighbors=149)[1].shape == (150, 149)


def test_images_and_rows_agree(mnist):
    X, y = mnist.train_images[:300], mnist.train_labels[:300]
    Q = mnist.test_images[:30]
    clf = KNNClassifier(3).fit(X, y)
    np.testing.assert_array_equal(clf.predict(Q), clf.predict(Q.reshape(30, 784)))
    np.testing.assert_array_equal(clf.predict(Q), clf.predict(Q.reshape(30, 784).tolist()))
    assert clf.n_features_in_ == 784 and clf.n_samples_fit_ == 300


def test_detail_transform_and_training_image_of_classic_knn(mnist):
    """What the pages show works for classic kNN as for the methods: no shifts, the digits as they are."""
    X, y, Q = mnist.train_images[:200], mnist.train_labels[:200], mnist.test_images[:5]
    clf = KNNClassifier(4, metric="manhattan").fit(X, y)
    nb = clf.kneighbors_detail(Q)
    d, i = clf.kneighbors(Q)
    assert nb.shifts is None
    np.testing.assert_array_equal(nb.indices, i)
    np.testing.assert_array_equal(nb.distances, d)
    np.testing.assert_array_equal(nb.distances, true_distances(X, Q, i, "manhattan"))
    loo = clf.kneighbors_detail(n_neighbors=2)
    np.testing.assert_array_equal(loo.indices, clf.kneighbors(n_neighbors=2)[1])
    np.testing.assert_array_equal(clf.transform(Q), Q)
    np.testing.assert_array_equal(clf.training_image(int(i[0, 0])), X[i[0, 0]])
    assert clf.training_image(3).shape == (28, 28)
    assert clf.distance_name == "manhattan distance"
    assert KNNClassifier(3, metric="minkowski", p=4).fit(X, y).distance_name == "minkowski (p=4) distance"
    rows = KNNClassifier(3).fit(X.reshape(200, -1), y)
    np.testing.assert_array_equal(rows.training_image(3), X[3].reshape(-1))  # rows stay rows
    with pytest.raises(NotFittedError):
        _ = KNNClassifier(3).distance_name
    with pytest.raises(NotFittedError):
        KNNClassifier(3).training_image(0)


# --------------------------------------------------------------------------- constructed ties


def line(positions, labels, **kw):
    """Training digits on a line (1 feature)."""
    k = kw.pop("k", 2)
    return KNNClassifier(k, **kw).fit(np.array(positions, dtype=np.float64)[:, None], labels)


Q0 = np.array([[0.0]])


@pytest.mark.parametrize("order", [(7, 3), (3, 7)])
def test_two_way_tie_smallest_and_nearest(order):
    near, far = order  # the class of the neighbour at distance 1, and at distance 2
    kw = dict(positions=[1.0, -2.0, 10.0], labels=[near, far, 5])
    assert line(**kw, tie_break="smallest").predict(Q0).tolist() == [3]
    assert line(**kw, tie_break="nearest").predict(Q0).tolist() == [near]
    proba = line(**kw).predict_proba(Q0)[0]
    assert dict(zip([3, 5, 7], proba.tolist())) == {3: 0.5, 5: 0.0, 7: 0.5}


def test_nearest_looks_only_at_the_tied_classes():
    """k=5 neighbours 5, 7, 7, 3, 3 (nearest first): 7 and 3 tie; the 5 is nearest but not tied."""
    kw = dict(positions=[0.5, 1.0, 1.5, 2.0, 2.5, 40.0], labels=[5, 7, 7, 3, 3, 5], k=5)
    assert line(**kw, tie_break="nearest").predict(Q0).tolist() == [7]
    assert line(**kw, tie_break="smallest").predict(Q0).tolist() == [3]
    kw["labels"] = [5, 3, 7, 7, 3, 5]  # the nearest tied neighbour is now a 3
    assert line(**kw, tie_break="nearest").predict(Q0).tolist() == [3]


def test_nearest_among_equal_distances_takes_the_lower_index():
    # two neighbours at exactly the same distance: (distance, index) order puts index 0 first
    assert line([1.0, -1.0], [7, 3], tie_break="nearest").predict(Q0).tolist() == [7]
    assert line([-1.0, 1.0], [3, 7], tie_break="nearest").predict(Q0).tolist() == [3]


def test_distance_weighted_tie():
    # 1/1 for the 7 at +1 and 1/1 for the 3 at -1: an exact tie of weights
    kw = dict(positions=[1.0, -1.0, 30.0], labels=[7, 3, 1], weights="distance")
    assert line(**kw, tie_break="smallest").predict(Q0).tolist() == [3]
    assert line(**kw, tie_break="nearest").predict(Q0).tolist() == [7]
    # not a tie when one is nearer: 1/1 beats 1/2 whatever the rule
    for rule in ("smallest", "nearest", "random"):
        clf = line([2.0, -1.0, 30.0], [3, 7, 1], weights="distance", tie_break=rule, random_state=0)
        assert clf.predict(Q0).tolist() == [7]


def test_random_tie_break_is_seeded_and_picks_each_class():
    kw = dict(positions=[1.0, -2.0, 3.0, -4.0, 50.0], labels=[7, 3, 7, 3, 1], k=4, tie_break="random")
    picks = [line(**kw, random_state=seed).predict(Q0)[0] for seed in range(200)]
    again = [line(**kw, random_state=seed).predict(Q0)[0] for seed in range(200)]
    assert picks == again  # reproducible
    assert set(picks) == {3, 7}  # never the untied 1
    assert 60 <= picks.count(3) <= 140  # a fair draw, roughly half each
    # the same seed gives the same answers call after call
    clf = line(**kw, random_state=12)
    assert len({clf.predict(Q0)[0] for _ in range(10)}) == 1


def test_random_three_way_tie_and_many_queries():
    X = np.array([[1.0, 0.0], [-0.5, 0.8660254037844386], [-0.5, -0.8660254037844386]])
    clf = KNNClassifier(3, tie_break="random").fit(X, [4, 8, 9])
    Q = np.zeros((300, 2))
    picks = clf.set_params(random_state=0).predict(Q)
    assert set(picks.tolist()) == {4, 8, 9}
    assert all(50 <= picks.tolist().count(c) <= 150 for c in (4, 8, 9))
    np.testing.assert_array_equal(picks, clf.set_params(random_state=0).predict(Q))
    assert not np.array_equal(picks, clf.set_params(random_state=1).predict(Q))
    unseeded = clf.set_params(random_state=None).predict(Q)  # unseeded works too: a fair draw each time
    assert unseeded.shape == (300,) and set(unseeded.tolist()) == {4, 8, 9}  # all three: fails with p < 1e-50


def test_zero_distance_rule_matches_sklearn():
    """With distance weights, training digits at distance 0 take the whole vote (scikit-learn's rule)."""
    X = np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1], [5.0, 5.0]])
    y = [3, 8, 7, 7, 7, 1]
    Q = np.array([[0.0, 0.0], [0.05, 0.05], [5.0, 5.0]])
    ours = KNNClassifier(5, weights="distance").fit(X, y)
    ref = sk_classifier(5, weights="distance").fit(X, y)
    proba = ours.predict_proba(Q)
    np.testing.assert_allclose(proba, ref.predict_proba(Q), rtol=1e-12)
    # at (0, 0): the 3 and the 8 at distance 0 split the vote, the three 7s get nothing
    assert dict(zip(ours.classes_.tolist(), proba[0].tolist())) == {1: 0.0, 3: 0.5, 7: 0.0, 8: 0.5}
    assert ours.predict(Q)[0] == 3 == ref.predict(Q)[0]
    assert ours.set_params(tie_break="nearest").predict(Q)[0] == 3  # index 0 is the first at distance 0
    assert proba[2].tolist() == [1.0, 0.0, 0.0, 0.0]  # exactly on the lone 1
    np.testing.assert_array_equal(neighbor_weights(np.array([[0.0, 0.0, 1.0, 2.0], [1.0, 2.0, 4.0, 5.0]]), "distance"),
                                  [[1.0, 1.0, 0.0, 0.0], [1.0, 0.5, 0.25, 0.2]])


def test_tally_and_decide_on_their_own():
    cls = np.array([[2, 0, 2, 0, 1], [1, 1, 1, 0, 0]])
    d = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]] * 2)
    scores = tally(cls, d, 3, "uniform")
    np.testing.assert_array_equal(scores, [[2, 1, 2], [2, 3, 0]])
    for rule, first_winner in (("smallest", 0), ("nearest", 2)):
        winners, tied = decide(scores, cls, rule)
        assert winners.tolist() == [first_winner, 1]
        assert tied.tolist() == [[True, False, True], [False, True, False]]
    with pytest.raises(ParameterError, match="unknown tie_break 'largest'"):
        decide(scores, cls, "largest")
    with pytest.raises(ParameterError, match="unknown weights 'gauss'"):
        tally(cls, d, 3, "gauss")


# --------------------------------------------------------------------------- explain()


def test_explain_outright_win():
    clf = line([1.0, 2.0, 3.0, 9.0], [4, 4, 6, 6], k=3)
    d, i = clf.kneighbors(Q0)
    e = clf.explain(d[0], i[0])
    assert isinstance(e, VoteExplanation)
    assert e.winner == 4 and not e.was_tied and e.tied_classes == (4,)
    assert e.scores.tolist() == [2.0, 1.0]
    assert e.describe() == "4 won the vote outright."


@pytest.mark.parametrize("rule,winner,words", [
    ("smallest", 3, "the smallest label wins"),
    ("nearest", 7, "the class of the nearest tied neighbour wins"),
])
def test_explain_names_the_tied_classes(rule, winner, words):
    clf = line([1.0, -2.0, 10.0], [7, 3, 5], tie_break=rule)
    d, i = clf.kneighbors(Q0)
    e = clf.explain(d[0], i[0])
    assert e.was_tied and e.tied_classes == (3, 7) and e.winner == winner
    assert e.describe() == f"Tie between 3, 7: {words}, so {winner}."
    assert e.winner == clf.predict(Q0)[0]
    assert type(e.winner) is int  # plain Python, printable in a page


def test_explain_random_rule_agrees_with_predict():
    for seed in range(10):
        clf = line([1.0, -2.0, 10.0], [7, 3, 5], tie_break="random", random_state=seed)
        d, i = clf.kneighbors(Q0)
        e = clf.explain(d[0], i[0])
        assert e.winner == clf.predict(Q0)[0]
        assert e.describe().startswith("Tie between 3, 7: a seeded random draw picks, so ")


# --------------------------------------------------------------------------- scikit-learn API


@pytest.fixture(scope="module")
def small_xy():
    """scikit-learn's bundled 8x8 digits (1797 x 64): small enough for many fits."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X, y


def test_cross_val_score_equals_sklearn(small_xy):
    X, y = small_xy
    ours = cross_val_score(KNNClassifier(3), X, y, cv=3)
    ref = cross_val_score(KNeighborsClassifier(3, algorithm="brute"), X, y, cv=3)
    np.testing.assert_array_equal(ours, ref)
    assert ours.min() > 0.9


def test_grid_search_over_k(small_xy):
    X, y = small_xy
    grid = {"n_neighbors": [1, 3, 6]}
    ours = GridSearchCV(KNNClassifier(), grid, cv=3).fit(X, y)
    ref = GridSearchCV(KNeighborsClassifier(algorithm="brute"), grid, cv=3).fit(X, y)
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])
    assert ours.best_params_ == ref.best_params_
    assert isinstance(ours.best_estimator_, KNNClassifier)
    assert ours.best_estimator_.n_neighbors == ours.best_params_["n_neighbors"]


def test_get_set_params_and_clone():
    params = dict(n_neighbors=7, method=None, metric="cosine", p=4, weights="distance", tie_break="random",
                  random_state=3, n_jobs=1)
    clf = KNNClassifier(**params)
    assert clf.get_params() == params
    assert KNNClassifier().set_params(**params).get_params() == params
    c = clone(clf)
    assert c is not clf and c.get_params() == params
    fitted = KNNClassifier(1).fit([[0.0], [1.0]], [0, 1])
    c = clone(fitted)
    assert not hasattr(c, "classes_")  # a clone is unfitted
    assert "n_neighbors=7" in repr(clf)


def test_score_is_accuracy(small_xy):
    X, y = small_xy
    clf = KNNClassifier(3).fit(X[:1000], y[:1000])
    assert clf.score(X[1000:], y[1000:]) == np.mean(clf.predict(X[1000:]) == y[1000:]) > 0.9


# --------------------------------------------------------------------------- bad input


X4 = np.random.default_rng(0).normal(size=(10, 4))
y4 = np.arange(10) % 3


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_neighbors=0), "positive whole number"),
    (dict(n_neighbors=-1), "positive whole number"),
    (dict(n_neighbors=True), "positive whole number"),
    (dict(n_neighbors=2.5), "positive whole number"),
    (dict(n_neighbors="3"), "positive whole number"),
    (dict(n_neighbors=11), "larger than the 10 training digits"),
    (dict(metric="chebyshev"), "unknown metric 'chebyshev'"),
    (dict(weights="gaussian"), "unknown weights 'gaussian'"),
    (dict(tie_break="largest"), "unknown tie_break 'largest'"),
    (dict(metric="minkowski", p=0.5), "p >= 1"),
    (dict(method="chebyshev"), "unknown method 'chebyshev'; choose a metric"),
    (dict(method={"blur": 1}), "unknown recipe fields: blur"),
])
def test_bad_parameters_raise_at_fit(kwargs, match):
    with pytest.raises(ParameterError, match=match) as exc:
        KNNClassifier(**kwargs).fit(X4, y4)
    assert isinstance(exc.value, ValueError)  # as scikit-learn's parameter errors are


def test_numpy_integer_k_is_fine():
    assert KNNClassifier(np.int64(3)).fit(X4, y4).predict(X4[:2]).shape == (2,)
    assert KNNClassifier(10).fit(X4, y4).kneighbors(X4[:1])[1].shape == (1, 10)  # k = n


def test_bad_data_raises_clear_errors():
    with pytest.raises(ParameterError, match="one label per image of X: X has 10"):
        KNNClassifier(3).fit(X4, y4[:9])
    with pytest.raises(ParameterError, match="one label per image of X: X has 10"):
        KNNClassifier(3).fit(X4, y4[:, None])
    bad = X4.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        KNNClassifier(3).fit(bad, y4)
    clf = KNNClassifier(3).fit(X4, y4)
    with pytest.raises(ParameterError, match="5 features, the training rows 4"):
        clf.predict(np.zeros((2, 5)))
    with pytest.raises(ParameterError, match="NaN"):
        clf.predict(bad[:3])
    with pytest.raises(ParameterError, match="NaN"):
        clf.predict_proba(bad[:3])
    with pytest.raises(ParameterError, match="positive whole number"):
        clf.kneighbors(X4, n_neighbors=0)
    with pytest.raises(ParameterError, match="larger than the 10"):
        clf.kneighbors(X4, n_neighbors=11)


def test_predict_before_fit_raises_not_fitted_error():
    """scikit-learn's contract: an unfitted estimator raises NotFittedError (a ValueError)."""
    for call in (lambda c: c.predict(X4), lambda c: c.predict_proba(X4), lambda c: c.kneighbors(X4)):
        with pytest.raises(NotFittedError):
            call(KNNClassifier(3))
