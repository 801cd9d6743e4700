"""Exact brute-force nearest-neighbour search, fast.

Euclidean and cosine go through the matrix-product form: a float32 product
ranks every training digit, a rigorous bound on its rounding error says
which candidates could still be among the true k nearest, and those few are
measured again in float64 (exact on uint8 images, whose squared distances
reach 5e7, beyond float32's 2**24). Neighbours come back ordered by
(distance, training index), so results are reproducible and equal
scikit-learn's float64 brute force except among exactly equal distances.

Metrics without a product form (manhattan, minkowski) use scikit-learn's
optimised brute-force backend on blocks of training rows (no float copy of
the whole set is kept), then the same (distance, index) ordering.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Optional

import numpy as np

from . import cache
from .errors import ParameterError
from .threads import one_blas_thread, openmp_threads

METRICS = ("euclidean", "manhattan", "minkowski", "cosine")
_PRODUCT_METRICS = ("euclidean", "cosine")
_UNIT_ROUNDOFF_F32 = 2.0**-24
_BLOCK = 128  # training rows per block when bounding the k-th distance
_DENSE_MAX = 8192  # uint8 training sets up to this size are searched without pruning
_FIT_CHUNK = 8192  # training rows per step when fitting the bound (bounds memory)
_SPARSE_MAX_QUERIES = 16  # up to this many queries (a drawing, a page's few): ExactSearch._sparse_power_chunk
_FAR = 1e30  # padding rows: farther than anything real, finite so products stay finite
_BATCH_LOCK = threading.Lock()
_CACHED_FIT_ROWS = (20_000, 200_000)  # fits of this many training rows are kept in the disk cache
_FIT_VERSION = "1"  # bump when a change changes what a fit computes

ProgressCallback = Callable[[int, int], None]


def as_rows(X, name: str = "X") -> np.ndarray:
    """(N, 28, 28) or (N, 784) images, uint8 or float -> (N, D) rows; uint8 stays uint8."""
    X = np.asarray(X)
    if X.ndim == 3:
        X = X.reshape(len(X), -1)
    if X.ndim != 2:
        raise ParameterError(f"{name} must be images (N, H, W) or rows (N, D); got shape {X.shape}")
    if X.dtype == np.uint8:
        return X
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number):
        raise ParameterError(f"{name} must be numeric; got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise ParameterError(f"{name} contains NaN or infinite values")
    return X


class ExactSearch:
    """Exact k-nearest-neighbour search over fixed training rows.

    Parameters
    ----------
    metric : {"euclidean", "manhattan", "minkowski", "cosine"}
    p : float
        Power of the minkowski metric (3 is the classic choice).
    n_components : int
        Principal components of the lower bound that prunes candidates
        (euclidean and cosine); any value gives exact results, this one is fast.
    n_jobs : int
        Worker threads for batches of queries (each runs a single-threaded
        matrix product, so the two cores are never idle during selection).
    chunk_size : int
        Queries per chunk: bounds memory at chunk_size x n_train float32.
    """

    def __init__(
        self,
        metric: str = "euclidean",
        *,
        p: float = 2,
        n_components: int = 96,
        n_jobs: int = 2,
        chunk_size: int = 256,
    ):
        self.metric = metric
        self.p = p
        self.n_components = n_components
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ fit
    def fit(self, X) -> "ExactSearch":
        if self.metric not in METRICS:
            raise ParameterError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        if self.metric == "minkowski" and not (self.p >= 1):
            raise ParameterError(f"minkowski needs p >= 1; got p={self.p}")
        X = as_rows(X, "training data")
        if len(X) == 0:
            raise ParameterError("training data is empty")
        self.X_ = X
        self.n_samples_, self.n_features_ = X.shape
        self._power_table = None  # manhattan/minkowski on uint8 rows: see _fit_sparse_power
        # Small uint8 training sets: all distances exactly in one float64
        # product (integer sums stay below 2**53) beat pruning, which has
        # little to prune when k is a sizeable share of the set.
        self._dense = self.metric == "euclidean" and X.dtype == np.uint8 and len(X) <= _DENSE_MAX
        if self._dense:
            self._X64 = X.astype(np.float64)
        if self.metric in _PRODUCT_METRICS:
            self._fit_product()  # also serves float queries against a dense set
        else:
            # Manhattan on uint8 pixels: every sum is a whole number below 2**24, so float32 is exact
            # and half the memory; other powers need float64. No float copy of the whole training set
            # is kept (376 MB at 60,000 digits): each search converts one block of rows at a time.
            self._sk_dtype = np.float32 if self.metric == "manhattan" and X.dtype == np.uint8 else np.float64
            self._fit_sparse_power()
        return self

    def _fit_sparse_power(self):
        """For a few uint8 queries at a time (a drawing): manhattan and whole-number minkowski powers
        summed over the query's inked pixels only (see :meth:`_sparse_power_chunk`).

        Needs uint8 rows and sums that stay whole numbers below 2**53, so that the result is exact and
        equal to scikit-learn's (p=3 on 784 pixels: at most 1.3e10).
        """
        power = 1.0 if self.metric == "manhattan" else float(self.p)
        if self.X_.dtype != np.uint8 or power != int(power) or 255.0**power * self.n_features_ >= 2.0**53:
            return
        levels = np.arange(256, dtype=np.float64)
        own = levels**power  # |x - 0|^p: a pixel the query left blank
        # table[q, x] = |x - q|^p - |x|^p: what a pixel inked q in the query changes in the sum
        self._power_table = np.abs(levels[None, :] - levels[:, None]) ** power - own[None, :]
        self._power_sums = np.concatenate([own[self.X_[s : s + _FIT_CHUNK]].sum(axis=1)
                                           for s in range(0, self.n_samples_, _FIT_CHUNK)])

    def _fit_product(self):
        """The lower bound's arrays (see :meth:`_bound_arrays`), from the disk cache for big training sets.

        Fitting 60,000 digits takes ~2 s of CPU, reading its 24 MB back ~0.1 s:
        a freshly started server answers its first drawing without fitting again.
        """
        self._sq = _row_sq(self.X_)  # exact squared norms of the original rows
        n = len(self.X_)
        use_cache = _CACHED_FIT_ROWS[0] <= n <= _CACHED_FIT_ROWS[1]
        parts = dict(train=cache.fingerprint(self.X_) if use_cache else "", metric=self.metric,
                     n_components=self.n_components, version=_FIT_VERSION)
        got = cache.cached_arrays("exact-search-fit", parts, self._bound_arrays, use_cache=use_cache)
        self._mean, self._basis, self._A = got["mean"], got["basis"], got["A"]
        self._scale, self._max_centred = float(got["scale"]), float(got["max_centred"])
        self._n_pad = len(self._A)

    def _bound_arrays(self) -> dict:
        """Project the training rows onto their top principal components.

        For centred rows x, y with projections z and residual lengths r,
        |z_x - z_y|^2 + (r_x - r_y)^2 <= |x - y|^2, a lower bound that prunes
        all but a few dozen candidates per query (measured on MNIST with
        n_components=96: about 45 of 60,000 for k=5), at the cost of a
        matrix product with 98 columns instead of 784.
        """
        rows = self._rows_for_bound
        n, dim = self.X_.shape
        # Mean and covariance in chunks: no full float64 copy of the training set.
        mean = sum(rows(s).sum(axis=0) for s in range(0, n, _FIT_CHUNK)) / n
        # Work in units of the largest centred coordinate, so that neither the
        # float32 products nor the padding sentinel depend on the data's scale.
        scale = max(float(np.abs(rows(s) - mean).max()) for s in range(0, n, _FIT_CHUNK))
        scale = scale if scale > 0 else 1.0
        cov = np.zeros((dim, dim), dtype=np.float64)
        for s in range(0, n, _FIT_CHUNK):
            Xc = ((rows(s) - mean) / scale).astype(np.float32)  # float32 is plenty for the basis
            cov += Xc.T @ Xc
        n_comp = int(min(self.n_components, dim, max(n - 1, 1)))
        _, vecs = np.linalg.eigh(cov)  # orthonormal whatever the precision of cov
        basis = vecs[:, ::-1][:, :n_comp].copy()
        Z = np.empty((n, n_comp))
        csq = np.empty(n)
        for s in range(0, n, _FIT_CHUNK):
            Xc = (rows(s) - mean) / scale
            Z[s : s + _FIT_CHUNK] = Xc @ basis
            csq[s : s + _FIT_CHUNK] = np.einsum("ij,ij->i", Xc, Xc)
        resid = np.sqrt(np.maximum(csq - np.einsum("ij,ij->i", Z, Z), 0.0))
        # Rows [z, r, |x - mean|^2] so that one product gives |y-m|^2 - 2 (z.z' + r r').
        n_pad = -(-n // _BLOCK) * _BLOCK
        A = np.zeros((n_pad, n_comp + 2), dtype=np.float32)
        A[:n, :n_comp], A[:n, n_comp], A[:n, n_comp + 1] = Z, resid, csq
        A[n:, n_comp + 1] = _FAR
        return dict(mean=mean, scale=np.float64(scale), basis=basis, A=A, max_centred=np.sqrt(csq.max()))

    def _rows_for_bound(self, start: int) -> np.ndarray:
        """A chunk of training rows in float64, as the lower bound sees them."""
        X = self.X_[start : start + _FIT_CHUNK]
        return _unit_rows(X) if self.metric == "cosine" else X.astype(np.float64)

    # ------------------------------------------------------------- queries
    def kneighbors(
        self,
        Q,
        k: int,
        *,
        exclude: Optional[np.ndarray] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest training rows of each query, ordered by (distance, index).

        ``exclude[i]``, when given, is a training index that query i may not
        return (leave-one-out: a training digit is not its own neighbour).
        Returns (distances float64 (m, k), indices int64 (m, k)).
        """
        Q = as_rows(Q, "query data")
        if Q.shape[1] != self.n_features_:
            raise ParameterError(f"query rows have {Q.shape[1]} features, the training rows {self.n_features_}")
        available = self.n_samples_ - (exclude is not None)
        if not 1 <= k <= available:
            raise ParameterError(f"k={k} neighbours asked, but only {available} training digits can be neighbours")
        m = len(Q)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (m,):
                raise ParameterError("exclude needs one training index per query")
        dist = np.empty((m, k), dtype=np.float64)
        ind = np.empty((m, k), dtype=np.int64)
        if m == 0:
            return dist, ind
        step = self.chunk_size
        starts = list(range(0, m, step))

        def run(start):
            sl = slice(start, min(start + step, m))
            ex = None if exclude is None else exclude[sl]
            if self._dense and Q.dtype == np.uint8:
                chunk = self._dense_chunk
            elif self._power_table is not None and Q.dtype == np.uint8 and m <= _SPARSE_MAX_QUERIES:
                chunk = self._sparse_power_chunk
            else:
                chunk = self._product_chunk if self.metric in _PRODUCT_METRICS else self._sklearn_chunk
            dist[sl], ind[sl] = chunk(Q[sl], k, ex)
            return sl.stop - sl.start

        done = 0
        workers = max(1, min(self.n_jobs or 1, len(starts)))
        if workers == 1 or self.metric not in _PRODUCT_METRICS:
            for s in starts:
                done += run(s)
                if progress is not None:
                    progress(done, m)
        else:
            # One BLAS thread per worker: the workers keep both cores busy,
            # including during the (single-threaded) selection steps. The BLAS
            # limit is process-wide, so batch searches take turns.
            with _BATCH_LOCK, one_blas_thread():
                with ThreadPoolExecutor(workers) as pool:
                    for fut in as_completed([pool.submit(run, s) for s in starts]):
                        done += fut.result()
                        if progress is not None:  # from the caller's thread (Streamlit needs that)
                            progress(done, m)
        return dist, ind

    def _dense_chunk(self, Q, k, exclude):
        """Every squared distance exactly (uint8 rows: float64 products of integers are exact)."""
        c = len(Q)
        D = Q.astype(np.float64) @ self._X64.T
        D *= -2.0
        D += self._sq
        D += _row_sq(Q)[:, None]
        if exclude is not None:
            D[np.arange(c), exclude] = np.inf
        kth = np.partition(D, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(D <= kth[:, None])  # all ties at the k-th distance too
        return _select_k(rows, cols, np.sqrt(D[rows, cols]), c, k)

    def _product_chunk(self, Q, k, exclude):
        """Lower bounds for all, exact distances for the few that could win."""
        c = len(Q)
        X = _unit_rows(Q) if self.metric == "cosine" else Q.astype(np.float64)
        Xc = (X - self._mean) / self._scale
        Z = Xc @ self._basis
        csq = np.einsum("ij,ij->i", Xc, Xc)
        resid = np.sqrt(np.maximum(csq - np.einsum("ij,ij->i", Z, Z), 0.0))
        Aq = np.empty((c, Z.shape[1] + 2), dtype=np.float32)
        Aq[:, :-2], Aq[:, -2], Aq[:, -1] = -2.0 * Z, -2.0 * resid, 1.0
        # L + csq is the squared lower bound; float32 error at most `slack`.
        L = Aq @ self._A.T
        slack = 2.0 * (Aq.shape[1] + 8) * _UNIT_ROUNDOFF_F32 * (np.sqrt(csq) + self._max_centred) ** 2 + 1e-9
        if exclude is not None:
            L[np.arange(c), exclude] = np.inf
        # Blocks of training rows: the minimum of each block (and where it is).
        block = _block_size(self._n_pad, k)
        Lb = L.reshape(c, -1, block)
        where = Lb.argmin(axis=2)
        block_min = np.take_along_axis(Lb, where[:, :, None], axis=2)[:, :, 0]
        # The best blocks' minima are distinct candidates: their exact
        # distances give an upper bound on each query's k-th distance.
        n_first = min(block_min.shape[1], k + k // 2 + 2)
        top = np.argpartition(block_min, n_first - 1, axis=1)[:, :n_first]
        rows0 = np.repeat(np.arange(c), n_first)
        cols0 = (top * block + np.take_along_axis(where, top, axis=1)).ravel()
        real = np.take_along_axis(block_min, top, axis=1).ravel() < _FAR / 2  # not padding, not excluded
        d0 = np.full(len(cols0), np.inf)
        d0[real] = self._sq_distances(Q, rows0[real], cols0[real])
        kth = np.partition(d0.reshape(c, n_first), k - 1, axis=1)[:, k - 1]
        # (With fewer real blocks than k, kth is inf: then every real row is a candidate.)
        limit = np.minimum(kth / self._scale**2 - csq + slack, _FAR / 2).astype(np.float32)
        # Every row whose lower bound is within the limit is measured exactly.
        rb, bb = np.nonzero(block_min <= limit[:, None])
        vals = Lb[rb, bb]
        hit_r, hit_j = np.nonzero(vals <= limit[rb, None])
        rows, cols = rb[hit_r], bb[hit_r] * block + hit_j
        del L, Lb, vals
        d2 = self._sq_distances(Q, rows, cols)
        dist = np.sqrt(d2) if self.metric == "euclidean" else d2 / 2.0
        return _select_k(rows, cols, dist, c, k)

    def _sq_distances(self, Q, rows, cols, batch: int = 2048) -> np.ndarray:
        """Squared euclidean distances of candidate pairs (for cosine: of the unit rows).

        Exact on uint8 images (integer arithmetic); float64 otherwise.
        """
        out = np.empty(len(rows), dtype=np.float64)
        for s in range(0, len(rows), batch):
            r, j = rows[s : s + batch], cols[s : s + batch]
            if self.metric == "euclidean" and Q.dtype == np.uint8 and self.X_.dtype == np.uint8:
                diff = Q[r].astype(np.int16) - self.X_[j]
                out[s : s + batch] = np.einsum("ij,ij->i", diff, diff, dtype=np.int64)
            elif self.metric == "euclidean":
                diff = Q[r].astype(np.float64) - self.X_[j]
                out[s : s + batch] = np.einsum("ij,ij->i", diff, diff)
            else:  # cosine distance 1 - cos = |unit(x) - unit(y)|^2 / 2
                dot = np.einsum("ij,ij->i", Q[r].astype(np.float64), self.X_[j].astype(np.float64))
                denom = np.sqrt(_row_sq(Q[r]) * self._sq[j])
                cos = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
                out[s : s + batch] = 2.0 - 2.0 * cos
        return out

    def _sparse_power_chunk(self, Q, k, exclude):
        """Manhattan or minkowski distances of a few uint8 queries to every training row, exactly.

        sum_i |x_i - q_i|^p = sum_i |x_i|^p + sum over the query's inked pixels of (|x_i - q_i|^p - |x_i|^p):
        the first sum is kept from the fit, the second is one table look-up per inked pixel (a fifth of
        a digit's). One drawing against 60,000 digits with p=3: ~70 ms instead of scikit-learn's ~0.9 s
        of a core that nothing can interrupt (a curious student choosing minkowski on the Draw page).
        """
        c = len(Q)
        dist = np.empty((c, k))
        ind = np.empty((c, k), dtype=np.int64)
        for r, q in enumerate(Q):
            inked = np.flatnonzero(q)
            rows_of_q = self._power_table[q[inked]]  # (inked, 256)
            columns = np.arange(len(inked))
            sums = self._power_sums.copy()
            for s in range(0, self.n_samples_, _FIT_CHUNK):
                sums[s : s + _FIT_CHUNK] += rows_of_q[columns, self.X_[s : s + _FIT_CHUNK, inked]].sum(axis=1)
            if exclude is not None and exclude[r] >= 0:
                sums[exclude[r]] = np.inf
            kth = np.partition(sums, k - 1)[k - 1]
            near = np.flatnonzero(sums <= kth)  # the k nearest and whatever ties the k-th
            d, i = _select_k(np.zeros(len(near), dtype=np.int64), near, sums[near], 1, k)
            dist[r], ind[r] = (d[0] if self.metric == "manhattan" else d[0] ** (1.0 / self.p)), i[0]
        return dist, ind

    def _sklearn_chunk(self, Q, k, exclude):
        """scikit-learn's brute force over blocks of training rows (converted to float one block at a
        time), each block's k best by (distance, index), then the k best of those.

        A query's k best overall are among its k best of each block, so this is exact; each block
        keeps at least k + 1 rows, so it always has k to give.
        """
        n = self.n_samples_
        n_blocks = max(1, min(n // _FIT_CHUNK, n // (k + 1)))
        bounds = np.linspace(0, n, n_blocks + 1).astype(np.int64)
        # Queries in the training blocks' dtype where that is exact (uint8 pixels), else float64.
        Qf = Q.astype(self._sk_dtype if Q.dtype == np.uint8 else np.float64)
        parts = []
        with openmp_threads(self.n_jobs or 1):
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                ex = None if exclude is None else np.where((exclude >= lo) & (exclude < hi), exclude - lo, -1)
                d, i = self._sklearn_block(self.X_[lo:hi], Qf, k, ex)
                parts.append((d, i + lo))
        if len(parts) == 1:
            return parts[0]
        c = len(Q)
        d = np.concatenate([p[0] for p in parts], axis=1)
        i = np.concatenate([p[1] for p in parts], axis=1)
        return _select_k(np.repeat(np.arange(c), d.shape[1]), i.ravel(), d.ravel(), c, k)

    def _sklearn_block(self, X, Qf, k, exclude):
        """The k nearest rows of X by (distance, index): scikit-learn asked for a few extra, and for more
        while ties at the k-th distance reach past what came back."""
        from sklearn.neighbors import NearestNeighbors

        sk_metric, p = ("minkowski", 1) if self.metric == "manhattan" else ("minkowski", self.p)
        nn = NearestNeighbors(algorithm="brute", metric=sk_metric, p=p).fit(X.astype(self._sk_dtype))
        n, c = len(X), len(Qf)
        extra = 8
        while True:
            kk = min(n, k + extra + (exclude is not None))
            d, i = nn.kneighbors(Qf, n_neighbors=kk)
            rows = np.repeat(np.arange(c), kk)
            d, i = d.ravel(), i.ravel()
            if exclude is not None:
                keep = i != np.repeat(exclude, kk)
                rows, d, i = rows[keep], d[keep], i[keep]
            dist, ind = _select_k(rows, i, d, c, k)
            farthest = np.full(c, -np.inf)
            np.maximum.at(farthest, rows, d)
            if kk == n or np.all(farthest > dist[:, -1]):
                return dist, ind
            extra *= 4


def _select_k(rows, cols, values, n_rows, k):
    """Per row, the k candidates smallest by (value, column)."""
    order = np.lexsort((cols, values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    pos = np.arange(len(rows)) - starts[rows]
    keep = pos < k
    if np.count_nonzero(keep) != n_rows * k:
        raise RuntimeError("internal error: fewer than k candidates for a query")
    return values[keep].reshape(n_rows, k), cols[keep].reshape(n_rows, k)


def _block_size(n_pad: int, k: int) -> int:
    """Largest power of two <= _BLOCK leaving at least 4k blocks (1 for tiny sets)."""
    block = _BLOCK
    while block > 1 and n_pad // block < 4 * k:
        block //= 2
    return block


def _unit_rows(X) -> np.ndarray:
    """Rows scaled to unit length in float64; all-zero rows stay zero (as scikit-learn)."""
    X = X.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return X / np.where(norms > 0, norms, 1.0)[:, None]


def _row_sq(X) -> np.ndarray:
    return _row_sq_uint8(X) if X.dtype == np.uint8 else np.einsum("ij,ij->i", X, X, dtype=np.float64)


def _row_sq_uint8(X) -> np.ndarray:
    """Exact squared norms of uint8 rows, in float64 (integers below 2**53)."""
    out = np.empty(len(X), dtype=np.float64)
    for s in range(0, len(X), 4096):
        blk = X[s : s + 4096].astype(np.int32)
        out[s : s + 4096] = np.einsum("ij,ij->i", blk, blk)
    return out
