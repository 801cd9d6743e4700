"""knn_core.lists and knn_core.evaluate: one search serves every k; LOO; the rows searched; the cache;
report; error analysis; subsets and size curves."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.neighbors import NearestNeighbors

from knn_core import KNNClassifier
from knn_core.cache import CACHE_ENV
from knn_core.data import Dataset, stratified_subset
from knn_core.errors import ParameterError
from knn_core.evaluate import choose_k, misclassified, report, size_curve, suspicious_labels
from knn_core.lists import NeighborLists, estimate_seconds, find_neighbors, is_cached, neighbor_lists, split_data
from knn_core.methods import PRESETS, Method

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def ds_small(mnist):
    """3000 training digits (the last 500 the validation split) and 300 test digits."""
    return Dataset(mnist.train_images[:3000], mnist.train_labels[:3000],
                   mnist.test_images[:300], mnist.test_labels[:300], n_val=500, source="subset")


@pytest.fixture(scope="module")
def sweep_data(mnist):
    X, y = mnist.train_images[:2000], mnist.train_labels[:2000]
    Q, qy = mnist.test_images[1000:1300], mnist.test_labels[1000:1300]
    return X, y, Q, qy


# --------------------------------------------------------------------------- one search, every k

VOTES = [("uniform", "smallest"), ("uniform", "nearest"), ("uniform", "random"),
         ("distance", "smallest"), ("distance", "nearest"), ("distance", "random")]


def test_sweep_equals_direct_prediction_at_every_k(sweep_data, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "sweep-cache"))
    X, y, Q, qy = sweep_data
    lists = find_neighbors(X, y, Q, qy, k_max=15)
    assert lists.k_max == 15
    ks = list(range(1, 16))
    ties_seen = 0
    rules_differ = set()
    clf = KNNClassifier().fit(X, y)  # k and the vote options are used at predict time
    for k in ks:
        by_rule = {}
        for weights, tie_break in VOTES:
            clf.set_params(n_neighbors=k, weights=weights, tie_break=tie_break, random_state=0)
            direct = clf.predict(Q)
            got = lists.predict(k, weights=weights, tie_break=tie_break, random_state=0)
            np.testing.assert_array_equal(got, direct, err_msg=f"k={k} {weights} {tie_break}")
            by_rule[weights, tie_break] = direct
        _, _, tied = lists.vote(k)
        ties_seen += int((tied.sum(1) > 1).sum())
        for w in ("uniform", "distance"):
            if not np.array_equal(by_rule[w, "smallest"], by_rule[w, "nearest"]):
                rules_differ.add((w, "nearest"))
            if not np.array_equal(by_rule[w, "smallest"], by_rule[w, "random"]):
                rules_differ.add((w, "random"))
    assert ties_seen > 50  # the tie rules were really exercised ...
    assert {("uniform", "nearest"), ("uniform", "random")} <= rules_differ  # ... and they matter
    # sweep() is the accuracy of those predictions
    for weights, tie_break in VOTES:
        expected = [np.mean(lists.predict(k, weights=weights, tie_break=tie_break) == qy) for k in ks]
        np.testing.assert_array_equal(lists.sweep(ks, weights=weights, tie_break=tie_break), expected)
    # a fresh fit with every option in the constructor gives the same as set_params
    for weights, tie_break in VOTES:
        clf = KNNClassifier(4, weights=weights, tie_break=tie_break, random_state=0).fit(X, y)
        np.testing.assert_array_equal(clf.predict(Q), lists.predict(4, weights=weights, tie_break=tie_break))


def test_vote_outside_searched_k_is_an_error(sweep_data):
    X, y, Q, qy = sweep_data
    lists = find_neighbors(X[:100], y[:100], Q[:5], qy[:5], k_max=7)
    for k in (0, 8):
        with pytest.raises(ParameterError, match="outside 1..7"):
            lists.predict(k)


def test_k_max_is_capped_by_the_training_set():
    X = np.array([[0.0], [1.0], [5.0]])
    lists = find_neighbors(X, [0, 0, 1], np.array([[0.4], [4.0]]), [0, 1], use_cache=False)
    assert lists.k_max == 3
    assert lists.indices.tolist() == [[0, 1, 2], [2, 1, 0]]
    np.testing.assert_allclose(lists.distances, [[0.4, 0.6, 4.6], [1.0, 3.0, 4.0]])
    loo = find_neighbors(X, [0, 0, 1], use_cache=False)
    assert loo.k_max == 2
    assert loo.indices.tolist() == [[1, 2], [0, 2], [1, 0]]


# --------------------------------------------------------------------------- leave-one-out


def test_split_loo_excludes_the_digit_itself(mnist):
    X = mnist.train_images[:800].copy()
    X[600] = X[17]  # an exact duplicate: it must still count as a neighbour
    y = mnist.train_labels[:800]
    ds = Dataset(X, y, mnist.test_images[:10], mnist.test_labels[:10], n_val=100, source="dup")
    lists = neighbor_lists(ds, "euclidean", "loo", k_max=6)
    n = len(X)
    assert lists.indices.shape == (n, 6)
    assert not np.any(lists.indices == np.arange(n)[:, None])
    np.testing.assert_array_equal(lists.query_labels, y)
    assert lists.indices[17, 0] == 600 and lists.indices[600, 0] == 17
    assert lists.distances[17, 0] == 0 == lists.distances[600, 0]
    # equal to the classifier's leave-one-out and to scikit-learn's
    d, i = KNNClassifier(6).fit(X, y).kneighbors()
    np.testing.assert_array_equal(lists.indices, i)
    np.testing.assert_array_equal(lists.distances, d)
    sd, _ = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(X.reshape(n, -1).astype(float)).kneighbors()
    np.testing.assert_allclose(lists.distances, sd, rtol=1e-9, atol=1e-9)
    # and find_neighbors with no queries is the same thing
    same = find_neighbors(X, y, k_max=6)
    np.testing.assert_array_equal(same.indices, lists.indices)
    # LOO accuracy at k=1 is the share of digits whose nearest other digit has their label
    np.testing.assert_allclose(lists.accuracy(1), np.mean(y[lists.indices[:, 0]] == y))


def test_split_val_uses_the_digits_before_the_validation_split(ds_small):
    lists = neighbor_lists(ds_small, "euclidean", "val", k_max=3)
    assert lists.indices.shape == (500, 3)
    assert lists.indices.max() < 2500
    np.testing.assert_array_equal(lists.query_labels, ds_small.train_labels[2500:])
    np.testing.assert_array_equal(lists.train_labels, ds_small.train_labels[:2500])
    d, i = KNNClassifier(3).fit(ds_small.fit_images, ds_small.fit_labels).kneighbors(ds_small.val_images)
    np.testing.assert_array_equal(lists.indices, i)
    with pytest.raises(ParameterError, match="unknown split 'train'; choose one of test, val, loo"):
        neighbor_lists(ds_small, "euclidean", "train")


def test_split_train_size_is_a_stratified_subset(ds_small):
    lists = neighbor_lists(ds_small, "euclidean", "test", train_size=600, k_max=3)
    keep = stratified_subset(ds_small.train_labels, 600)
    np.testing.assert_array_equal(lists.train_labels, ds_small.train_labels[keep])
    d, i = KNNClassifier(3).fit(ds_small.train_images[keep], ds_small.train_labels[keep]).kneighbors(ds_small.test_images)
    np.testing.assert_array_equal(lists.indices, i)


# --------------------------------------------------------------------------- the training rows searched


def test_train_rows_of_a_training_subset(ds_small):
    lists = neighbor_lists(ds_small, "euclidean", "test", train_size=600, k_max=4)
    keep = stratified_subset(ds_small.train_labels, 600)
    np.testing.assert_array_equal(lists.train_rows, keep)
    np.testing.assert_array_equal(ds_small.train_labels[lists.train_rows], lists.train_labels)
    # neighbor_rows: the dataset's rows of the neighbours, i.e. the images that were found
    np.testing.assert_array_equal(lists.neighbor_rows(4), keep[lists.indices])
    Xs = ds_small.train_images[keep]
    np.testing.assert_array_equal(ds_small.train_images[lists.neighbor_rows(2)], Xs[lists.indices[:, :2]])
    assert not np.array_equal(lists.neighbor_rows(4), lists.indices)  # rows of the dataset, not of the subset


def test_train_rows_of_the_val_split_and_its_subsets(ds_small):
    val = neighbor_lists(ds_small, "euclidean", "val", k_max=3)
    np.testing.assert_array_equal(val.train_rows, np.arange(2500))  # the digits before the validation split
    # a subset of the val split: drawn from the 2500 digits before it, with their dataset rows
    sub = neighbor_lists(ds_small, "manhattan", "val", train_size=400, k_max=3)
    keep = stratified_subset(ds_small.fit_labels, 400)
    np.testing.assert_array_equal(sub.train_rows, keep)
    assert sub.train_rows.max() < 2500
    np.testing.assert_array_equal(ds_small.train_labels[sub.train_rows], sub.train_labels)
    clf = KNNClassifier(3, metric="manhattan").fit(ds_small.train_images[sub.train_rows], sub.train_labels)
    d, i = clf.kneighbors(ds_small.val_images)
    np.testing.assert_array_equal(sub.indices, i)
    np.testing.assert_array_equal(sub.distances, d)
    assert sub.method == Method.classic("manhattan")
    # leave-one-out: every training digit, in order
    loo = neighbor_lists(ds_small, "euclidean", "loo", train_size=300, k_max=2)
    np.testing.assert_array_equal(loo.train_rows, stratified_subset(ds_small.train_labels, 300))
    np.testing.assert_array_equal(loo.query_labels, loo.train_labels)


def test_split_data_says_what_each_split_searches(ds_small):
    test = split_data(ds_small, "test")
    assert test.query_images is ds_small.test_images and test.n_queries == 300
    np.testing.assert_array_equal(test.train_rows, np.arange(3000))
    val = split_data(ds_small, "val", train_size=1000)
    np.testing.assert_array_equal(val.train_images, ds_small.train_images[val.train_rows])
    np.testing.assert_array_equal(val.query_labels, ds_small.train_labels[2500:])
    loo = split_data(ds_small, "loo", train_size=5000)  # larger than the set: all of it
    assert loo.query_images is None and loo.n_queries == 3000 and len(loo.train_rows) == 3000
    with pytest.raises(ParameterError, match="unknown split 'train'"):
        split_data(ds_small, "train")


# --------------------------------------------------------------------------- the cache of neighbour lists


def test_is_cached_says_whether_neighbor_lists_would_search(ds_small, monkeypatch):
    from knn_core.methods import MetricSearch

    assert not is_cached(ds_small, "euclidean", "val", train_size=800)
    first = neighbor_lists(ds_small, "euclidean", "val", train_size=800)
    assert first.k_max == 50 and first.seconds >= 0 and first.cpu_seconds >= 0
    assert is_cached(ds_small, "euclidean", "val", train_size=800)
    assert is_cached(ds_small, Method.classic("euclidean"), "val", train_size=800)  # however it is spelt
    # everything the lists depend on is part of the key
    assert not is_cached(ds_small, "euclidean", "val", train_size=801)
    assert not is_cached(ds_small, "euclidean", "val")
    assert not is_cached(ds_small, "euclidean", "test", train_size=800)
    assert not is_cached(ds_small, "cosine", "val", train_size=800)
    assert not is_cached(ds_small, "euclidean", "val", train_size=800, k_max=10)
    # a training size of the whole split is the whole split's entry
    neighbor_lists(ds_small, "euclidean", "test", k_max=3)
    assert is_cached(ds_small, "euclidean", "test", train_size=3000, k_max=3)
    assert is_cached(ds_small, "euclidean", "test", train_size=10**6, k_max=3)

    def boom(*a, **k):
        raise AssertionError("searched although is_cached said it would not")

    monkeypatch.setattr(MetricSearch, "fit", boom)
    again = neighbor_lists(ds_small, "euclidean", "val", train_size=800)
    np.testing.assert_array_equal(again.indices, first.indices)
    np.testing.assert_array_equal(again.train_rows, first.train_rows)
    assert again.seconds == first.seconds  # the time of the search that computed it
    with pytest.raises(AssertionError, match="searched although"):
        neighbor_lists(ds_small, "euclidean", "val", train_size=800, use_cache=False)


def test_is_cached_for_recipes_keys_on_the_recipe_not_the_name(ds_small):
    recipe = PRESETS["deskew"].recipe
    assert not is_cached(ds_small, "deskew", "test", train_size=500, k_max=5)
    lists = neighbor_lists(ds_small, "deskew", "test", train_size=500, k_max=5)
    assert lists.method == Method.parse("deskew") and lists.method.preset == "deskew"
    # the same recipe given as a Recipe, a dict or JSON is the same entry
    for spelt in (recipe, recipe.to_dict(), recipe.to_json()):
        assert is_cached(ds_small, spelt, "test", train_size=500, k_max=5), spelt
        assert Method.parse(spelt).cache_id() == lists.method.cache_id()
    assert not is_cached(ds_small, "euclidean", "test", train_size=500, k_max=5)  # plain pixels: another entry
    assert not is_cached(ds_small, {**recipe.to_dict(), "blur_sigma": 1.0}, "test", train_size=500, k_max=5)


def test_estimate_seconds_grows_with_the_work(ds_small, mnist):
    small = estimate_seconds(ds_small, "euclidean", "test", train_size=300)
    full = estimate_seconds(ds_small, "euclidean", "test")
    assert 0 < small < full
    assert estimate_seconds(ds_small, "euclidean", "loo") > estimate_seconds(ds_small, "euclidean", "val")
    assert estimate_seconds(ds_small, "idm", "test") > full  # re-ranking by IDM costs more than one search
    assert estimate_seconds(mnist, "minkowski", "test") > 10 * estimate_seconds(mnist, "euclidean", "test")
    with pytest.raises(ParameterError, match="unknown method 'fast'"):
        estimate_seconds(ds_small, "fast", "test")



# --------------------------------------------------------------------------- the full data set


@pytest.mark.slow
def test_full_mnist_k5_accuracy_is_0_9688(mnist, full_test_lists):
    """k=5, euclidean, uniform, 60,000 training / 10,000 test digits: 312 errors."""
    lists = full_test_lists  # neighbor_lists(mnist, "euclidean", "test", use_cache=False), once per session
    pred = lists.predict(5)
    assert int((pred == mnist.test_labels).sum()) == 9688
    assert lists.accuracy(5) == 0.9688
    rep = report(mnist.test_labels, pred)
    assert rep.accuracy == 0.9688
    assert rep.confusion.sum() == 10000
    assert np.trace(rep.confusion) / 10000 == rep.accuracy
    np.testing.assert_array_equal(rep.confusion, confusion_matrix(mnist.test_labels, pred))
    np.testing.assert_array_equal(rep.support, np.bincount(mnist.test_labels))
    ref = classification_report(mnist.test_labels, pred, output_dict=True)
    for j, c in enumerate(rep.labels):
        row = ref[str(c)]
        assert (rep.precision[j], rep.recall[j], rep.f1[j], rep.support[j]) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"], row["support"]), rel=1e-12)
    assert ref["accuracy"] == rep.accuracy
    # a few well-known facts about kNN on MNIST: 1s are easiest, 8s are hard
    assert rep.recall[1] > 0.99 and rep.recall[8] < rep.recall[1]


def test_report_on_a_constructed_case():
    rep = report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 3])
    assert rep.labels.tolist() == [0, 1, 2, 3]  # 3 only ever predicted: still a column
    assert rep.accuracy == 4 / 6
    assert rep.confusion.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 2, 1], [0, 0, 0, 0]]
    np.testing.assert_allclose(rep.precision, [1.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(rep.recall, [0.5, 1.0, 2 / 3, 0.0])
    np.testing.assert_allclose(rep.f1, [2 / 3, 2 / 3, 0.8, 0.0])
    assert rep.support.tolist() == [2, 1, 3, 0]
    table = rep.table().splitlines()
    assert table[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert table[3].split() == ["2", "1.0000", "0.6667", "0.8000", "3"]
    conf = rep.confusion_table().splitlines()
    assert conf[0].split() == ["true\\pred", "0", "1", "2", "3"]
    assert conf[3].split() == ["2", "0", "0", "2", "1"]


# --------------------------------------------------------------------------- error analysis


def test_misclassified_most_confident_first(sweep_data):
    X, y, Q, qy = sweep_data
    lists = find_neighbors(X, y, Q, qy, k_max=15)
    for opts in (dict(), dict(weights="distance")):
        order = misclassified(lists, 7, **opts)
        scores, pred, _ = lists.vote(7, **opts)
        wrong = np.flatnonzero(pred != qy)
        assert sorted(order.tolist()) == wrong.tolist() and len(wrong) > 5
        conf = scores.max(1)[order] / scores[order].sum(1)
        assert np.all(np.diff(conf) <= 0)
        same = np.diff(conf) == 0
        assert np.all(np.diff(order)[same] > 0)  # equal confidence: by index
        assert np.all(lists.predict(7, **opts)[order] != qy[order])
    assert conf[0] > 0.5


def cluster(center, n, rng, spread=0.05):
    return np.asarray(center, dtype=float) + rng.normal(scale=spread, size=(n, 2))


def test_suspicious_labels_finds_the_flipped_label():
    rng = np.random.default_rng(0)
    A = cluster([0, 0], 20, rng)  # all 1s, except one flipped to 7
    B = cluster([10, 0], 20, rng)  # all 7s
    C = cluster([0, 10], 12, rng)  # an honestly mixed cluster: seven 3s and five 8s
    X = np.vstack([A, B, C])
    y = np.array([1] * 20 + [7] * 20 + [3] * 7 + [8] * 5)
    flipped = 13
    y[flipped] = 7
    lists = find_neighbors(X, y, k_max=10)
    idx, frac = suspicious_labels(lists, k=10)
    assert idx[0] == flipped and frac[0] == 1.0
    assert np.all(np.diff(frac) <= 0) and np.all(frac > 0.5)
    assert set(idx[1:].tolist()) == set(range(47, 52))  # then the five 8s of the mixed cluster (6 or 7 of 10 disagree)
    np.testing.assert_allclose(frac, [np.mean(y[lists.indices[j]] != y[j]) for j in idx])
    # the 1s next to the flipped 7 see one disagreeing neighbour of ten: not suspicious
    assert not set(idx.tolist()) & (set(range(20)) - {flipped})


def hand_made_lists():
    """Two queries of class 0; train labels so that the accuracy is 1/2 at k=1,3,5 and 1 at k=7."""
    train = np.array([0, 1, 1, 1, 0, 0, 0])
    ind = np.array([[1, 2, 3, 0, 4, 5, 6], [0, 4, 5, 1, 2, 3, 6]])
    dist = np.tile(np.arange(1.0, 8.0), (2, 1))
    return NeighborLists(dist, ind, train, np.array([0, 0]), train_rows=np.arange(len(train)))


def test_choose_k_best_and_smallest_on_ties():
    lists = hand_made_lists()
    np.testing.assert_array_equal(lists.sweep([1, 3, 5, 7]), [0.5, 0.5, 0.5, 1.0])
    assert choose_k(lists, [1, 3, 5, 7]) == 7
    assert choose_k(lists, [5, 3, 1]) == 5  # first best in the order given ...
    assert choose_k(lists, [1, 3, 5]) == 1  # ... which for sorted ks is the smallest


# --------------------------------------------------------------------------- subsets and size curves


def test_stratified_subset_keeps_proportions_and_is_deterministic(mnist):
    y = mnist.train_labels
    for n in (100, 1000, 7777):
        idx = stratified_subset(y, n)
        assert len(idx) == n and len(np.unique(idx)) == n
        assert np.all(np.diff(idx) > 0)
        expected = np.bincount(y, minlength=10) * n / len(y)
        assert np.all(np.abs(np.bincount(y[idx], minlength=10) - expected) <= 1)
        np.testing.assert_array_equal(idx, stratified_subset(y, n))
    assert not np.array_equal(stratified_subset(y, 1000), stratified_subset(y, 1000, random_state=1))
    np.testing.assert_array_equal(stratified_subset(y[:50], 50), np.arange(50))
    np.testing.assert_array_equal(stratified_subset(y[:50], 80), np.arange(50))
    few = stratified_subset(y, 4)  # fewer than the classes: any 4, still sorted and distinct
    assert len(few) == 4 == len(set(few.tolist())) and np.all(np.diff(few) > 0)
    with pytest.raises(ParameterError, match="at least 1 digit"):
        stratified_subset(y, 0)


def test_size_curve(ds_small):
    sizes, ks = [2, 300, 3000], [1, 3, 5]
    calls = []
    acc = size_curve(ds_small, sizes, ks, progress=lambda done, total: calls.append((done, total)))
    assert acc.shape == (3, 3)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    Q, qy = ds_small.test_images, ds_small.test_labels
    for row, n in enumerate(sizes):
        keep = stratified_subset(ds_small.train_labels, n)
        clf = KNNClassifier(1).fit(ds_small.train_images[keep], ds_small.train_labels[keep])
        for col, k in enumerate(ks):
            if k > n:
                assert np.isnan(acc[row, col])  # not enough training digits for this k
                continue
            assert acc[row, col] == np.mean(clf.set_params(n_neighbors=k).predict(Q) == qy), (n, k)
    # the full-size row is the plain test accuracy
    full = neighbor_lists(ds_small, "euclidean", "test", k_max=5, use_cache=False)
    np.testing.assert_array_equal(acc[2], full.sweep(ks))
    assert acc[2, 0] > acc[1, 0] > acc[0, 0]  # more data helps
