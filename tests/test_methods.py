"""knn_core.methods: Method, recipes, shifted copies without copies, two-stage L3, IDM re-ranking."""
from __future__ import annotations

import functools
import itertools
import json
import re
import time

import numpy as np
import pytest
from sklearn.base import clone

from knn_core import KNNClassifier
from knn_core.cache import CACHE_ENV
from knn_core.data import Dataset, stratified_subset
from knn_core.errors import KnnLabError, ParameterError
from knn_core.lists import is_cached, neighbor_lists
from knn_core.methods import (
    AFFINE_NAMES,
    CLASSIC_P,
    PRESETS,
    Method,
    MethodSearch,
    MetricSearch,
    Recipe,
    affine_copies,
    affine_matrices,
    brute_force_neighbors,
    displacement_costs,
    idm_distances,
    p2dhmdm_distances,
    pad_frame,
    resolve_recipe,
    shift_offsets,
    sobel_gradients,
    tangent_distances,
    tangent_vectors,
    translate,
)
from knn_core.search import METRICS, ExactSearch
from knn_core.threads import one_blas_thread
from knn_core.vote import decide, tally


@pytest.fixture(autouse=True, scope="module")
def blas_on_one_thread():
    """One BLAS thread for the classic searches' fits (MethodSearch.fit limits itself): ExactSearch.fit's
    eigh with 2 OpenBLAS threads is erratic on a busy 2-core machine (see test_search.py)."""
    with one_blas_thread():
        yield


@pytest.fixture(scope="module")
def small(mnist):
    """400 training digits, 25 test digits."""
    return (mnist.train_images[:400], mnist.train_labels[:400], mnist.test_images[:25], mnist.test_labels[:25])


def materialised_neighbors(train, queries, s, k, p=2.0, one_vote=False):
    """Brute force over explicitly built shifted copies: (dist, train index, (dy, dx))."""
    offs = shift_offsets(s)
    T = pad_frame(train, s).astype(np.float64)
    Qp = pad_frame(queries, s).reshape(len(queries), -1).astype(np.float64)
    copies = np.stack([translate(T, int(dy), int(dx)) for dy, dx in offs], axis=1)  # (n, S, H, W)
    n, S = copies.shape[:2]
    flat = copies.reshape(n * S, -1)  # augmented index = train index * S + shift id
    out_d, out_i, out_s = [], [], []
    for q in Qp:
        d = (np.abs(flat - q) ** p).sum(axis=1) ** (1 / p)
        order = np.lexsort((np.arange(n * S), d))  # (distance, train index, shift id)
        if one_vote:
            seen, keep = set(), []
            for j in order:
                if j // S not in seen:
                    seen.add(j // S)
                    keep.append(j)
            order = np.array(keep)
        order = order[:k]
        out_d.append(d[order])
        out_i.append(order // S)
        out_s.append(offs[order % S])
    return np.array(out_d), np.array(out_i), np.array(out_s)


# ------------------------------------------------------------------ shifts


def test_shift_offsets_start_unshifted_and_nest():
    o2 = shift_offsets(2)
    assert len(o2) == 25 and tuple(o2[0]) == (0, 0)
    assert np.array_equal(shift_offsets(1), o2[:9])
    assert len({tuple(v) for v in o2}) == 25


def test_translate_padded_frame_identity(small):
    """|shift(q, -d) - y| == |q - shift(y, d)| in the padded frame."""
    X = pad_frame(small[0][:5].astype(np.int64), 2)
    q = pad_frame(small[2][:1].astype(np.int64), 2)[0]
    for dy, dx in shift_offsets(2):
        a = ((translate(q, -dy, -dx) - X) ** 2).sum(axis=(1, 2))
        b = ((q - translate(X, dy, dx)) ** 2).sum(axis=(1, 2))
        assert np.array_equal(a, b)


@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("one_vote", [False, True])
def test_shift_search_equals_materialised_copies(small, s, one_vote):
    X, y, Q, _ = small
    k = 12
    want_d, want_i, want_s = materialised_neighbors(X, Q, s, k, one_vote=one_vote)
    nb = MethodSearch(Recipe(shifts=s, one_vote_per_digit=one_vote)).fit(X).kneighbors(Q, k)
    assert np.array_equal(nb.indices, want_i)
    assert np.array_equal(nb.shifts, want_s)
    np.testing.assert_allclose(nb.distances, want_d, rtol=1e-12)
    if not one_vote:
        assert (np.diff(np.sort(nb.indices, axis=1), axis=1) == 0).any()  # a digit can come back at several shifts
    else:
        assert all(len(set(r)) == k for r in nb.indices)


def test_l3_two_stage_is_exact_when_all_digits_are_candidates(small):
    X, y, Q, _ = small
    r = Recipe(metric="minkowski", p=3, shifts=1, candidates=len(X))
    search = MethodSearch(r).fit(X)
    nb = search.kneighbors(Q[:8], 6)
    want_d, want_i, want_s = materialised_neighbors(X, Q[:8], 1, 6, p=3)
    assert np.array_equal(nb.indices, want_i) and np.array_equal(nb.shifts, want_s)
    np.testing.assert_allclose(nb.distances, want_d, rtol=1e-12)
    for prune in (True, False):
        bf = brute_force_neighbors(search, Q[:8], 6, prune=prune)
        assert np.array_equal(bf.indices, want_i) and np.array_equal(bf.shifts, want_s)
        np.testing.assert_allclose(bf.distances, want_d, rtol=1e-12)


@pytest.mark.parametrize("recipe", [Recipe(metric="minkowski", p=3, shifts=2, one_vote_per_digit=True),
                                    Recipe(metric="minkowski", p=3, pca=40), Recipe(shifts=1),
                                    Recipe(metric="minkowski", p=1.5, blur_sigma=1.0)])
def test_pruned_brute_force_is_exact(small, recipe):
    X, y, Q, _ = small
    search = MethodSearch(recipe).fit(X)
    a = brute_force_neighbors(search, Q[:6], 7, prune=True)
    b = brute_force_neighbors(search, Q[:6], 7, prune=False)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.shifts, b.shifts)
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-12)


def test_l3_two_stage_ranks_by_exact_l3(small):
    X, y, Q, _ = small
    nb = MethodSearch(Recipe(metric="minkowski", p=3, candidates=30)).fit(X).kneighbors(Q, 5)
    d3 = (np.abs(Q.reshape(len(Q), 1, -1).astype(np.float64) - X[nb.indices].reshape(len(Q), 5, -1)) ** 3).sum(-1) ** (1 / 3)
    np.testing.assert_allclose(nb.distances, d3, rtol=1e-12)
    assert np.all(np.diff(nb.distances, axis=1) >= 0)


def test_reported_distance_is_that_of_the_shown_images(small):
    X, y, Q, _ = small
    clf = KNNClassifier(5, method=Recipe(deskew=True, blur_sigma=1.0, metric="minkowski", p=3, shifts=2)).fit(X, y)
    nb = clf.kneighbors_detail(Q[:3])
    q = clf.transform(Q[:3]).astype(np.float64)
    for j in range(3):
        for d, i, sh in zip(nb.distances[j], nb.indices[j], nb.shifts[j]):
            img = clf.training_image(i, sh).astype(np.float64)
            assert img.shape == q[j].shape == (32, 32)
            assert d == pytest.approx((np.abs(q[j] - img) ** 3).sum() ** (1 / 3), rel=1e-12)


# ------------------------------------------------------------------ preprocessing, presets


@pytest.mark.parametrize("name", list(PRESETS))
def test_training_digit_finds_itself_at_distance_zero(small, name):
    X, y, _, _ = small
    clf = KNNClassifier(3, method=name).fit(X[:150], y[:150])
    d, i = clf.kneighbors(X[:4])
    assert np.all(d[:, 0] == 0)
    nb = clf.kneighbors_detail(X[:4])
    for j in range(4):
        zero = nb.indices[j][nb.distances[j] == 0]
        assert j in zero
        assert tuple(nb.shifts[j][list(nb.indices[j]).index(j)]) == (0, 0)


def test_plain_matches_knnclassifier_exactly(small):
    X, y, Q, qy = small
    a = KNNClassifier(7, weights="distance", tie_break="nearest").fit(X, y)
    b = KNNClassifier(7, method="plain", weights="distance", tie_break="nearest").fit(X, y)
    for got, want in zip(b.kneighbors(Q), a.kneighbors(Q)):
        assert np.array_equal(got, want)
    for got, want in zip(b.kneighbors(), a.kneighbors()):  # leave-one-out
        assert np.array_equal(got, want)
    assert np.array_equal(b.predict(Q), a.predict(Q))
    assert np.array_equal(b.predict_proba(Q), a.predict_proba(Q))
    assert b.score(Q, qy) == a.score(Q, qy)
    d, i = b.kneighbors(Q[:1])
    eb, ea = b.explain(d[0], i[0]), a.explain(d[0], i[0])
    assert np.array_equal(eb.scores, ea.scores)
    assert (eb.winner, eb.tied_classes, eb.describe()) == (ea.winner, ea.tied_classes, ea.describe())


def test_sklearn_clone_and_params():
    clf = KNNClassifier(3, method="deskew+blur", weights="distance")
    params = clf.get_params()
    assert params["method"] == "deskew+blur" and params["n_neighbors"] == 3  # stored as given
    c2 = clone(clf)
    assert c2.get_params() == params
    r = Recipe(shifts=1)
    assert clone(KNNClassifier(method=r)).get_params()["method"] == r
    m = Method.parse("idm")
    assert clone(KNNClassifier(method=m)).get_params()["method"] == m
    clf.set_params(n_neighbors=9, method=r)
    assert clf.n_neighbors == 9 and clf.method == r


def test_recipe_serialises():
    for p in PRESETS.values():
        assert Recipe.from_json(p.recipe.to_json()) == p.recipe
        assert resolve_recipe(p.name) == p.recipe
        assert p.recipe.describe()
    assert resolve_recipe({"deskew": True}) == Recipe(deskew=True)
    assert Recipe(blur_sigma=1).to_json() == Recipe(blur_sigma=1.0).to_json()
    r = Recipe(shifts=np.int64(1), pca=None, candidates=np.int32(50), p=np.float32(3))
    assert r == Recipe(shifts=1, candidates=50) and r.to_json() == Recipe(shifts=1, candidates=50).to_json()
    assert hash(r) == hash(Recipe(shifts=1, candidates=50))
    assert Recipe(shifts=2).copies == 25 and Recipe(shifts=2, one_vote_per_digit=True).copies == 1


def test_k_larger_than_the_copies_raises(small):
    X, y, Q, _ = small
    clf = KNNClassifier(20, method=Recipe(shifts=1)).fit(X[:3], y[:3])  # 27 copies of 3 digits
    # more neighbours than digits: each digit at several shifts (the search asks each shift for at most 3)
    nb = clf.kneighbors_detail(Q[:4])
    want_d, want_i, want_s = materialised_neighbors(X[:3], Q[:4], 1, 20)
    assert np.array_equal(nb.indices, want_i) and np.array_equal(nb.shifts, want_s)
    np.testing.assert_allclose(nb.distances, want_d, rtol=1e-12)
    loo = clf.kneighbors_detail(n_neighbors=18)  # leave-one-out: 2 other digits x 9 copies
    assert loo.indices.shape == (3, 18) and not np.any(loo.indices == np.arange(3)[:, None])
    with pytest.raises(ParameterError, match="larger than the 18"):
        clf.kneighbors(n_neighbors=19)
    with pytest.raises(ParameterError, match="n_neighbors=20 is larger than the 3"):
        KNNClassifier(20, method=Recipe(shifts=1, one_vote_per_digit=True)).fit(X[:3], y[:3])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(metric="chebyshev"), "unknown metric"),
        (dict(shifts=-1), "shifts"),
        (dict(shifts=1.5), "shifts"),
        (dict(metric="minkowski", p=0.5), "p >= 1"),
        (dict(blur_sigma=-1), "blur_sigma"),
        (dict(pca=0), "pca"),
        (dict(pca=20, shifts=1), "pca cannot be combined with shifts"),
        (dict(rerank="tangent"), "unknown rerank"),
        (dict(rerank="idm", shifts=1), "idm"),
        (dict(candidates=0), "candidates"),
        (dict(idm_window=-1), "idm_window"),
        (dict(tangent_weight=1.0), "tangent_weight"),
        (dict(rerank="idm", tangent_weight=-1.0), "tangent_weight"),
        (dict(rerank="idm", tangent_penalty=float("nan")), "tangent_penalty"),
        (dict(rerank="idm", tangent_candidates=0), "tangent_candidates"),
        (dict(affine_copies=True), "rerank='idm'"),
        (dict(p2d_scale=1.0), "rerank='idm'"),
        (dict(rerank="idm", p2d_scale=-1.0), "p2d_scale"),
        (dict(rerank="idm", p2d_scale=1.0, p2d_penalty=float("inf")), "p2d_penalty"),
        (dict(rerank="idm", p2d_window=6), "p2d_window"),
        (dict(rerank="idm", match_candidates=0), "match_candidates"),
        (dict(rerank="idm", affine_copies=True, tangent_weight=1.0), "cannot be combined with tangent_weight"),
        (dict(rerank="idm", affine_copies=True, downsample=True), "downsample=False"),
    ],
)
def test_bad_recipe_raises(kwargs, words):
    with pytest.raises(ParameterError, match=words):
        Recipe(**kwargs)


def test_pca_larger_than_the_pixels_raises(small):
    X, y, _, _ = small
    with pytest.raises(ParameterError, match="pca=785 is more than the 784 features"):
        KNNClassifier(method=Recipe(pca=785)).fit(X, y)
    with pytest.raises(ParameterError, match="pca=101 is more than the 100 features"):
        KNNClassifier(method=Recipe(pca=101, downsample=True)).fit(X, y)
    with pytest.raises(ParameterError, match="unknown method 'best-ever'"):
        KNNClassifier(method="best-ever").fit(X, y)
    with pytest.raises(ParameterError, match="unknown recipe fields"):
        Recipe.from_dict({"deskw": True})


def test_pca_recipe_is_euclidean_on_projection(small):
    X, y, Q, _ = small
    s = MethodSearch(Recipe(pca=30)).fit(X)
    nb = s.kneighbors(Q, 4)
    Z = s._rows(X)
    zq = s._rows(Q)
    d = np.sqrt(((zq[:, None, :] - Z[None]) ** 2).sum(-1))
    np.testing.assert_allclose(nb.distances, np.sort(d, axis=1)[:, :4], rtol=1e-9)


# ------------------------------------------------------------------ Method: how neighbours are found


@pytest.mark.parametrize("metric", METRICS)
def test_method_parse_metric_names(metric):
    m = Method.parse(metric)
    assert m == Method.classic(metric) and m.is_classic and m.recipe is None and m.preset is None
    assert m.name == metric and m.p == CLASSIC_P == 3.0 and m.copies == 1
    assert (m.k, m.weights) == (5, "uniform")
    assert isinstance(m.make_search(), MetricSearch)
    assert m.distance_name == ("minkowski (p=3) distance" if metric == "minkowski" else f"{metric} distance")
    assert Method.parse(m) is m


_FIELDS_BEFORE_TANGENTS = ("deskew", "blur_sigma", "downsample", "pca", "metric", "p", "shifts", "one_vote_per_digit",
                           "rerank", "candidates", "idm_window", "idm_context")


def test_method_classic_power_and_cache_id():
    assert Method.classic("minkowski", 4).label == "minkowski (p=4)"
    assert Method.classic("minkowski", 4).p == 4.0 and isinstance(Method.classic("minkowski", 4).p, float)
    # p is part of what minkowski finds, and nothing else's
    assert Method.classic("minkowski", 3).cache_id() != Method.classic("minkowski", 4).cache_id()
    assert Method.classic("euclidean", 3).cache_id() == Method.classic("euclidean", 7).cache_id()
    assert Method.classic("euclidean").cache_id() != Method.classic("cosine").cache_id()
    # The tangent fields enter the cache id only when used: IDM lists cached before them stay valid.
    idm = Method.parse("idm")
    assert "tangent" not in idm.cache_id() and '"idm_window": 2' in idm.cache_id()
    assert Method.parse(idm.recipe.replace(tangent_penalty=0.5)).cache_id() == idm.cache_id()
    with_td = Method.parse(idm.recipe.replace(tangent_weight=1.0))
    assert with_td.cache_id() != Method.parse(idm.recipe.replace(tangent_weight=2.0)).cache_id() != idm.cache_id()
    # So do the extra matches' (affine copies, P2DHMDM): idm+blur's cached lists stay valid.
    blur = Method.parse("idm+blur")
    for name in ("affine_copies", "p2d_scale", "p2d_window", "p2d_deviation", "p2d_penalty", "match_candidates"):
        assert name not in blur.cache_id() and name not in idm.cache_id()
    assert blur.cache_id() == json.dumps({"recipe": {k: v for k, v in blur.recipe.to_dict().items()
                                                     if k in _FIELDS_BEFORE_TANGENTS}}, sort_keys=True)
    assert Method.parse(blur.recipe.replace(p2d_penalty=5.0, match_candidates=9)).cache_id() == blur.cache_id()
    best = Method.parse("idm+affine+p2d")
    assert '"affine_copies": true' in best.cache_id() and '"p2d_scale": 0.9311' in best.cache_id()
    assert best.cache_id() != Method.parse(best.recipe.replace(p2d_scale=1.0)).cache_id() != blur.cache_id()
    assert best.cache_id() != Method.parse(best.recipe.replace(affine_copies=False)).cache_id()
    # frozen and hashable: it keys caches
    assert len({Method.parse("idm"), Method.parse("idm"), Method.classic()}) == 2
    with pytest.raises(AttributeError):
        Method.classic().metric = "cosine"


@pytest.mark.parametrize("name", list(PRESETS))
def test_method_parse_preset_names(name):
    preset = PRESETS[name]
    m = Method.parse(name)
    assert not m.is_classic and m.recipe == preset.recipe and m.preset == name
    assert m.name == name and m.label == preset.label
    assert (m.k, m.weights) == (preset.k, preset.weights)  # the preset's vote, chosen on validation
    assert m.copies == preset.recipe.copies
    assert m.distance_name == preset.recipe.distance_name
    assert isinstance(m.make_search(), MethodSearch) and m.make_search().recipe == preset.recipe
    assert Method.parse(preset) == m  # a Preset too
    # the cache id is the recipe's: a preset and its recipe share cached lists
    assert m.cache_id() == Method.parse(preset.recipe).cache_id()
    assert name not in m.cache_id() or name in preset.recipe.to_json()


def test_method_parse_recipes_dicts_and_json():
    r = Recipe(deskew=True, blur_sigma=1.0, shifts=1)
    m = Method.parse(r)
    assert m.recipe == r and m.preset is None and not m.is_classic
    assert m.name == r.describe() == m.label
    assert (m.k, m.weights) == (5, "uniform")  # no preset: the classic defaults
    assert m.copies == 9
    assert Method.parse(r.to_dict()) == m
    assert Method.parse(r.to_json()) == m
    assert Method.parse("  " + r.to_json()) == m
    assert Method.parse({"deskew": True}) == Method(recipe=Recipe(deskew=True))
    assert Method.parse("idm").distance_name == "IDM distance"
    assert Method.parse("L3").distance_name == "L3 distance"


@pytest.mark.parametrize("value", ["chebyshev", "best-ever", "", "Euclidean", "[1]"])
def test_method_parse_bad_name_names_the_choices(value):
    with pytest.raises(ParameterError, match=re.escape(f"unknown method {value!r}; choose a metric")) as exc:
        Method.parse(value)
    for choice in (*METRICS, *PRESETS):
        assert choice in str(exc.value)
    assert isinstance(exc.value, KnnLabError) and isinstance(exc.value, ValueError)


@pytest.mark.parametrize("value, words", [
    ({"deskw": True}, "unknown recipe fields: deskw"),
    ('{"shifts": -1}', "shifts"),
    (3, "a recipe must be a Recipe, a preset name or a dict; got int"),
])
def test_method_parse_bad_recipes(value, words):
    with pytest.raises(ParameterError, match=words):
        Method.parse(value)


def test_method_parse_malformed_json_is_a_parameter_error():
    with pytest.raises(ParameterError):
        Method.parse('{"deskew": true')


@pytest.mark.parametrize("kwargs, words", [
    (dict(metric="chebyshev"), "unknown metric 'chebyshev'"),
    (dict(metric="minkowski", p=0.5), "p >= 1"),
    (dict(metric="minkowski", p=True), "p >= 1"),
    (dict(metric="minkowski", p="3"), "p >= 1"),
    (dict(recipe=Recipe(), preset="bogus"), "unknown method 'bogus'"),
])
def test_bad_method_fields_raise(kwargs, words):
    with pytest.raises(ParameterError, match=words):
        Method(**kwargs)


def test_metric_search_is_the_exact_search_behind_one_interface(small):
    X, y, Q, _ = small
    s = Method.classic("cosine").make_search(n_jobs=1).fit(X)
    nb = s.kneighbors(Q, 6)
    d, i = ExactSearch("cosine").fit(X).kneighbors(Q, 6)
    assert nb.shifts is None and s.copies == 1
    np.testing.assert_array_equal(nb.indices, i)
    np.testing.assert_array_equal(nb.distances, d)
    loo = s.kneighbors_training(4)
    d, i = ExactSearch("cosine").fit(X).kneighbors(X, 4, exclude=np.arange(len(X)))
    np.testing.assert_array_equal(loo.indices, i)
    np.testing.assert_array_equal(loo.distances, d)
    assert np.array_equal(s.training_image(7), X[7]) and s.training_image(7, (1, 1)).shape == (28, 28)
    assert np.array_equal(s.transform(Q[:2]), Q[:2])
    rows = Method.classic().make_search().fit(X.reshape(len(X), -1))
    assert rows.training_image(7).shape == (784,)


def vote_as_method_classifier_did(X, y, Q, recipe, k, weights, tie_break):
    """The removed MethodClassifier's predictions: MethodSearch's neighbours, then the vote."""
    classes, yi = np.unique(y, return_inverse=True)
    nb = MethodSearch(recipe).fit(X).kneighbors(Q, k)
    scores = tally(yi[nb.indices], nb.distances, len(classes), weights)
    winners, _ = decide(scores, yi[nb.indices], tie_break)
    return nb, classes[winners], scores / scores.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", ["deskew+blur+L3+shift1", "deskew+blur+pca", "idm"])
def test_knnclassifier_with_a_preset_equals_method_search_and_its_vote(small, name):
    X, y, Q, qy = small
    X, y = X[:200], y[:200]
    preset = PRESETS[name]
    clf = KNNClassifier(preset.k, method=name, weights=preset.weights, tie_break="nearest").fit(X, y)
    nb, pred, proba = vote_as_method_classifier_did(X, y, Q, preset.recipe, preset.k, preset.weights, "nearest")
    got = clf.kneighbors_detail(Q)
    assert np.array_equal(got.indices, nb.indices) and np.array_equal(got.distances, nb.distances)
    assert np.array_equal(got.shifts, nb.shifts)
    d, i = clf.kneighbors(Q)
    assert np.array_equal(d, nb.distances) and np.array_equal(i, nb.indices)
    assert np.array_equal(clf.predict(Q), pred)
    np.testing.assert_array_equal(clf.predict_proba(Q), proba)
    assert clf.score(Q, qy) == np.mean(pred == qy)
    assert clf.method_ == Method.parse(name) and clf.distance_name == preset.recipe.distance_name
    # leave-one-out is the search's (on fewer digits: every digit is a query)
    loo = MethodSearch(preset.recipe).fit(X[:60]).kneighbors_training(3)
    d, i = clf.fit(X[:60], y[:60]).kneighbors(n_neighbors=3)
    assert np.array_equal(i, loo.indices) and np.array_equal(d, loo.distances)
    assert not np.any(i == np.arange(60)[:, None])
    # transform and training_image are the recipe's
    s = MethodSearch(preset.recipe).fit(X)
    assert np.array_equal(clf.transform(Q[:2]), s.transform(Q[:2]))
    assert np.array_equal(clf.training_image(5, (1, 0)), s.training_image(5, (1, 0)))


def test_knnclassifier_method_equals_the_cached_lists(small, tmp_path, monkeypatch):
    """One search concept: the estimator and neighbor_lists find the same neighbours and votes."""
    monkeypatch.setenv("KNN_DIGIT_LAB_CACHE", str(tmp_path))
    X, y, Q, qy = small
    ds = Dataset(X, y, Q, qy, n_val=100)
    for method in ("deskew+blur+L3+shift1", Method.classic("manhattan")):
        m = Method.parse(method)
        lists = neighbor_lists(ds, method, "test", k_max=10)
        clf = KNNClassifier(m.k, method=method, weights=m.weights).fit(X, y)
        nb = clf.kneighbors_detail(Q, 10)
        assert np.array_equal(nb.indices, lists.indices) and np.array_equal(nb.distances, lists.distances)
        assert (nb.shifts is None) == (lists.shifts is None) == m.is_classic
        assert np.array_equal(clf.predict(Q), lists.predict(m.k, weights=m.weights))
    # method=None is classic kNN with metric and p
    a = KNNClassifier(3, metric="minkowski", p=4).fit(X[:100], y[:100])
    b = KNNClassifier(3, method=Method.classic("minkowski", 4)).fit(X[:100], y[:100])
    assert a.method_ == b.method_ and a.distance_name == "minkowski (p=4) distance"
    for got, want in zip(a.kneighbors(Q), b.kneighbors(Q)):
        assert np.array_equal(got, want)
    assert KNNClassifier(3, method="cosine", metric="manhattan").fit(X[:50], y[:50]).method_.metric == "cosine"


# ------------------------------------------------------------------ IDM


def context_features(img, c=1):
    """Reference: per pixel, the (2c+1)^2 patch of the two Sobel gradients (loops, obviously right)."""
    g = sobel_gradients(img[None], c)[0].astype(np.float64)  # (2, H+2c, W+2c)
    H, W = img.shape
    F = np.zeros((H, W, 2 * (2 * c + 1) ** 2))
    for y in range(H):
        for x in range(W):
            F[y, x] = g[:, y : y + 2 * c + 1, x : x + 2 * c + 1].ravel()
    return F


def test_sobel_gradients_are_shift_covariant(small):
    img = small[0][0]
    g = sobel_gradients(img[None], 3)[0]
    g_moved = sobel_gradients(translate(img, 1, -2)[None], 3)[0]
    assert np.array_equal(translate(g, 1, -2), g_moved)


def test_idm_self_zero_and_w0_is_euclidean_on_features(small):
    X = small[0][:6]
    q = X[0]
    assert idm_distances(q, X[:1], 2)[0] == 0
    d0 = idm_distances(q, X, window=0)
    Fq = context_features(q)
    want = np.array([np.sqrt(((Fq - context_features(y)) ** 2).sum()) for y in X])
    np.testing.assert_allclose(d0, want, rtol=1e-12)
    d1, d2 = idm_distances(q, X, window=1), idm_distances(q, X, window=2)
    assert np.all(d2 <= d1) and np.all(d1 <= d0)
    assert np.all(d1[1:] > 0)


def test_idm_matches_loop_reference_with_window(small):
    X = small[0][10:13]
    q = small[2][0]
    w = 1
    Fq = context_features(q)
    H, W = q.shape
    want = []
    for y in X:
        g = sobel_gradients(y[None], 1 + w)[0].astype(np.float64)
        total = 0.0
        for py in range(H):
            for px in range(W):
                best = np.inf
                for dy in range(-w, w + 1):
                    for dx in range(-w, w + 1):
                        cy, cx = py + dy + w, px + dx + w  # top-left of the patch in the padded frame
                        f = g[:, cy : cy + 3, cx : cx + 3].ravel()
                        best = min(best, ((Fq[py, px] - f) ** 2).sum())
                total += best
        want.append(np.sqrt(total))
    np.testing.assert_allclose(idm_distances(q, X, window=w), want, rtol=1e-12)


def test_idm_tolerates_one_pixel_shifts(small):
    digit = small[0][3]
    assert digit[:3].max() == 0 and digit[-3:].max() == 0 and digit[:, :3].max() == 0 and digit[:, -3:].max() == 0
    for dy, dx in [(1, 0), (0, -1), (1, 1), (-1, 1)]:
        moved = translate(digit, dy, dx)
        assert idm_distances(moved, digit[None], window=1)[0] == 0
        assert idm_distances(moved, digit[None], window=0)[0] > 0
    assert idm_distances(translate(digit, 2, 0), digit[None], window=1)[0] > 0
    assert idm_distances(translate(digit, 2, 0), digit[None], window=2)[0] == 0

# ------------------------------------------------------------------ P2DHMDM


def p2d_reference(q, y, w, v, penalty, c=1):
    """Plain enumeration of every alignment of the pseudo-2D model (no dynamic programming)."""
    H, W = q.shape
    pad = c + w + v
    Fq = context_features(q, c)
    g = sobel_gradients(y[None], pad)[0].astype(np.float64)
    side = 2 * c + 1

    @functools.cache
    def cost(py, px, dy, dx):  # the candidate's patch of query pixel (py, px) displaced by (dy, dx)
        r, s = py + dy - c + pad, px + dx - c + pad
        return ((Fq[py, px] - g[:, r : r + side, s : s + side].ravel()) ** 2).sum()

    def paths(length):  # offset sequences in -w..w changing by at most one per step, with their penalties
        for seq in itertools.product(range(-w, w + 1), repeat=length):
            if all(abs(a - b) <= 1 for a, b in zip(seq, seq[1:])):
                yield seq, penalty * sum(a != b for a, b in zip(seq, seq[1:]))

    col = {}
    for px in range(W):
        for dxc in range(-w, w + 1):
            best = np.inf
            for dys, pen in paths(H):
                total = pen
                for py, dy in enumerate(dys):
                    total += min(cost(py, px, dy, dxc + dev) + penalty * abs(dev) for dev in range(-v, v + 1))
                best = min(best, total)
            col[px, dxc] = best
    return np.sqrt(min(pen + sum(col[px, d] for px, d in enumerate(dxs)) for dxs, pen in paths(W)))


@pytest.mark.parametrize("w, v, penalty, rows", [(1, 1, 0.0, 7), (1, 0, 2e6, 7), (2, 1, 1e7, 5)])
def test_p2dhmdm_matches_loop_reference(small, w, v, penalty, rows):
    # rows x 6 crops of digits (the enumeration is exponential in the size): from row 9, columns 10..15
    X = small[0][20:23, 9 : 9 + rows, 10:16]
    q = small[2][1, 9 : 9 + rows, 10:16]
    assert q.max() > 0 and all(x.max() > 0 for x in X)
    want = [p2d_reference(q, y, w, v, penalty) for y in X]
    np.testing.assert_allclose(p2dhmdm_distances(q, X, w, v, penalty=penalty), want, rtol=1e-12)


def test_displacement_costs_are_idm_local_costs(small):
    X = small[0][:4]
    q = small[2][2]
    costs = displacement_costs(q, X, 1, 2)
    assert costs.shape == (3, 5, 28, 28, 4) and costs.dtype == np.int64
    # the IDM is the per-pixel minimum over the displacements
    want = np.sqrt(costs[:, 1:4].min(axis=(0, 1)).sum(axis=(0, 1)))
    np.testing.assert_allclose(idm_distances(q, X, window=1), want, rtol=1e-12)


def test_p2dhmdm_bounds_and_shifts(small):
    X = small[0][:8]
    q = small[2][3]
    d = p2dhmdm_distances(q, X, 2, 1)
    # its alignments are a subset of IDM's with window 3, a superset of the identity
    assert np.all(d >= idm_distances(q, X, window=3) - 1e-9)
    np.testing.assert_allclose(p2dhmdm_distances(q, X, 0, 0), idm_distances(q, X, window=0), rtol=1e-12)
    assert np.all(d <= idm_distances(q, X, window=0))
    # tying the pixels together costs something against the free IDM with the same window
    assert np.all(p2dhmdm_distances(q, X, 2, 0) >= idm_distances(q, X, window=2) - 1e-9)
    assert np.any(p2dhmdm_distances(q, X, 2, 0) > idm_distances(q, X, window=2) + 1e-6)
    # a whole digit shifted by up to the window is a perfect match; a penalty does not charge a constant shift
    digit = small[0][3]
    for dy, dx in [(2, 0), (0, -2), (1, 2)]:
        moved = translate(digit, dy, dx)
        assert p2dhmdm_distances(moved, digit[None], 2, 0, penalty=1e6)[0] == 0
    assert p2dhmdm_distances(translate(digit, 3, 0), digit[None], 2, 1)[0] > 0
    assert p2dhmdm_distances(translate(digit, 0, 3), digit[None], 2, 1)[0] == 0  # column offset 2 + deviation 1
    assert len(p2dhmdm_distances(q, X[:0])) == 0


def test_idm_classifier_neighbours_sorted_by_idm(small):
    X, y, Q, qy = small
    r = Recipe(rerank="idm", candidates=40, idm_window=1)
    clf = KNNClassifier(3, method=r).fit(X, y)
    nb = clf.kneighbors_detail(Q[:6], 10)
    assert np.all(np.diff(nb.distances, axis=1) >= 0)
    for j in range(6):
        np.testing.assert_allclose(nb.distances[j], idm_distances(Q[j], X[nb.indices[j]], 1), rtol=1e-12)
        # the neighbours are the IDM-best of the 40 euclidean candidates
        l2 = np.sqrt(((X.reshape(len(X), -1).astype(np.float64) - Q[j].reshape(-1)) ** 2).sum(1))
        cand = np.lexsort((np.arange(len(X)), l2))[:40]
        all_idm = idm_distances(Q[j], X[cand], 1)
        best = cand[np.lexsort((cand, all_idm))[:10]]
        assert np.array_equal(nb.indices[j], best)
    assert clf.distance_name == "IDM distance"
    assert clf.score(Q, qy) >= 0.9


def test_idm_float_images_agree_with_uint8(small):
    X, _, Q, _ = small
    a = idm_distances(Q[0], X[:5], 1)
    b = idm_distances(Q[0].astype(np.float32), X[:5].astype(np.float32), 1)
    np.testing.assert_allclose(a, b, rtol=1e-5)


# ------------------------------------------------------------------ tangent distance


def loop_tangents(img):
    """Reference: the 7 tangents of Simard et al. pixel by pixel, each scaled to unit length."""
    H, W = img.shape
    f = img.astype(np.float64)
    at = lambda y, x: f[y, x] if 0 <= y < H and 0 <= x < W else 0.0  # noqa: E731
    t = np.zeros((7, H, W))
    for y in range(H):
        for x in range(W):
            gx, gy = (at(y, x + 1) - at(y, x - 1)) / 2, (at(y + 1, x) - at(y - 1, x)) / 2
            cy, cx = (y - (H - 1) / 2) / (H / 2), (x - (W - 1) / 2) / (W / 2)
            t[:, y, x] = [gx, gy, cy * gx - cx * gy, cx * gx + cy * gy, cx * gx - cy * gy, cy * gx + cx * gy,
                          gx * gx + gy * gy]
    t = t.reshape(7, -1)
    n = np.sqrt((t * t).sum(1, keepdims=True))
    return t / np.where(n > 0, n, 1)


def test_tangent_distance_matches_least_squares_reference(small):
    X = small[0][20:24]
    q = small[2][1]
    tq = loop_tangents(q)
    np.testing.assert_allclose(tangent_vectors(q[None])[0], tq, rtol=1e-12, atol=1e-15)
    for penalty in (0.0, 0.05, 2.0):
        want = []
        for y in X:
            M = np.concatenate([tq, -loop_tangents(y)]).T  # q + T_q a - y - T_y b = d + M (a, b)
            d = q.astype(np.float64).ravel() - y.astype(np.float64).ravel()
            A = np.vstack([M, np.sqrt(penalty) * np.eye(14)])
            x = np.linalg.lstsq(A, np.concatenate([-d, np.zeros(14)]), rcond=None)[0]
            want.append(np.sqrt(((d + M @ x) ** 2).sum() + penalty * (x * x).sum()))
        np.testing.assert_allclose(tangent_distances(q, X, penalty), want, rtol=1e-9)


def test_tangent_distance_forgives_small_rotations_never_above_euclidean(small):
    from scipy.ndimage import gaussian_filter, rotate

    X = small[0]
    digit = X[5]
    smooth = gaussian_filter(digit.astype(np.float64), 1)  # tangents are first-order: smooth strokes
    turned = np.clip(rotate(smooth, 4, reshape=False, order=1), 0, 255)
    l2 = np.sqrt(((turned - smooth) ** 2).sum())
    assert tangent_distances(turned, smooth[None], 0.01)[0] < 0.3 * l2  # measured 0.23
    assert tangent_distances(digit, digit[None], 0.01)[0] < 1e-6
    assert np.all(tangent_distances(digit, X[:50], 0.01) <= np.sqrt(((X[:50].reshape(50, -1) - digit.reshape(-1).astype(np.float64)) ** 2).sum(1)) + 1e-9)
    # a huge penalty leaves the euclidean distance
    np.testing.assert_allclose(tangent_distances(digit, X[:5], 1e12),
                               np.sqrt(((X[:5].reshape(5, -1) - digit.reshape(-1).astype(np.float64)) ** 2).sum(1)), rtol=1e-6)


def test_idm_with_tangent_distance_ranks_the_idm_best_by_the_sum(small):
    X, y, Q, qy = small
    r = Recipe(rerank="idm", candidates=40, idm_window=1, tangent_weight=3.0, tangent_penalty=0.2,
               tangent_candidates=15)
    clf = KNNClassifier(3, method=r).fit(X, y)
    nb = clf.kneighbors_detail(Q[:5], 8)
    for j in range(5):
        l2 = np.sqrt(((X.reshape(len(X), -1).astype(np.float64) - Q[j].reshape(-1)) ** 2).sum(1))
        cand = np.lexsort((np.arange(len(X)), l2))[:40]
        all_idm = idm_distances(Q[j], X[cand], 1)
        top = cand[np.lexsort((cand, all_idm))[:15]]  # the 15 best by IDM get the tangent distance
        both = np.sqrt(idm_distances(Q[j], X[top], 1) ** 2 + 3.0 * tangent_distances(Q[j], X[top], 0.2) ** 2)
        want = np.lexsort((top, both))[:8]
        assert np.array_equal(nb.indices[j], top[want])
        np.testing.assert_allclose(nb.distances[j], both[want], rtol=1e-12)
    assert clf.distance_name == "IDM + tangent distance"
    assert "tangent distance (x3, penalty 0.2) on the top 15 by IDM" in r.describe()


# ------------------------------------------------------------------ affine copies and the nearest match


def explicit_affine_copies(images, blur_sigma):
    """Reference: each image transformed one by one with scipy, rounded, then blurred (as issue #22's stage3.py)."""
    from scipy.ndimage import affine_transform

    from knn_core.features import blur

    c = np.array([(images.shape[1] - 1) / 2, (images.shape[2] - 1) / 2])
    out = []
    for M in affine_matrices():
        f = np.stack([affine_transform(im.astype(np.float32), M, offset=c - M @ c, order=1, mode="constant")
                      for im in images])
        r = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        out.append(blur(r, blur_sigma) if blur_sigma else r)
    return np.stack(out)


def test_affine_copies_are_the_explicitly_built_copies(small):
    from knn_core.features import deskew

    X = small[0]
    dk = deskew(X[:40], progress=False)
    for sigma in (0.0, 0.5):
        got = affine_copies(dk, sigma)
        assert got.shape == (6, 40, 28, 28) and got.dtype == np.uint8 and len(AFFINE_NAMES) == 6
        np.testing.assert_array_equal(got, explicit_affine_copies(dk, sigma))
    M = affine_matrices()
    # rotations by +-8 degrees, scalings by 0.9 and 1.1 (output -> input: 1/s), 10% wider / taller
    assert np.allclose([np.degrees(np.arctan2(m[1, 0], m[0, 0])) for m in M[:2]], [8, -8])
    np.testing.assert_allclose([np.linalg.det(m) for m in M[:2]], 1)
    np.testing.assert_allclose(M[2], np.eye(2) / 0.9)
    np.testing.assert_allclose(M[4], np.diag([1 / 0.9, 1 / 1.1]))
    # a scaled-up copy has more ink, a scaled-down one less; a blank digit stays blank
    ink = affine_copies(dk, 0.0).reshape(6, 40, -1).astype(np.int64).sum(-1)
    assert np.all(ink[3] > ink[2])  # scale 1.1 against 0.9
    assert not affine_copies(np.zeros((1, 28, 28), np.uint8), 0.5).any()


def test_nearest_match_distance_against_plain_reference(small):
    from knn_core.features import blur, deskew

    X, y, Q, _ = small
    X = X[:150]
    r = Recipe(deskew=True, blur_sigma=0.5, rerank="idm", candidates=30, idm_window=1, affine_copies=True,
               p2d_scale=0.9, p2d_window=1, p2d_penalty=500.0, match_candidates=10)
    nb = MethodSearch(r, n_jobs=1).fit(X).kneighbors(Q[:4], 6)
    dk, dq = deskew(X, progress=False), deskew(Q[:4], progress=False)
    T, P = blur(dk, 0.5).astype(np.float64), blur(dq, 0.5)
    ways_won = set()
    for j in range(4):
        l2 = ((T.reshape(len(T), -1) - P[j].reshape(-1)) ** 2).sum(1)
        cand = np.lexsort((np.arange(len(X)), l2))[:30]
        idm = idm_distances(P[j], blur(dk[cand], 0.5), 1)
        top = cand[np.lexsort((cand, idm))[:10]]  # the 10 best by IDM get the extra matches
        ways = [idm_distances(P[j], blur(dk[top], 0.5), 1)]
        ways += [idm_distances(P[j], c, 1) for c in explicit_affine_copies(dk[top], 0.5)]
        ways.append(0.9 * p2dhmdm_distances(P[j], blur(dk[top], 0.5), 1, 1, penalty=500.0))
        ways = np.stack(ways)
        want = ways.min(0)
        ways_won |= set(np.argmin(ways, 0).tolist())
        o = np.lexsort((top, want))[:6]
        assert np.array_equal(nb.indices[j], top[o])
        np.testing.assert_allclose(nb.distances[j], want[o], rtol=1e-12)
    assert len(ways_won) >= 3  # IDM, copies and P2D each give some candidate's distance
    # one query on two threads (the Draw page's way) gives the same
    one = MethodSearch(r, n_jobs=2).fit(X).kneighbors(Q[1:2], 6)
    assert np.array_equal(one.indices, nb.indices[1:2]) and np.array_equal(one.distances, nb.distances[1:2])
    assert r.distance_name == "nearest-match distance (IDM, affine copies, P2DHMDM)"
    assert "the top 10 by IDM also against 6 affine copies and P2DHMDM (w=1" in r.describe()
    assert Method.parse(r.replace(affine_copies=False)).distance_name == "nearest-match distance (IDM, P2DHMDM)"


def test_nearest_match_preset_round_trips_through_the_command_line(small, tmp_path, monkeypatch, capsys):
    import knn_core.cli as cli

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    X, y, Q, qy = small
    ds = Dataset(X[:150], y[:150], Q[:10], qy[:10], n_val=50)
    monkeypatch.setattr(cli, "_dataset", lambda args: ds)
    preset = PRESETS["idm+affine+p2d"]
    assert cli.main(["evaluate", "--method", "idm+affine+p2d"]) == 0
    out = capsys.readouterr().out
    assert preset.recipe.describe() in out and "test error" in out
    lists = neighbor_lists(ds, "idm+affine+p2d", "test")  # what evaluate computed, read back from the cache
    clf = KNNClassifier(preset.k, method="idm+affine+p2d", weights=preset.weights).fit(X[:150], y[:150])
    d, i = clf.kneighbors(Q[:10])
    np.testing.assert_array_equal(lists.indices[:, : preset.k], i)
    np.testing.assert_array_equal(lists.distances[:, : preset.k], d)
    err = 100 * np.mean(clf.predict(Q[:10]) != qy[:10])
    assert f"(test error {err:.2f}%; literature 0.52% (Keysers et al., TPAMI 2007 (P2DHMDM)))" in out


# ------------------------------------------------------------------ cached lists


def test_recipe_neighbor_lists_cached_and_original_indices(small, tmp_path, monkeypatch):
    monkeypatch.setenv("KNN_DIGIT_LAB_CACHE", str(tmp_path))
    X, y, Q, qy = small
    ds = Dataset(X[:300], y[:300], Q, qy, n_val=100)
    r = Recipe(deskew=True, shifts=1)
    assert not is_cached(ds, r, "test", k_max=8)
    t0, c0 = time.perf_counter(), time.process_time()
    lists = neighbor_lists(ds, r, "test", k_max=8)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert is_cached(ds, r, "test", k_max=8)
    assert lists.indices.shape == (len(Q), 8) and lists.shifts.shape == (len(Q), 8, 2)
    assert lists.shifts.dtype == np.int8
    assert 0 < lists.seconds <= wall and 0 < lists.cpu_seconds <= cpu  # the search's own time, within the call
    assert lists.method == Method(recipe=r)
    want = MethodSearch(r).fit(X[:300]).kneighbors(Q, 8)
    assert np.array_equal(lists.indices, want.indices) and np.array_equal(lists.shifts, want.shifts)
    assert np.array_equal(lists.distances, want.distances)
    np.testing.assert_array_equal(lists.train_rows, np.arange(300))
    val = neighbor_lists(ds, r, "val", k_max=8)
    assert val.indices.max() < 200 and len(val.query_labels) == 100
    np.testing.assert_array_equal(val.train_rows, np.arange(200))
    # a training subset: indices into the subset, train_rows into the dataset
    sub = neighbor_lists(ds, r, "test", train_size=120, k_max=8)
    keep = stratified_subset(ds.train_labels, 120)
    np.testing.assert_array_equal(sub.train_rows, keep)
    want = MethodSearch(r).fit(X[keep]).kneighbors(Q, 8)
    assert np.array_equal(sub.indices, want.indices) and np.array_equal(sub.shifts, want.shifts)
    np.testing.assert_array_equal(sub.neighbor_rows(8), keep[want.indices])
    # k_max is at most what the split holds: 3 digits x 9 shifted copies
    tiny = Dataset(X[:13], y[:13], Q[:2], qy[:2], n_val=10)
    assert neighbor_lists(tiny, r, "val", k_max=50).k_max == 27
    assert neighbor_lists(tiny, r.replace(one_vote_per_digit=True), "val", k_max=50).k_max == 3

    direct = KNNClassifier(3, method=r).fit(X[:300], y[:300]).score(Q, qy)  # searched here, before the patch

    def boom(*a, **k):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(MethodSearch, "fit", boom)
    again = neighbor_lists(ds, r, "test", k_max=8)
    assert np.array_equal(again.indices, lists.indices) and again.seconds == lists.seconds
    assert np.array_equal(again.shifts, lists.shifts) and again.method == lists.method
    assert again.accuracy(3) == lists.accuracy(3) == direct  # the vote of the read lists: the classifier's


def test_float_rows_of_whole_numbers_are_the_uint8_digits(small):
    X, y, Q, _ = small
    a = KNNClassifier(3, method="deskew+blur").fit(X, y)
    b = KNNClassifier(3, method="deskew+blur").fit(X.reshape(len(X), -1).astype(np.float32), y)
    for got, want in zip(b.kneighbors(Q.reshape(len(Q), -1).astype(np.float64)), a.kneighbors(Q)):
        assert np.array_equal(got, want)
    # Scaled to [0, 1]: float arithmetic, the same neighbours
    c = KNNClassifier(3, method="plain").fit(X / 255.0, y)
    assert np.array_equal(c.kneighbors(Q / 255.0)[1], KNNClassifier(3, method="plain").fit(X, y).kneighbors(Q)[1])


def test_command_line_methods_and_evaluate_method(small, tmp_path, monkeypatch, capsys):
    import knn_core.cli as cli

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    X, y, Q, qy = small
    ds = Dataset(X[:300], y[:300], Q, qy, n_val=100)
    monkeypatch.setattr(cli, "_dataset", lambda args: ds)
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "not yet" in out and "Keysers" in out
    assert cli.main(["evaluate", "--method", "deskew", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "deskew + L2" in out and "test error" in out
    assert cli.main(["methods"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| deskew |"))
    assert "not yet" not in line
    assert cli.main(["evaluate", "--method", "nonsense"]) == 2
    assert "unknown method" in capsys.readouterr().err
