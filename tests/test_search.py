"""knn_core.search.ExactSearch: exact neighbours, ordered by (distance, index).

References: scikit-learn's float64 brute force (NearestNeighbors), and for
uint8 images an exact integer reference (squared distances of uint8 rows are
integers below 2**53, so float64 matrix products of them are exact).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from knn_core.errors import ParameterError
from knn_core.search import METRICS, ExactSearch

# --------------------------------------------------------------------------- helpers


def sk_metric(metric):
    """scikit-learn's name and p for one of ours (minkowski: p=3, as KNNClassifier's default)."""
    return {"minkowski": ("minkowski", 3), "manhattan": ("manhattan", 2)}.get(metric, (metric, 2))


def sklearn_kneighbors(X, Q, k, metric):
    name, p = sk_metric(metric)
    X = np.asarray(X).reshape(len(X), -1).astype(np.float64)
    Q = np.asarray(Q).reshape(len(Q), -1).astype(np.float64)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=name, p=p).fit(X)
    return nn.kneighbors(Q)


def true_distances(X, Q, ind, metric):
    """Distances recomputed from scratch in float64 for the (query, index) pairs in `ind`."""
    X = np.asarray(X).reshape(len(X), -1).astype(np.float64)
    Q = np.asarray(Q).reshape(len(Q), -1).astype(np.float64)
    a = np.repeat(Q[:, None, :], ind.shape[1], axis=1)
    b = X[ind]
    if metric == "euclidean":
        return np.sqrt(((a - b) ** 2).sum(-1))
    if metric == "manhattan":
        return np.abs(a - b).sum(-1)
    if metric == "minkowski":
        return (np.abs(a - b) ** 3).sum(-1) ** (1 / 3)
    assert metric == "cosine"
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    dot = (a * b).sum(-1)
    cos = np.divide(dot, na * nb, out=np.zeros_like(dot), where=(na * nb) > 0)
    return 1.0 - cos


def assert_ordered(d, i):
    """Rows sorted by (distance, index), no index twice."""
    assert np.all(np.diff(d, axis=1) >= 0), "distances not ascending"
    same = np.diff(d, axis=1) == 0
    assert np.all(np.diff(i, axis=1)[same] > 0), "equal distances not ordered by index"
    for row in i:
        assert len(set(row.tolist())) == len(row)


def assert_matches_sklearn(X, Q, k, metric, d, i, tol=1e-9):
    """Equal to scikit-learn except in the order of exactly equal distances."""
    sd, si = sklearn_kneighbors(X, Q, k, metric)
    assert d.shape == i.shape == (len(Q), k)
    assert d.dtype == np.float64 and i.dtype == np.int64
    np.testing.assert_allclose(d, sd, rtol=tol, atol=tol)
    ours_true = true_distances(X, Q, i, metric)
    np.testing.assert_allclose(d, ours_true, rtol=1e-12, atol=1e-12)
    diff = i != si
    if diff.any():  # only where the two candidates are at the same distance
        theirs_true = true_distances(X, Q, si, metric)
        np.testing.assert_allclose(ours_true[diff], theirs_true[diff], rtol=1e-12, atol=1e-12)
    assert_ordered(d, i)
    return int(diff.sum())


def exact_sq(X, Q):
    """Exact squared euclidean distances of uint8 rows (float64 holds them exactly)."""
    X = X.reshape(len(X), -1).astype(np.float64)
    Q = Q.reshape(len(Q), -1).astype(np.float64)
    return (Q * Q).sum(1)[:, None] + (X * X).sum(1)[None, :] - 2.0 * (Q @ X.T)


def exact_reference(X, Q, k):
    """Indices by (exact squared distance, index) and their exact distances."""
    sq = exact_sq(X, Q)
    assert np.all(sq == np.round(sq))
    order = np.argsort(sq, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(sq, order, axis=1)), order


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def search(X, Q, k, metric, **kw):
    p = 3 if metric == "minkowski" else 2
    return ExactSearch(metric, p=p).fit(X).kneighbors(Q, k, **kw)


# --------------------------------------------------------------------------- random data


def random_data(kind, rng):
    if kind == "uint8_images":  # (N, 28, 28) images, as the app passes them
        return rng.integers(0, 256, (90, 28, 28), dtype=np.uint8), rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    if kind == "sparse_uint8":  # mostly-zero strokes, like MNIST
        X = (rng.random((100, 64)) < 0.2) * rng.integers(1, 256, (100, 64))
        Q = (rng.random((11, 64)) < 0.2) * rng.integers(1, 256, (11, 64))
        return X.astype(np.uint8), Q.astype(np.uint8)
    if kind == "float_features":
        return rng.normal(size=(150, 12)), rng.normal(size=(20, 12))
    if kind == "offset_large":  # far from the origin and large: the centring and the error bound matter
        return rng.normal(size=(120, 6)) * 1e3 + 5e4, rng.normal(size=(15, 6)) * 1e3 + 5e4
    if kind == "tiny_scale":
        return rng.normal(size=(120, 5)) * 1e-4, rng.normal(size=(15, 5)) * 1e-4
    if kind == "float32_features":
        return rng.random((80, 30), dtype=np.float32), rng.random((9, 30), dtype=np.float32)
    raise AssertionError(kind)


KINDS = ["uint8_images", "sparse_uint8", "float_features", "offset_large", "tiny_scale", "float32_features"]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_random_data_matches_sklearn(kind, metric):
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{metric}".encode()))
    X, Q = random_data(kind, rng)
    s = ExactSearch(metric, p=3).fit(X)
    for k in (1, 5, len(X)):
        d, i = s.kneighbors(Q, k)
        assert_matches_sklearn(X, Q, k, metric, d, i)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,k", [(1, 1), (2, 2), (3, 1), (3, 3), (7, 2), (11, 3), (12, 12)])
def test_tiny_training_sets(metric, n, k):
    rng = np.random.default_rng(n * 100 + k)
    X = rng.normal(size=(n, 4)) + 3.0
    Q = rng.normal(size=(6, 4)) + 3.0
    d, i = search(X, Q, k, metric)
    assert_matches_sklearn(X, Q, k, metric, d, i)
    if n == k:  # every training row, each once
        assert np.all(np.sort(i, axis=1) == np.arange(n))


def test_uint8_training_float_queries_match_sklearn():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (200, 49), dtype=np.uint8)
    Q = rng.random((10, 49)) * 255
    for metric in ("euclidean", "cosine", "manhattan"):
        d, i = search(X, Q, 7, metric)
        assert_matches_sklearn(X, Q, 7, metric, d, i)


def test_images_and_rows_give_the_same_result():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (50, 12, 12), dtype=np.uint8)
    Q = rng.integers(0, 256, (5, 12, 12), dtype=np.uint8)
    a = ExactSearch().fit(X).kneighbors(Q, 4)
    b = ExactSearch().fit(X.reshape(50, 144)).kneighbors(Q.reshape(5, 144), 4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_cosine_all_zero_rows_match_sklearn():
    """A zero row is at cosine distance 1 from everything (scikit-learn's convention)."""
    rng = np.random.default_rng(5)
    X = rng.integers(0, 5, (40, 6)).astype(np.uint8)
    X[[3, 17]] = 0
    Q = rng.integers(0, 5, (8, 6)).astype(np.uint8)
    Q[0] = 0
    d, i = search(X, Q, 40, "cosine")
    assert_matches_sklearn(X, Q, 40, "cosine", d, i)
    np.testing.assert_array_equal(d[0], np.ones(40))  # zero query: all at distance exactly 1
    np.testing.assert_array_equal(i[0], np.arange(40))  # ... so ordered by index


# --------------------------------------------------------------------------- minkowski, any p


def minkowski_reference(X, Q, k, p):
    """scikit-learn's float64 brute force with minkowski p, and a from-scratch distance function."""
    X = np.asarray(X).reshape(len(X), -1).astype(np.float64)
    Q = np.asarray(Q).reshape(len(Q), -1).astype(np.float64)
    sd, si = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="minkowski", p=p).fit(X).kneighbors(Q)

    def true(ind):
        return (np.abs(Q[:, None, :] - X[ind]) ** p).sum(-1) ** (1 / p)

    return sd, si, true


@pytest.mark.parametrize("p", [1, 1.5, 2.5, 4])
@pytest.mark.parametrize("kind", ["uint8_images", "float_features", "offset_large"])
def test_minkowski_with_any_p_matches_sklearn(kind, p):
    """The README: minkowski with any p >= 1 is exact (3 is only the classic default)."""
    rng = np.random.default_rng(zlib.crc32(f"{kind}/minkowski/{p}".encode()))
    X, Q = random_data(kind, rng)
    s = ExactSearch("minkowski", p=p).fit(X)
    for k in (1, 5, len(X)):
        d, i = s.kneighbors(Q, k)
        sd, si, true = minkowski_reference(X, Q, k, p)
        np.testing.assert_allclose(d, sd, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(d, true(i), rtol=1e-10, atol=1e-10)  # float64 rounding, any summation order
        diff = i != si
        np.testing.assert_allclose(true(i)[diff], true(si)[diff], rtol=1e-12, atol=1e-12)  # only among ties
        assert_ordered(d, i)


@pytest.mark.parametrize("p", [1.5, 4])
def test_mnist_subset_minkowski_with_other_p_matches_sklearn(mnist, p):
    X, Q = mnist.train_images[:400], mnist.test_images[:40]
    d, i = ExactSearch("minkowski", p=p).fit(X).kneighbors(Q, 6)
    sd, si, true = minkowski_reference(X, Q, 6, p)
    np.testing.assert_allclose(d, sd, rtol=1e-9)
    diff = i != si
    np.testing.assert_allclose(true(i)[diff], true(si)[diff], rtol=1e-12)
    assert_ordered(d, i)


# --------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_mnist_subset_matches_sklearn(mnist, metric):
    X, Q = mnist.train_images[:3000], mnist.test_images[:500]
    d, i = search(X, Q, 10, metric)
    assert_matches_sklearn(X, Q, 10, metric, d, i)


def test_mnist_subset_minkowski_matches_sklearn(mnist):
    X, Q = mnist.train_images[:400], mnist.test_images[:40]
    d, i = search(X, Q, 6, "minkowski")
    assert_matches_sklearn(X, Q, 6, "minkowski", d, i)


def test_mnist_euclidean_equals_exact_integer_reference(mnist):
    """Not just close: the same indices in the same (distance, index) order, bit-identical distances."""
    X, Q = mnist.train_images[10000:13000], mnist.test_images[500:1000]
    d, i = ExactSearch().fit(X).kneighbors(Q, 25)
    rd, ri = exact_reference(X, Q, 25)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


# --------------------------------------------------------------------------- exactness beyond float32


def float32_trap(n_distractors=2000, seed=0):
    """Query 0 and training rows at squared distances D, D+1, D+2, ... with D > 3e7.

    float32 has a spacing of 2 (or 4) up there, so D and D+1 look equal to it.
    Row 0 is at D+1 and the row at D comes last: only exact distances put it first.
    """
    rng = np.random.default_rng(seed)
    base = np.zeros(784, dtype=np.uint8)
    base[:492] = 255
    D = 492 * 255 * 255
    rows = []
    for _ in range(n_distractors):  # D + (sum of 1-3 small squares) >= D + 4
        r = base.copy()
        pos = rng.choice(np.arange(492, 784), size=rng.integers(1, 4), replace=False)
        r[pos] = rng.integers(2, 9, size=len(pos))
        rows.append(r)
    at_d_plus_1 = base.copy()
    at_d_plus_1[700] = 1
    at_d_plus_2 = base.copy()
    at_d_plus_2[[600, 601]] = 1
    X = np.stack([at_d_plus_1, *rows, at_d_plus_2, base.copy()])
    return X, np.zeros((1, 784), dtype=np.uint8), D


def test_float32_trap_is_a_trap():
    X, q, D = float32_trap(10)
    assert D > 3e7 > 2**24
    assert np.float32(D) == np.float32(D + 1)  # float32 cannot tell these apart


@pytest.mark.parametrize("invert", [False, True])
def test_exact_beyond_float32(invert):
    X, q, D = float32_trap()
    if invert:  # the same distances with a bright query: the centring must not lose them
        X, q = 255 - X, 255 - q
    n = len(X)
    s = ExactSearch().fit(X)
    d, i = s.kneighbors(q, 3)
    assert i[0].tolist() == [n - 1, 0, n - 2]
    assert d[0].tolist() == [np.sqrt(float(D)), np.sqrt(float(D + 1)), np.sqrt(float(D + 2))]
    assert np.round(d[0] ** 2).tolist() == [D, D + 1, D + 2]
    d1, i1 = s.kneighbors(q, 1)
    assert i1[0, 0] == n - 1 and d1[0, 0] == np.sqrt(float(D))
    # the whole order, exact ties included, equals the exact integer reference
    d_all, i_all = s.kneighbors(q, n)
    rd, ri = exact_reference(X, q, n)
    np.testing.assert_array_equal(i_all, ri)
    np.testing.assert_array_equal(d_all, rd)
    assert len(np.unique(d_all)) < n - 100  # many exact ties among the distractors, all ordered by index


def test_exact_beyond_float32_with_many_queries():
    """Several queries per chunk and thread: each gets the exact order."""
    X, q, D = float32_trap(600, seed=1)
    rng = np.random.default_rng(2)
    Q = np.repeat(q, 40, axis=0)
    Q[1:, 492:] = rng.integers(0, 3, (39, 292))  # nearby queries, distances still > 2**24
    d, i = ExactSearch(chunk_size=7, n_jobs=2).fit(X).kneighbors(Q, 5)
    rd, ri = exact_reference(X, Q, 5)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)
    assert np.all(rd**2 > 2**24)


# --------------------------------------------------------------------------- exact ties


@pytest.mark.parametrize("metric", METRICS)
def test_duplicated_rows_come_back_ordered_by_index(metric):
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, (300, 20), dtype=np.uint8)
    dup_at = [250, 7, 123, 42, 299]
    X[dup_at] = X[dup_at[0]]
    q = X[dup_at[0]][None].copy()
    q[0, 0] = q[0, 0] ^ 1  # near the duplicates, not equal to them
    d, i = search(X, q, 8, metric)
    assert i[0, :5].tolist() == sorted(dup_at)
    assert len(set(d[0, :5].tolist())) == 1  # exactly equal distances
    assert d[0, 5] > d[0, 4]
    assert_matches_sklearn(X, q, 8, metric, d, i)


def test_many_exact_ties_match_integer_reference():
    """Binary rows: distances take few values, ties everywhere; order by index within each."""
    rng = np.random.default_rng(7)
    X = rng.integers(0, 2, (700, 10), dtype=np.uint8)
    Q = rng.integers(0, 2, (30, 10), dtype=np.uint8)
    for k in (1, 9, 100, 700):
        d, i = ExactSearch().fit(X).kneighbors(Q, k)
        rd, ri = exact_reference(X, Q, k)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(d, rd)


@pytest.mark.parametrize("metric", ["manhattan", "minkowski"])
def test_many_exact_ties_sklearn_backend(metric):
    """Manhattan/minkowski go through scikit-learn and ask for more when ties reach past k."""
    rng = np.random.default_rng(8)
    X = rng.integers(0, 2, (400, 6), dtype=np.uint8)
    Q = rng.integers(0, 2, (10, 6), dtype=np.uint8)
    a = np.abs(Q[:, None, :].astype(int) - X[None].astype(int)).sum(-1)
    # binary rows: |d|^3 == |d|, so both metrics rank by the count of differing features
    for k in (1, 5, 50):
        d, i = search(X, Q, k, metric)
        ri = np.argsort(a, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(i, ri)
        assert_matches_sklearn(X, Q, k, metric, d, i)


@pytest.mark.parametrize("metric,p", [("manhattan", 1), ("minkowski", 3), ("minkowski", 4)])
def test_a_few_uint8_queries_summed_over_their_ink_equal_scikit_learns_path_exactly(mnist, metric, p):
    """A drawing's manhattan/minkowski distances are summed over its inked pixels only (a fifth of them):
    the same numbers, bit for bit, as scikit-learn's brute force over every pixel, and the same order."""
    X, Q = mnist.train_images[:5000], mnist.test_images[:16]
    sparse = ExactSearch(metric, p=p).fit(X)
    assert sparse._power_table is not None
    full = ExactSearch(metric, p=p).fit(X)
    full._power_table = None  # scikit-learn's path
    for exclude in (None, np.arange(16) * 7):
        d, i = sparse.kneighbors(Q, 10, exclude=exclude)
        fd, fi = full.kneighbors(Q, 10, exclude=exclude)
        np.testing.assert_array_equal(i, fi)
        np.testing.assert_array_equal(d, fd)
    # where the sums would not be whole numbers below 2**53, scikit-learn's path
    assert ExactSearch("minkowski", p=2.5).fit(X)._power_table is None
    assert ExactSearch("minkowski", p=7).fit(X)._power_table is None
    assert ExactSearch(metric, p=p).fit(X.astype(np.float64))._power_table is None


# --------------------------------------------------------------------------- exclude (leave-one-out)


@pytest.mark.parametrize("metric", METRICS)
def test_exclude_self_returns_duplicate_at_zero(metric):
    rng = np.random.default_rng(9)
    X = rng.integers(0, 256, (120, 16), dtype=np.uint8)
    X[77] = X[12]
    X[[30, 31, 90]] = X[5]
    n = len(X)
    d, i = search(X, X, 4, metric, exclude=np.arange(n))
    assert not np.any(i == np.arange(n)[:, None])
    assert i[12, 0] == 77 and i[77, 0] == 12 and d[12, 0] == 0 == d[77, 0]
    assert i[5, :3].tolist() == [30, 31, 90] and np.all(d[5, :3] == 0)
    assert i[30, :3].tolist() == [5, 31, 90]
    # equal to searching the training set without that row
    for r in (0, 5, 12, 64, 119):
        keep = np.delete(np.arange(n), r)
        d_r, i_r = search(X[keep], X[r : r + 1], 4, metric)
        np.testing.assert_array_equal(i[r], keep[i_r[0]])
        np.testing.assert_allclose(d[r], d_r[0], rtol=1e-12, atol=1e-12)


def test_exclude_any_index():
    """exclude[i] need not be i: it removes exactly that row for that query."""
    rng = np.random.default_rng(10)
    X = rng.normal(size=(200, 5))
    Q = rng.normal(size=(20, 5))
    d0, i0 = ExactSearch().fit(X).kneighbors(Q, 6)
    ex = i0[:, 0]  # forbid each query's nearest
    d1, i1 = ExactSearch().fit(X).kneighbors(Q, 5, exclude=ex)
    np.testing.assert_array_equal(i1, i0[:, 1:])
    np.testing.assert_array_equal(d1, d0[:, 1:])


def test_exclude_on_mnist_equals_sklearn_leave_one_out(mnist):
    X = mnist.train_images[:1500].reshape(1500, -1)
    d, i = ExactSearch().fit(X).kneighbors(X, 5, exclude=np.arange(1500))
    nn = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(X.astype(np.float64))
    sd, si = nn.kneighbors()  # X=None: scikit-learn's leave-one-out
    np.testing.assert_allclose(d, sd, rtol=1e-9, atol=1e-9)
    diff = i != si
    if diff.any():
        np.testing.assert_array_equal(true_distances(X, X, i, "euclidean")[diff],
                                      true_distances(X, X, si, "euclidean")[diff])
    assert not np.any(i == np.arange(1500)[:, None])


def test_exclude_leaves_n_minus_1_available():
    X = np.arange(10, dtype=np.float64)[:, None]
    s = ExactSearch().fit(X)
    d, i = s.kneighbors(X, 9, exclude=np.arange(10))
    for r in range(10):
        assert sorted(i[r].tolist()) == [j for j in range(10) if j != r]
    with pytest.raises(ParameterError, match="only 9 training digits"):
        s.kneighbors(X, 10, exclude=np.arange(10))
    with pytest.raises(ParameterError, match="one training index per query"):
        s.kneighbors(X, 2, exclude=np.arange(9))


# --------------------------------------------------------------------------- tuning knobs change nothing


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pruning_and_chunking_parameters_do_not_change_results(mnist, metric):
    X, Q = mnist.train_images[:1000], mnist.test_images[:70]
    s = ExactSearch(metric).fit(X)
    ref = s.kneighbors(Q, 12)
    results = {}
    for n_components in (1, 784):  # a weak bound prunes little, a full one much: same answer
        results[f"n_components={n_components}"] = ExactSearch(metric, n_components=n_components).fit(X).kneighbors(Q, 12)
    for chunk_size, n_jobs in ((1, 2), (13, 1), (13, 2)):
        s.chunk_size, s.n_jobs = chunk_size, n_jobs  # query-time settings
        results[f"chunk_size={chunk_size} n_jobs={n_jobs}"] = s.kneighbors(Q, 12)
    for name, got in results.items():
        np.testing.assert_array_equal(got[1], ref[1], err_msg=name)
        np.testing.assert_array_equal(got[0], ref[0], err_msg=name)


def test_progress_reports_every_query():
    rng = np.random.default_rng(11)
    X, Q = rng.normal(size=(100, 4)), rng.normal(size=(50, 4))
    for metric in ("euclidean", "manhattan"):
        calls: list[tuple[int, int]] = []
        ExactSearch(metric, chunk_size=8).fit(X).kneighbors(Q, 3, progress=lambda done, total, calls=calls:
                                                            calls.append((done, total)))
        assert len(calls) == 7  # ceil(50 / 8) chunks
        assert {t for _, t in calls} == {50}
        assert max(dn for dn, _ in calls) == 50


def test_empty_query_batch():
    d, i = ExactSearch().fit(np.eye(3)).kneighbors(np.empty((0, 3)), 2)
    assert d.shape == i.shape == (0, 2)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    X = np.random.default_rng(12).normal(size=(20, 4))
    with pytest.raises(ParameterError, match="unknown metric 'chebyshev'"):
        ExactSearch("chebyshev").fit(X)
    with pytest.raises(ParameterError, match="p >= 1"):
        ExactSearch("minkowski", p=0.5).fit(X)
    with pytest.raises(ParameterError, match="empty"):
        ExactSearch().fit(np.empty((0, 4)))
    with pytest.raises(ParameterError, match="NaN or infinite"):
        ExactSearch().fit(np.where(np.eye(20, 4) > 0, np.nan, X))
    with pytest.raises(ParameterError, match="numeric"):
        ExactSearch().fit(X > 0)
    with pytest.raises(ParameterError, match="shape"):
        ExactSearch().fit(np.zeros(5))
    s = ExactSearch().fit(X)
    with pytest.raises(ParameterError, match="3 features, the training rows 4"):
        s.kneighbors(np.zeros((2, 3)), 1)
    with pytest.raises(ParameterError, match="NaN"):
        s.kneighbors(np.full((1, 4), np.inf), 1)
    for k in (0, 21):
        with pytest.raises(ParameterError, match=f"k={k} neighbours asked"):
            s.kneighbors(X, k)


def test_blas_threads_do_not_change_results(mnist):
    """The rest of this module runs with one BLAS thread; the production default (all cores) gives the same."""
    X, Q = mnist.train_images[:1000], mnist.test_images[:40]
    one = ExactSearch().fit(X).kneighbors(Q, 10)
    with threadpool_limits(limits=2, user_api="blas"):
        two = ExactSearch().fit(X).kneighbors(Q, 10)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


# --------------------------------------------------------------------------- scale and offset of float features


def direct_euclidean_reference(X, Q, k):
    """Distances from explicit differences in float64 (no |x|^2 - 2xy + |y|^2 cancellation)."""
    D = np.sqrt(((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def test_large_offset_float_features_are_exact():
    """Features far from 0 (here 1e9 + N(0, 1)): exact, where the expanded product form would round."""
    rng = np.random.default_rng(13)
    X, Q = rng.normal(size=(300, 5)) + 1e9, rng.normal(size=(20, 5)) + 1e9
    d, i = ExactSearch().fit(X).kneighbors(Q, 5)
    rd, ri = direct_euclidean_reference(X, Q, 5)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(d, rd, rtol=1e-12)


def test_cosine_is_scale_invariant():
    """Cosine ignores length, however small (scikit-learn treats norms below ~2e-15 as zero; we do not)."""
    rng = np.random.default_rng(14)
    X, Q = rng.normal(size=(200, 6)), rng.normal(size=(15, 6))
    d, i = ExactSearch("cosine").fit(X).kneighbors(Q, 5)
    for scale in (1e-30, 1e-8, 1e8, 1e30):
        ds_, is_ = ExactSearch("cosine").fit(X * scale).kneighbors(Q * scale, 5)
        np.testing.assert_array_equal(is_, i)
        np.testing.assert_allclose(ds_, d, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale", [1e15, 1e16, 1e20])
def test_huge_float_features(scale):
    """Finite features of magnitude 1e15 and up: squared distances pass _FAR / 2 = 5e29,
    the cap the pruning step puts on its candidate limit (and, near 1e19, float32's maximum).

    Finite input must still give the exact neighbours (or at worst a clear ValueError),
    never "RuntimeError: internal error: fewer than k candidates" or a LinAlgError.
    """
    for seed in range(6):
        rng = np.random.default_rng(seed)
        X, Q = rng.normal(size=(300, 5)) * scale, rng.normal(size=(20, 5)) * scale
        d, i = ExactSearch().fit(X).kneighbors(Q, 5)
        rd, ri = direct_euclidean_reference(X, Q, 5)
        np.testing.assert_array_equal(i, ri, err_msg=f"seed {seed}")
        np.testing.assert_allclose(d, rd, rtol=1e-12)


# --------------------------------------------------------------------------- blocks of training rows


@pytest.mark.parametrize("metric", ["manhattan", "minkowski"])
@pytest.mark.parametrize("block", [7, 50])
def test_training_blocks_give_the_same_neighbours_ties_and_exclusions(monkeypatch, metric, block):
    """Manhattan/minkowski search the training rows block by block (no float copy of the whole set):
    ties at the k-th distance across blocks and excluded rows come out as with one block."""
    import knn_core.search as search_module

    rng = np.random.default_rng(11)
    X = rng.integers(0, 2, (400, 6), dtype=np.uint8)  # binary rows: many exact ties
    Q = X[:20]
    a = np.abs(Q[:, None, :].astype(int) - X[None].astype(int)).sum(-1)
    a[np.arange(20), np.arange(20)] = 10**6  # each query's own row is excluded
    monkeypatch.setattr(search_module, "_FIT_CHUNK", block)
    s = ExactSearch(metric).fit(X)
    for k in (1, 5, 30):
        d, i = s.kneighbors(Q, k, exclude=np.arange(20))
        np.testing.assert_array_equal(i, np.argsort(a, axis=1, kind="stable")[:, :k])
        assert_ordered(d, i)
    assert not any(isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.shape == X.shape for v in vars(s).values())
