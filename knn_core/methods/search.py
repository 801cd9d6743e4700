"""The neighbour search of a recipe (`MethodSearch`), and the exact brute force that checks it.

How each step is computed
-------------------------
* Preprocessing (deskew, Gaussian blur, 3x3 downsampling, PCA to d
  dimensions) is applied identically to training digits and queries; the
  image steps are `knn_core.features`'s, uint8 stays uint8. PCA is fitted
  on the training digits only.
* Shifted training copies (``shifts=s``: every (dy, dx) in [-s, s]^2, so 9
  or 25 copies) are never materialised. Digits live in a frame padded by s
  pixels on each side, where no ink can fall off, and there
  ``|shift(q, -d) - y| == |q - shift(y, d)|`` exactly: the query is shifted
  the other way and searched against the one unshifted training set. The
  neighbour lists are over the augmented set: the same training digit may
  appear (and vote) several times with different shifts, as in the
  literature; ``one_vote_per_digit=True`` keeps only each digit's best shift
  (the distance then is min over shifts).
* Euclidean search is exact (`ExactSearch`), with or without shifts.
* Minkowski (L3) is a TWO-STAGE APPROXIMATION: the ``candidates`` training
  digits nearest by euclidean distance (minimum over shifts; exact) are
  re-measured with the exact Lp distance at every shift, and the k nearest
  of those are returned. A training digit outside the euclidean candidates
  is never considered; `measure_minkowski_agreement` counts how often this
  changes the result against a brute-force exact Lp search.
* ``rerank="idm"``: the ``candidates`` nearest digits by euclidean distance
  are re-ranked by the image distortion model; see `idm_distances`.
  With ``affine_copies`` and/or ``p2d_scale`` the ``match_candidates`` best by
  IDM are also matched against six affine copies of each (`affine_copies`,
  made on the fly from the deskewed, unblurred training digits the search
  keeps) and by the scaled P2DHMDM; the distance is the nearest of the matches.

Neighbours are ordered by (distance, training index, shift number); shift
number 0 is the unshifted copy (see `shift_offsets`).
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional

import numpy as np

from ..errors import ParameterError
from ..search import ExactSearch
from ..threads import one_blas_thread
from .kernels import idm_distances, lp_distances, p2dhmdm_distances, tangent_distances
from .recipes import Recipe, resolve_recipe

_CHUNK = 512  # queries per step: bounds memory, and the granularity of progress

Progress = Optional[Callable[[int, int], None]]


def as_images(X, name: str = "X") -> np.ndarray:
    """(N, H, W) images or (N, D) rows with D a square -> (N, H, W).

    uint8 stays uint8, and so become whole numbers within 0..255 of any dtype
    (lossless; exact integer distances); anything else becomes float32.
    """
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ParameterError(f"{name}: rows of {X.shape[1]} values are not square images")
        X = X.reshape(len(X), side, side)
    if X.ndim != 3:
        raise ParameterError(f"{name} must be images (N, H, W) or rows (N, H*W); got shape {X.shape}")
    if X.dtype == np.uint8:
        return X
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number):
        raise ParameterError(f"{name} must be numeric; got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ParameterError(f"{name} contains NaN or infinite values")
    if X.size and X.min() >= 0 and X.max() <= 255 and np.array_equal(X, np.rint(X)):
        return X.astype(np.uint8)  # whole numbers 0..255 (e.g. float32 rows of MNIST): lossless, exact arithmetic
    return X.astype(np.float32)


def prepare_images(images, recipe: Recipe) -> np.ndarray:
    """The recipe's image steps (deskew, blur, downsample), the same for training digits and queries."""
    from ..features import blur, deskew, downsample

    recipe = resolve_recipe(recipe)
    a = as_images(images)
    if len(a) == 0:
        return a
    if recipe.deskew:
        a = deskew(a, progress=False)
    if recipe.blur_sigma:
        a = blur(a, recipe.blur_sigma)
    if recipe.downsample:
        a = downsample(a)
    return a


def shift_offsets(s: int) -> np.ndarray:
    """The (dy, dx) of every shift up to s pixels, (0, 0) first, then by ring: shape ((2s+1)^2, 2)."""
    r = np.arange(-s, s + 1)
    dy, dx = (grid.ravel() for grid in np.meshgrid(r, r, indexing="ij"))
    order = np.lexsort((dx, dy, np.abs(dy) + np.abs(dx), np.maximum(np.abs(dy), np.abs(dx))))
    return np.stack([dy[order], dx[order]], axis=1).astype(np.int64)


def translate(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the content of (..., H, W) images by (dy, dx) pixels (down, right); zeros come in."""
    out = np.zeros_like(images)
    H, W = images.shape[-2:]
    ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
    xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
    out[..., yd, xd] = images[..., ys, xs]
    return out


AFFINE_DEGREES = 8.0
AFFINE_NAMES = ("rotated +8°", "rotated -8°", "scaled 0.9", "scaled 1.1", "10% wider", "10% taller")


def affine_matrices() -> np.ndarray:
    """The six distortions of `affine_copies`: (6, 2, 2) matrices mapping an output (row, column),
    from the image centre, to the input's (scipy.ndimage.affine_transform's convention)."""
    a = np.deg2rad(AFFINE_DEGREES)
    c, s = np.cos(a), np.sin(a)
    return np.array([
        [[c, -s], [s, c]], [[c, s], [-s, c]],
        np.eye(2) / 0.9, np.eye(2) / 1.1,
        np.diag([1 / 0.9, 1 / 1.1]), np.diag([1 / 1.1, 1 / 0.9]),
    ])


@functools.lru_cache(maxsize=4)
def _affine_gathers(h: int, w: int):
    """Each distortion's bilinear interpolation as a gather: (6, h*w, K) source pixels and weights.

    Read off scipy.ndimage.affine_transform (order=1, mode="constant") applied
    to every unit impulse, so the copies are scipy's, made in one array pass.
    """
    from scipy.ndimage import affine_transform

    n = h * w
    impulses = np.eye(n).reshape(n, h, w)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    idx, wts = [], []
    for M in affine_matrices():
        M3 = np.eye(3)
        M3[1:, 1:] = M
        off = np.concatenate([[0.0], centre - M @ centre])
        T = affine_transform(impulses, M3, offset=off, order=1, mode="constant").reshape(n, n).T  # (out, in)
        K = max(1, int((T != 0).sum(axis=1).max()))
        order = np.argsort(T == 0, axis=1, kind="stable")[:, :K]  # each output pixel's sources, in pixel order
        idx.append(order)
        wts.append(np.take_along_axis(T, order, 1))
    K = max(a.shape[1] for a in idx)  # fewer sources: padded with pixel 0 at weight 0
    return (np.stack([np.pad(a, [(0, 0), (0, K - a.shape[1])]) for a in idx]),
            np.stack([np.pad(a, [(0, 0), (0, K - a.shape[1])]) for a in wts]))


def affine_copies(images, blur_sigma: float = 0.0) -> np.ndarray:
    """Six affine copies of each image (`AFFINE_NAMES`): (6, N, H, W) uint8.

    Each copy is the image rotated by +-8 degrees, scaled by 0.9 and 1.1, or
    made 10% wider or taller, about its centre (bilinear interpolation, blank
    outside; the same as scipy.ndimage.affine_transform(image, M, order=1,
    mode="constant") with `affine_matrices`), rounded to whole pixel values,
    then blurred by ``blur_sigma`` (`knn_core.features.blur`). Meant for
    deskewed digits before their blur, as the recipes compare them.
    """
    from ..features import blur

    a = np.asarray(images)
    n, h, w = a.shape
    idx, wts = _affine_gathers(h, w)
    flat = a.reshape(n, h * w).astype(np.float64)
    out = np.empty((len(idx), n, h, w), np.uint8)
    for j in range(len(idx)):
        f = np.einsum("npk,pk->np", flat[:, idx[j]], wts[j]).astype(np.float32)
        c = np.clip(np.rint(f), 0, 255).astype(np.uint8).reshape(n, h, w)
        out[j] = blur(c, blur_sigma) if blur_sigma else c
    return out


def pad_frame(images: np.ndarray, s: int) -> np.ndarray:
    """Images in a frame s pixels larger on each side (where shifts up to s lose no ink)."""
    if s == 0:
        return images
    return np.pad(images, [(0, 0)] * (images.ndim - 2) + [(s, s), (s, s)])


class Neighbors(NamedTuple):
    """The k nearest training digits of each query, nearest first: what votes, and what the pages show."""

    distances: np.ndarray  # (m, k) float64, the distance the method ranks by (after re-ranking)
    indices: np.ndarray  # (m, k) int64, into the training digits the search was fitted on
    shifts: Optional[np.ndarray]  # (m, k, 2) int8: the training digit moved by (dy, dx); None: no shifts


def _sort_pairs(rows, values, idx, sid, n_rows, k, dedup):
    """Per row, the k entries smallest by (value, index, shift id); dedup keeps one per index."""
    if dedup:
        o = np.lexsort((sid, values, idx, rows))
        r, i = rows[o], idx[o]
        first = np.ones(len(o), bool)
        first[1:] = (r[1:] != r[:-1]) | (i[1:] != i[:-1])
        o = o[first]
        rows, values, idx, sid = rows[o], values[o], idx[o], sid[o]
    order = np.lexsort((sid, idx, values, rows))
    rows, values, idx, sid = rows[order], values[order], idx[order], sid[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    pos = np.arange(len(rows)) - starts[rows]
    keep = pos < k
    if np.count_nonzero(keep) != n_rows * k:
        raise RuntimeError("internal error: fewer than k candidates for a query")
    return values[keep].reshape(n_rows, k), idx[keep].reshape(n_rows, k), sid[keep].reshape(n_rows, k)


class MethodSearch:
    """The neighbour search of a recipe over fixed training digits.

    >>> s = MethodSearch("deskew+blur").fit(train_images)          # doctest: +SKIP
    >>> nb = s.kneighbors(test_images, 5)  # Neighbors           # doctest: +SKIP
    """

    def __init__(self, recipe="plain", *, n_jobs: int = 2):
        self.recipe = resolve_recipe(recipe)
        self.n_jobs = n_jobs

    @property
    def copies(self) -> int:
        """How many times one training digit can appear in a neighbour list (its shifted copies)."""
        return self.recipe.copies

    # ------------------------------------------------------------------ fit
    def fit(self, images) -> "MethodSearch":
        r = self.recipe
        imgs = as_images(images, "training images")
        if len(imgs) == 0:
            raise ParameterError("training data is empty")
        self.image_shape_ = imgs.shape[1:]
        if r.affine_copies:  # the copies are made from the deskewed digits before the blur
            from ..features import blur

            self.unblurred_ = prepare_images(imgs, Recipe(deskew=r.deskew))
            self.prepared_ = blur(self.unblurred_, r.blur_sigma) if r.blur_sigma else self.unblurred_
        else:
            self.prepared_ = prepare_images(imgs, r)  # (N, h, w), for re-ranking and display
        self.n_samples_ = len(imgs)
        n_feat = int(np.prod(self.prepared_.shape[1:]))
        if r.pca is not None and r.pca > n_feat:
            raise ParameterError(f"pca={r.pca} is more than the {n_feat} features of the "
                             f"{'x'.join(map(str, self.prepared_.shape[1:]))} digits")
        self.offsets_ = shift_offsets(r.shifts)
        # One BLAS thread: on a busy machine multithreaded eigh can take 20x longer (measured: 45 s vs 2.6 s).
        with one_blas_thread():
            if r.pca is not None:
                self._fit_pca(self.prepared_.reshape(self.n_samples_, -1))
            self._search = ExactSearch("euclidean", n_jobs=self.n_jobs).fit(self._rows(self.prepared_))
        return self

    def _fit_pca(self, X):
        mean = X.mean(axis=0, dtype=np.float64)
        cov = np.zeros((X.shape[1],) * 2)
        for s in range(0, len(X), 8192):
            Xc = X[s : s + 8192].astype(np.float64) - mean
            cov += Xc.T @ Xc
        _, vecs = np.linalg.eigh(cov)
        basis = vecs[:, ::-1][:, : self.recipe.pca]
        # Deterministic signs: the largest entry of each component positive.
        signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(basis.shape[1])])
        basis = basis * np.where(signs == 0, 1, signs)
        # On a 2**-20 grid, the products with uint8 pixels and their sums are exact
        # in float64 (< 2**38 units): a digit projects to the same coordinates
        # whatever the batch it comes in, so a training digit queried is at 0.
        # (Not centred: distances do not care.)
        self._pca_basis = np.round(basis * 2.0**20) / 2.0**20

    def _rows(self, prepared: np.ndarray) -> np.ndarray:
        """Prepared images -> the rows stage 1 searches (padded frame, or PCA coordinates)."""
        if self.recipe.pca is not None:
            return prepared.reshape(len(prepared), -1).astype(np.float64) @ self._pca_basis
        return pad_frame(prepared, self.recipe.shifts).reshape(len(prepared), -1)

    def transform(self, images) -> np.ndarray:
        """Queries as the recipe compares them: prepared images in the (padded) frame."""
        return pad_frame(prepare_images(images, self.recipe), self.recipe.shifts)

    def training_image(self, index: int, shift=(0, 0)) -> np.ndarray:
        """Training digit `index` as the recipe compared it: prepared, in the frame, moved by `shift`."""
        img = pad_frame(self.prepared_[index][None], self.recipe.shifts)[0]
        return translate(img, int(shift[0]), int(shift[1]))

    # -------------------------------------------------------------- queries
    def kneighbors(self, images, k: int, *, exclude=None, progress: Progress = None) -> Neighbors:
        """The k nearest training digits (over the shifted copies if any) of each query.

        ``exclude[i]``: a training index query i may not return (leave-one-out;
        with shifts, none of its copies).
        """
        Q = prepare_images(as_images(images, "query images"), self.recipe)
        return self.kneighbors_prepared(Q, k, exclude=exclude, progress=progress)

    def kneighbors_training(self, k: int, *, progress: Progress = None) -> Neighbors:
        """Leave-one-out: each training digit's k nearest others (none of its own shifted copies)."""
        return self.kneighbors_prepared(self.prepared_, k, exclude=np.arange(self.n_samples_), progress=progress)

    def kneighbors_prepared(self, Q, k: int, *, exclude=None, progress: Progress = None) -> Neighbors:
        """`kneighbors` of queries already through `prepare_images` (e.g. the training digits)."""
        if Q.shape[1:] != self.prepared_.shape[1:]:
            raise ParameterError(f"query images are {Q.shape[1:]} after preprocessing, the training digits "
                             f"{self.prepared_.shape[1:]}")
        available = self.n_samples_ - (exclude is not None)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k:
            raise ParameterError(f"k must be a positive whole number; got {k!r}")
        if k > available * self.recipe.copies:
            raise ParameterError(f"k={k} neighbours asked, but only {available * self.recipe.copies} training digits "
                             "(and shifted copies) can be neighbours")
        m = len(Q)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (m,):
                raise ParameterError("exclude needs one training index per query")
        dist = np.empty((m, k))
        ind = np.empty((m, k), dtype=np.int64)
        sid = np.empty((m, k), dtype=np.int64)
        for s in range(0, m, _CHUNK):
            sl = slice(s, min(s + _CHUNK, m))
            ex = None if exclude is None else exclude[sl]
            dist[sl], ind[sl], sid[sl] = self._chunk(Q[sl], k, ex, available)
            if progress is not None:
                progress(sl.stop, m)
        return Neighbors(dist, ind, self.offsets_[sid].astype(np.int8))

    def _chunk(self, Q, k, exclude, available):
        r = self.recipe
        if not r.two_stage:
            # Exact euclidean over the (augmented) set: each shift's top k holds
            # every member of the top k overall (also of the best-shift lists).
            d, i, s = self._stage1(Q, min(k, available), exclude)  # per shift, at most every digit
            rows = np.repeat(np.arange(len(Q)), d.shape[1])
            return _sort_pairs(rows, d.ravel(), i.ravel(), s.ravel(), len(Q), k, r.one_vote_per_digit)
        C = min(max(r.candidates, k), available)
        d, i, s = self._stage1(Q, C, exclude)
        rows = np.repeat(np.arange(len(Q)), d.shape[1])
        # The C distinct training digits nearest by euclidean distance (minimum over shifts).
        _, cand, _ = _sort_pairs(rows, d.ravel(), i.ravel(), s.ravel(), len(Q), C, True)
        if r.rerank == "idm":
            return self._rerank_idm(Q, cand, k)
        return self._rerank_lp(Q, cand, k)

    def _stage1(self, Q, k1, exclude):
        """Per shift, the k1 nearest training digits by euclidean distance: (m, S*k1) each."""
        S = len(self.offsets_)
        if S == 1:
            d, i = self._search.kneighbors(self._rows(Q), k1, exclude=exclude)
            return d, i, np.zeros_like(i)
        P = pad_frame(Q, self.recipe.shifts)
        # Shift d of the training digit == the query moved by -d (in the padded frame).
        moved = np.concatenate([translate(P, -int(dy), -int(dx)) for dy, dx in self.offsets_])
        ex = None if exclude is None else np.tile(exclude, S)
        d, i = self._search.kneighbors(moved.reshape(len(moved), -1), k1, exclude=ex)
        m = len(Q)
        d = d.reshape(S, m, k1).transpose(1, 0, 2).reshape(m, S * k1)
        i = i.reshape(S, m, k1).transpose(1, 0, 2).reshape(m, S * k1)
        s = np.broadcast_to(np.repeat(np.arange(S), k1)[None], (m, S * k1))
        return d, i, s

    def _parallel(self, fn, m):
        if self.n_jobs and self.n_jobs > 1 and m > 1:
            with ThreadPoolExecutor(min(self.n_jobs, m)) as pool:
                return list(pool.map(fn, range(m)))
        return [fn(j) for j in range(m)]

    def _rerank_lp(self, Q, cand, k):
        """Exact Lp at every shift of each candidate digit, then the k best pairs."""
        r = self.recipe
        S, m, C = len(self.offsets_), len(Q), cand.shape[1]
        if r.pca is not None:
            Qr = self._rows(Q)
            Yr = self._search.X_  # PCA rows of the training digits

            def one(j):
                return lp_distances(Qr[j][None], Yr[cand[j]], r.p)[None]  # (1, C)
        else:
            P = pad_frame(Q, r.shifts)
            Ypad = self._search.X_  # padded training rows (uint8 or float)

            def one(j):
                moved = np.stack([translate(P[j], -int(dy), -int(dx)) for dy, dx in self.offsets_])
                Qs = moved.reshape(S, 1, -1)
                return lp_distances(Qs, Ypad[cand[j]][None], r.p)  # (S, C)

        D = np.stack(self._parallel(one, m))  # (m, S, C)
        rows = np.repeat(np.arange(m), S * C)
        idx = np.broadcast_to(cand[:, None, :], (m, S, C)).ravel()
        sid = np.broadcast_to(np.arange(S)[None, :, None], (m, S, C)).ravel()
        return _sort_pairs(rows, D.ravel(), idx, sid, m, k, r.one_vote_per_digit)

    def _rerank_idm(self, Q, cand, k):
        r = self.recipe
        m, C = cand.shape

        def one(j):
            return idm_distances(Q[j], self.prepared_[cand[j]], r.idm_window, r.idm_context)

        if m == 1 and self.n_jobs and self.n_jobs > 1 and C >= 2 * self.n_jobs:
            # One query (the Draw page): its candidates split between the threads.
            parts = np.array_split(cand[0], self.n_jobs)
            with ThreadPoolExecutor(self.n_jobs) as pool:
                D = np.concatenate(list(pool.map(
                    lambda c: idm_distances(Q[0], self.prepared_[c], r.idm_window, r.idm_context), parts)))[None]
        else:
            D = np.stack(self._parallel(one, m))
        if r.tangent_weight:
            D, cand = self._add_tangent(Q, cand, D, k)
            C = cand.shape[1]
        elif r.extra_matches:
            D, cand = self._add_matches(Q, cand, D, k)
            C = cand.shape[1]
        rows = np.repeat(np.arange(m), C)
        return _sort_pairs(rows, D.ravel(), cand.ravel(), np.zeros(m * C, np.int64), m, k, False)

    def _add_tangent(self, Q, cand, D, k):
        """The IDM-best candidates re-measured by sqrt(IDM^2 + weight * TD^2): (m, T) distances and indices."""
        r = self.recipe
        T = min(max(r.tangent_candidates, k), cand.shape[1])
        order = np.stack([np.lexsort((c, d))[:T] for c, d in zip(cand, D)])  # by IDM, then training index
        top = np.take_along_axis(cand, order, 1)
        idm = np.take_along_axis(D, order, 1)

        def one(j):
            return tangent_distances(Q[j], self.prepared_[top[j]], r.tangent_penalty)

        td = np.stack(self._parallel(one, len(Q)))
        return np.sqrt(idm**2 + r.tangent_weight * td**2), top

    def _add_matches(self, Q, cand, D, k):
        """The IDM-best candidates re-measured as the nearest of their matches (IDM, IDM against the
        affine copies, scaled P2DHMDM): (m, T) distances and indices."""
        r = self.recipe
        T = min(max(r.match_candidates, k), cand.shape[1])
        order = np.stack([np.lexsort((c, d))[:T] for c, d in zip(cand, D)])  # by IDM, then training index
        top = np.take_along_axis(cand, order, 1)
        best = np.take_along_axis(D, order, 1)

        def nearest(j, sel):
            idx = top[j, sel]
            out = best[j, sel].copy()
            if r.affine_copies:
                copies = affine_copies(self.unblurred_[idx], r.blur_sigma)  # (6, n, H, W)
                d = idm_distances(Q[j], copies.reshape(-1, *copies.shape[2:]), r.idm_window, r.idm_context)
                np.minimum(out, d.reshape(len(copies), -1).min(axis=0), out=out)
            if r.p2d_scale:
                p = p2dhmdm_distances(Q[j], self.prepared_[idx], r.p2d_window, r.p2d_deviation, r.idm_context,
                                      r.p2d_penalty)
                np.minimum(out, r.p2d_scale * p, out=out)
            return out

        m = len(Q)
        if m == 1 and self.n_jobs and self.n_jobs > 1 and T >= 2 * self.n_jobs:
            # One query (the Draw page): its candidates split between the threads.
            parts = np.array_split(np.arange(T), self.n_jobs)
            with ThreadPoolExecutor(self.n_jobs) as pool:
                D = np.concatenate(list(pool.map(lambda sel: nearest(0, sel), parts)))[None]
        else:
            D = np.stack(self._parallel(lambda j: nearest(j, slice(None)), m))
        return D, top


# --------------------------------------------------------------------------- exactness of the two-stage Lp


def brute_force_neighbors(search: MethodSearch, images, k: int, *, progress: Progress = None,
                          prune: bool = True) -> Neighbors:
    """The exact k nearest copies by the recipe's metric (euclidean or Lp), by brute force.

    For checking the two-stage approximation on a few hundred queries. Every
    shifted copy of every training digit is either measured exactly or
    provably too far: with ``prune``, the exact euclidean distance to all
    copies (one matrix product) gives a lower bound on the Lp distance
    (Hoelder: |d|_p >= |d|_2 / n^(1/2 - 1/p) for p >= 2, n the number of
    pixels where the two images can differ, at most the sum of their inked
    pixels), and only copies whose bound is within the k-th Lp distance of
    the best euclidean copies are measured. ``prune=False`` measures all.
    Not for IDM recipes.
    """
    r = search.recipe
    if r.rerank is not None:
        raise ParameterError("brute force is for euclidean / minkowski recipes, not for re-ranking ones")
    Q = prepare_images(as_images(images, "query images"), r)
    p = float(r.p) if r.uses_lp else 2.0
    Y = search._search.X_
    S, n, m = len(search.offsets_), search.n_samples_, len(Q)
    kk = min(k, n)
    exact_ints = Y.dtype == np.uint8
    if prune:
        Y64 = Y.astype(np.float64)
        y_sq = np.einsum("ij,ij->i", Y64, Y64)
        y_nnz = np.count_nonzero(Y, axis=1) if exact_ints else np.full(n, Y.shape[1])
        power = max(0.0, 0.5 - 1.0 / p)

    def rows_of(j):
        if r.pca is not None:
            return search._rows(Q[j][None])  # (1, d)
        P = pad_frame(Q[j][None], r.shifts)[0]
        return np.stack([translate(P, -int(dy), -int(dx)) for dy, dx in search.offsets_]).reshape(S, -1)

    def best_k(values, flat):
        d, i, sh = _sort_pairs(np.zeros(len(flat), np.int64), values, flat % n, flat // n, 1, k, r.one_vote_per_digit)
        return d[0], i[0], sh[0]

    def measure(Qs, flat, block=4096):
        out = np.empty(len(flat))
        for s in range(0, len(flat), block):
            f = flat[s : s + block]
            out[s : s + block] = lp_distances(Qs[f // n], Y[f % n], p)
        return out

    def one_full(j):
        Qs = rows_of(j)[:, None, :]
        block = max(64, int(2**22 // max(1, Y.shape[1] * S)))
        D = np.empty((S, n))
        for s in range(0, n, block):
            D[:, s : s + block] = lp_distances(Qs, Y[None, s : s + block], p)
        # Only the k best of each shift can be among the k best overall (also one per digit).
        kth = np.partition(D, kk - 1, axis=1)[:, kk - 1 : kk]
        flat = np.flatnonzero(D <= kth)  # ties at the k-th value kept too
        return best_k(D.ravel()[flat], flat)

    def one_pruned(j):
        Qs = rows_of(j)
        Q64 = Qs.astype(np.float64)
        l2 = np.sqrt(np.maximum(np.einsum("ij,ij->i", Q64, Q64)[:, None] + y_sq[None, :] - 2.0 * (Q64 @ Y64.T), 0.0))
        if not exact_ints:
            l2 *= 1 - 1e-9  # float rows: a margin for rounding
        q_nnz = np.count_nonzero(Qs, axis=1)[:, None] if exact_ints else Y.shape[1]
        bound = (l2 / np.minimum(q_nnz + y_nnz[None, :], Y.shape[1]) ** power).ravel()
        # A first k-th Lp distance from the copies nearest by L2 (k distinct digits among them).
        first = np.argpartition(l2.ravel(), min(kk * S, l2.size) - 1)[: kk * S]
        d0, _, _ = best_k(measure(Qs, first), first)
        flat = np.flatnonzero(bound <= d0[-1])
        return best_k(measure(Qs, flat), flat)

    one = one_pruned if prune else one_full
    done = [0]

    def counted(j):
        out = one(j)
        done[0] += 1
        if progress is not None:
            progress(done[0], m)
        return out

    with one_blas_thread():
        res = search._parallel(counted, m)
    dist = np.stack([a for a, _, _ in res])
    ind = np.stack([b for _, b, _ in res])
    sid = np.stack([c for _, _, c in res])
    return Neighbors(dist, ind, search.offsets_[sid].astype(np.int8))


class MetricSearch:
    """Classic kNN's search (raw pixels or any feature rows, one metric) behind MethodSearch's interface.

    So that one classifier and one neighbour-list function serve every method;
    the exact search itself is `knn_core.search.ExactSearch`.
    """

    copies = 1  # a training digit appears at most once in a neighbour list

    def __init__(self, metric: str = "euclidean", *, p: float = 3, n_jobs: int = 2):
        self.metric = metric
        self.p = p
        self.n_jobs = n_jobs

    def fit(self, X) -> "MetricSearch":
        X = np.asarray(X)
        self.image_shape_ = X.shape[1:] if X.ndim == 3 else None
        self.search_ = ExactSearch(self.metric, p=self.p, n_jobs=self.n_jobs).fit(X)
        self.n_samples_ = self.search_.n_samples_
        return self

    def kneighbors(self, X, k: int, *, exclude=None, progress: Progress = None) -> Neighbors:
        d, i = self.search_.kneighbors(X, k, exclude=exclude, progress=progress)
        return Neighbors(d, i, None)

    def kneighbors_training(self, k: int, *, progress: Progress = None) -> Neighbors:
        """Leave-one-out: each training digit's k nearest others."""
        return self.kneighbors(self.search_.X_, k, exclude=np.arange(self.n_samples_), progress=progress)

    def transform(self, X) -> np.ndarray:
        """Queries as this search compares them: as they are."""
        return np.asarray(X)

    def training_image(self, index: int, shift=(0, 0)) -> np.ndarray:
        """Training digit `index` as it was compared (its own pixels; classic kNN has no shifts)."""
        row = self.search_.X_[index]
        return row.reshape(self.image_shape_) if self.image_shape_ is not None else row
