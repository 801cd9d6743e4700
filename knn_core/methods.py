"""Beyond the classic kNN: recipes of preprocessing, metric, shifts and re-ranking.

A `Recipe` says how digits are compared; `PRESETS` names the classic steps
from LeCun's MNIST page (deskew + blur, L3, shifted training copies) up to
the image distortion model (IDM) of Keysers et al. (TPAMI 2007).
`MethodClassifier` is the estimator (same API as `KNNClassifier`, the same
vote through `classifier.VotingMixin`), `MethodSearch` the
neighbour search behind it.

How each step is computed
-------------------------
* Preprocessing (deskew, Gaussian blur, 3x3 downsampling, PCA to d
  dimensions) is applied identically to training digits and queries; the
  image steps are `knn_core.preprocess`'s, uint8 stays uint8. PCA is fitted
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

Neighbours are ordered by (distance, training index, shift number); shift
number 0 is the unshifted copy (see `shift_offsets`).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, NamedTuple, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .classifier import VotingMixin
from .evaluate import NeighborLists, split_data
from .search import ExactSearch

# Bump when a change here changes what a cached neighbour list would hold.
METHODS_VERSION = "1"

METHOD_METRICS = ("euclidean", "minkowski")
RERANKS = (None, "idm")
MAX_SHIFT = 4
_CHUNK = 512  # queries per step: bounds memory, and the granularity of progress

Progress = Optional[Callable[[int, int], None]]


# --------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class Recipe:
    """How digits are compared: preprocessing, distance, shifts, re-ranking.

    Parameters
    ----------
    deskew : shear each digit upright by its image moments.
    blur_sigma : Gaussian blur (pixels); 0 = none.
    downsample : 3x3 local mean to 10x10.
    pca : project onto this many principal components of the training digits
        (after the image steps); None = keep the pixels.
    metric : "euclidean" (exact) or "minkowski" (Lp of power ``p``; two-stage
        approximation, see the module docstring).
    p : the power of "minkowski".
    shifts : augment the training set with every copy shifted by up to this
        many pixels in each direction ((2s+1)^2 copies, none materialised).
    one_vote_per_digit : with shifts, keep only each training digit's best
        shift in a neighbour list (default: every copy may be a neighbour).
    rerank : None, or "idm": re-rank the euclidean candidates by the image
        distortion model.
    candidates : how many training digits the euclidean pre-selection passes
        on to the second stage (minkowski or IDM).
    idm_window : IDM warp range w: each query pixel may match any training
        pixel within (2w+1) x (2w+1).
    idm_context : half-size of the local context compared at each pixel
        (1: 3x3 patches of horizontal and vertical Sobel gradients).
    """

    deskew: bool = False
    blur_sigma: float = 0.0
    downsample: bool = False
    pca: Optional[int] = None
    metric: str = "euclidean"
    p: float = 3.0
    shifts: int = 0
    one_vote_per_digit: bool = False
    rerank: Optional[str] = None
    candidates: int = 100
    idm_window: int = 2
    idm_context: int = 1

    def __post_init__(self):
        def whole(name, lo, hi=None):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
                rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
                raise ValueError(f"recipe {name} must be a whole number {rng}; got {v!r}")

        if self.metric not in METHOD_METRICS:
            raise ValueError(f"unknown metric {self.metric!r} in recipe; choose one of {', '.join(METHOD_METRICS)}")
        if self.rerank not in RERANKS:
            raise ValueError(f"unknown rerank {self.rerank!r}; choose None or 'idm'")
        if not isinstance(self.p, (int, float, np.integer, np.floating)) or isinstance(self.p, bool) or not self.p >= 1 or not np.isfinite(self.p):
            raise ValueError(f"minkowski needs a power p >= 1; got p={self.p!r}")
        if not isinstance(self.blur_sigma, (int, float, np.integer, np.floating)) or not 0 <= self.blur_sigma <= 10:
            raise ValueError(f"blur_sigma must be between 0 and 10 pixels; got {self.blur_sigma!r}")
        whole("shifts", 0, MAX_SHIFT)
        whole("candidates", 1)
        whole("idm_window", 0, 5)
        whole("idm_context", 0, 3)
        if self.pca is not None:
            whole("pca", 1)
        if self.pca is not None and self.shifts:
            raise ValueError("pca cannot be combined with shifts: shifting commutes with pixel distances, not with a projection")
        if self.rerank == "idm" and self.shifts:
            raise ValueError("rerank='idm' already lets every pixel move; use shifts=0 with it")
        if self.rerank == "idm" and self.metric != "euclidean":
            raise ValueError("rerank='idm' pre-selects by euclidean distance; use metric='euclidean' with it")
        # Plain Python values: equal recipes compare, hash and serialise alike.
        for name in ("shifts", "candidates", "idm_window", "idm_context"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("deskew", "downsample", "one_vote_per_digit"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "blur_sigma", float(self.blur_sigma))
        object.__setattr__(self, "p", float(self.p))
        if self.pca is not None:
            object.__setattr__(self, "pca", int(self.pca))

    @property
    def copies(self) -> int:
        """How many times one training digit can appear in a neighbour list."""
        return 1 if self.one_vote_per_digit else (2 * self.shifts + 1) ** 2

    # -- derived facts
    @property
    def uses_lp(self) -> bool:
        return self.metric == "minkowski" and float(self.p) != 2.0

    @property
    def two_stage(self) -> bool:
        return self.uses_lp or self.rerank is not None

    @property
    def distance_name(self) -> str:
        if self.rerank == "idm":
            return "IDM distance"
        if self.uses_lp:
            return f"L{_fmt_p(self.p)} distance"
        return "euclidean distance"

    def describe(self) -> str:
        """A short human description, e.g. 'deskew + blur 1 + L3 (top 100 by L2) + 2-px shifts'."""
        parts = []
        if self.deskew:
            parts.append("deskew")
        if self.blur_sigma:
            parts.append(f"blur {self.blur_sigma:g}")
        if self.downsample:
            parts.append("10x10")
        if self.pca:
            parts.append(f"PCA {self.pca}")
        if self.rerank == "idm":
            parts.append(f"IDM w={self.idm_window} ({2 * self.idm_context + 1}x{2 * self.idm_context + 1} "
                         f"gradient context) on the top {self.candidates} by L2")
        elif self.uses_lp:
            parts.append(f"L{_fmt_p(self.p)} on the top {self.candidates} by L2")
        else:
            parts.append("L2")
        if self.shifts:
            parts.append(f"{self.shifts}-px shifts" + (" (one vote per digit)" if self.one_vote_per_digit else ""))
        return " + ".join(parts)

    # -- serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "Recipe":
        return Recipe.from_dict({**self.to_dict(), **changes})


def _fmt_p(p) -> str:
    return f"{float(p):g}"


@dataclass(frozen=True)
class Preset:
    """A named recipe with its vote (k and weights, chosen on the validation split by
    benchmarks/beyond_classics.py), a human label and the figure from the literature."""

    name: str
    label: str
    recipe: Recipe
    k: int
    literature: Optional[float] = None  # test error %, None if no published figure
    source: str = ""
    note: str = ""
    weights: str = "uniform"


# Blur 0.5 px: chosen on the validation split (sigma 0, 0.25-1.5 tried; 1.5 is clearly worse, 0.5-0.75
# best for L2, L3 and L3 with shifts alike: e.g. 1-px shifts, validation error 1.12% at 0.5, 1.23% at 1.0).
_DB = dict(deskew=True, blur_sigma=0.5)
_L3 = dict(metric="minkowski", p=3.0)

# k and weights of each preset: chosen on the validation split by benchmarks/beyond_classics.py
# (k 1-10, uniform or 1/distance); 1/distance won for every preset.
_D = "distance"
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("plain", "plain pixels, L2", Recipe(), 4, 3.09, "Wilder (LeCun's MNIST page), kNN L2", weights=_D),
        Preset("L3", "plain pixels, L3", Recipe(**_L3), 3, 2.83, "Wilder (LeCun's MNIST page), kNN L3", weights=_D),
        Preset("downsample", "3x3 mean to 10x10, L2", Recipe(downsample=True), 4, 3.24,
               "classic course variant (96.76% accuracy)", weights=_D),
        Preset("deskew", "deskewed, L2", Recipe(deskew=True), 3, 2.4, "LeCun et al. 1998, kNN L2 deskewed",
               weights=_D),
        Preset("deskew+blur", "deskew + blur, L2", Recipe(**_DB), 5, 1.80,
               "Wilder: deskew, noise removal, blur, L2", weights=_D),
        Preset("deskew+blur+pca", "deskew + blur + PCA 60, L2", Recipe(**_DB, pca=60), 5, None, "",
               "60 components chosen on validation (30-80 tried)", weights=_D),
        Preset("deskew+blur+L3", "deskew + blur, L3", Recipe(**_DB, **_L3), 5, 1.73,
               "Wilder: deskew, noise removal, blur, L3", weights=_D),
        Preset("deskew+blur+L3+shift1", "deskew + blur, L3, 1-px shifts", Recipe(**_DB, **_L3, shifts=1), 6, 1.33,
               "Wilder: ... L3, 1-pixel shifts", weights=_D),
        Preset("deskew+blur+L3+shift2", "deskew + blur, L3, 2-px shifts", Recipe(**_DB, **_L3, shifts=2), 6, 1.22,
               "Wilder: ... L3, 2-pixel shifts", weights=_D),
        Preset("idm", "IDM re-ranking of the top L2 candidates",
               Recipe(deskew=True, rerank="idm", candidates=300, idm_window=2), 4, 0.54,
               "Keysers et al., TPAMI 2007 (IDM)", weights=_D),
    )
}
BEST_PRESET = "idm"


def resolve_recipe(recipe) -> Recipe:
    """A Recipe, a preset name, a dict of recipe fields or a JSON string -> Recipe."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Preset):
        return recipe.recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, str):
        if recipe in PRESETS:
            return PRESETS[recipe].recipe
        if recipe.lstrip().startswith("{"):
            return Recipe.from_json(recipe)
        raise ValueError(f"unknown method {recipe!r}; choose one of {', '.join(PRESETS)}")
    raise ValueError(f"a recipe must be a Recipe, a preset name or a dict; got {type(recipe).__name__}")


# --------------------------------------------------------------------------- images and shifts


def _as_images(X, name: str = "X") -> np.ndarray:
    """(N, H, W) images or (N, D) rows with D a square -> (N, H, W).

    uint8 stays uint8, and so become whole numbers within 0..255 of any dtype
    (lossless; exact integer distances); anything else becomes float32.
    """
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"{name}: rows of {X.shape[1]} values are not square images")
        X = X.reshape(len(X), side, side)
    if X.ndim != 3:
        raise ValueError(f"{name} must be images (N, H, W) or rows (N, H*W); got shape {X.shape}")
    if X.dtype == np.uint8:
        return X
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{name} must be numeric; got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if X.size and X.min() >= 0 and X.max() <= 255 and np.array_equal(X, np.rint(X)):
        return X.astype(np.uint8)  # whole numbers 0..255 (e.g. float32 rows of MNIST): lossless, exact arithmetic
    return X.astype(np.float32)


def prepare_images(images, recipe: Recipe) -> np.ndarray:
    """The recipe's image steps (deskew, blur, downsample), the same for training digits and queries."""
    from .features import blur, deskew, downsample

    recipe = resolve_recipe(recipe)
    a = _as_images(images)
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
    dy, dx = np.meshgrid(r, r, indexing="ij")
    dy, dx = dy.ravel(), dx.ravel()
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


def pad_frame(images: np.ndarray, s: int) -> np.ndarray:
    """Images in a frame s pixels larger on each side (where shifts up to s lose no ink)."""
    if s == 0:
        return images
    return np.pad(images, [(0, 0)] * (images.ndim - 2) + [(s, s), (s, s)])


# --------------------------------------------------------------------------- distances


def lp_distances(Q: np.ndarray, Y: np.ndarray, p: float) -> np.ndarray:
    """Lp distances between matching rows of Q and Y (broadcast over leading axes).

    Exact for uint8 rows and whole powers up to 4 (integer arithmetic).
    """
    p = float(p)
    if Q.dtype == np.uint8 and Y.dtype == np.uint8 and p == int(p) and p <= 4:
        d = np.abs(Q.astype(np.int32) - Y.astype(np.int32))
        if p == 1:
            s = d.sum(axis=-1, dtype=np.int64)
        elif p == 2:
            s = np.einsum("...i,...i->...", d, d, dtype=np.int64)
        else:
            dp = d * d if p != 3 else d * d * d  # < 2**31 for p <= 3
            if p == 4:
                dp = dp.astype(np.int64) * dp
            s = dp.sum(axis=-1, dtype=np.int64)
        return s.astype(np.float64) ** (1.0 / p)
    d = np.abs(Q.astype(np.float64) - Y.astype(np.float64))
    return (d**p).sum(axis=-1) ** (1.0 / p)


def sobel_gradients(images: np.ndarray, pad: int) -> np.ndarray:
    """Horizontal and vertical Sobel gradients of zero-padded images: (N, 2, H+2pad, W+2pad).

    The image is padded by ``pad + 1`` zeros first, so the gradients are those
    of the digit on an infinite blank field (pad >= 1 holds all of them):
    shifting a digit (inside the frame) shifts its gradients exactly.
    uint8 images give exact int32 gradients, others float32.
    """
    dtype = np.int32 if images.dtype == np.uint8 else np.float32
    f = np.pad(images.astype(dtype), [(0, 0), (pad + 1, pad + 1), (pad + 1, pad + 1)])
    sv = f[:, :-2] + 2 * f[:, 1:-1] + f[:, 2:]  # smoothed down the columns
    gx = sv[:, :, 2:] - sv[:, :, :-2]
    sh = f[:, :, :-2] + 2 * f[:, :, 1:-1] + f[:, :, 2:]  # smoothed along the rows
    gy = sh[:, 2:] - sh[:, :-2]
    return np.stack([gx, gy], axis=1)


def idm_distances(query: np.ndarray, candidates: np.ndarray, window: int = 2, context: int = 1) -> np.ndarray:
    """Image distortion model distances of one query image to candidate images (Keysers et al. 2007).

    Each pixel p of the query is described by its local context: the
    (2c+1) x (2c+1) patch of horizontal and vertical Sobel gradients around
    it (c = ``context``; 18 values for c=1). It may match the context of any
    pixel p + d of the candidate with |dy|, |dx| <= ``window``, independently
    of its neighbours; the squared difference of the best match is summed
    over the query pixels:

        IDM(q, y) = sum_p  min_{|d| <= w}  || F_q(p) - F_y(p + d) ||^2

    Returned as sqrt(IDM) (so with window=0 it is the euclidean distance of
    the context features). Outside the image counts as blank. Exact integer
    arithmetic for uint8 images. query: (H, W); candidates: (C, H, W) -> (C,).

    How it is fast: the sum over a context patch of squared differences is a
    box filter of the per-pixel squared gradient differences (about 10 array
    passes per displacement), with the candidates on the last, contiguous
    axis. Where the query's context is blank the best match depends only on
    the candidate (min_d of its context energy), computed once for all
    pixels; the displacement loop runs only over the box around the query's ink.
    """
    H, W = query.shape
    c, w = context, window
    side = 2 * c + 1
    n = len(candidates)
    if n == 0:
        return np.zeros(0)
    gq = sobel_gradients(query[None], c)[0]  # (2, H+2c, W+2c); frame row i is image row i - c
    # (2, H+2c+2w, W+2c+2w, C): candidates last, so every slice is long contiguous runs.
    g = np.ascontiguousarray(sobel_gradients(candidates, c + w).transpose(1, 2, 3, 0))
    acc = np.int64 if g.dtype == np.int32 else np.float64

    def box(a, out_h, out_w):  # sums over side x side windows: (out_h + 2c, out_w + 2c, C) -> (out_h, out_w, C)
        rows = a[:out_h].copy()
        for o in range(1, side):
            rows += a[o : o + out_h]
        out = rows[:, :out_w].copy()
        for o in range(1, side):
            out += rows[:, o : o + out_w]
        return out

    # Blank query context: min over displacements of the candidate's context energy.
    energy = g[0] * g[0]
    energy += g[1] * g[1]
    boxed = box(energy, H + 2 * w, W + 2 * w)
    blank = boxed[:H, :W].copy()
    for dy in range(2 * w + 1):
        for dx in range(2 * w + 1):
            np.minimum(blank, boxed[dy : dy + H, dx : dx + W], out=blank)
    total = blank.reshape(-1, n).sum(axis=0, dtype=acc)
    # Query pixels whose context holds some gradient: rows y0..y1, columns x0..x1.
    ys, xs = np.nonzero((gq != 0).any(axis=0))
    if len(ys) == 0:
        return np.sqrt(total.astype(np.float64))
    y0, y1 = max(ys.min() - 2 * c, 0), min(ys.max(), H - 1)
    x0, x1 = max(xs.min() - 2 * c, 0), min(xs.max(), W - 1)
    h, wd = y1 - y0 + 1, x1 - x0 + 1
    total -= blank[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, n).sum(axis=0, dtype=acc)
    q0 = gq[0, y0 : y1 + side, x0 : x1 + side, None]
    q1 = gq[1, y0 : y1 + side, x0 : x1 + side, None]
    e = np.empty((h + 2 * c, wd + 2 * c, n), g.dtype)
    t = np.empty_like(e)
    rows = np.empty((h, wd + 2 * c, n), g.dtype)
    b = np.empty((h, wd, n), g.dtype)
    best = None
    for dy in range(2 * w + 1):
        for dx in range(2 * w + 1):
            win = (slice(y0 + dy, y0 + dy + h + 2 * c), slice(x0 + dx, x0 + dx + wd + 2 * c))
            np.subtract(g[0][win], q0, out=e)
            e *= e
            np.subtract(g[1][win], q1, out=t)
            t *= t
            e += t
            np.copyto(rows, e[:h])
            for o in range(1, side):
                rows += e[o : o + h]
            np.copyto(b, rows[:, :wd])
            for o in range(1, side):
                b += rows[:, o : o + wd]
            if best is None:
                best = b.copy()
            else:
                np.minimum(best, b, out=best)
    total += best.reshape(-1, n).sum(axis=0, dtype=acc)
    return np.sqrt(np.maximum(total, 0).astype(np.float64))


# --------------------------------------------------------------------------- the search

_controller = []


def _one_blas_thread():
    """Context manager: BLAS single-threaded (the controller is built once: building it costs ~0.1 s)."""
    from threadpoolctl import ThreadpoolController

    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")



class MethodNeighbors(NamedTuple):
    """Neighbour lists of a recipe: what the pages show."""

    distances: np.ndarray  # (m, k) float64, the distance the recipe ranks by (after re-ranking)
    indices: np.ndarray  # (m, k) int64, into the ORIGINAL training set
    shifts: np.ndarray  # (m, k, 2) int8: the neighbour is the training digit moved by (dy, dx)


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
    >>> nb = s.kneighbors(test_images, 5)  # MethodNeighbors           # doctest: +SKIP
    """

    def __init__(self, recipe="plain", *, n_jobs: int = 2):
        self.recipe = resolve_recipe(recipe)
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit
    def fit(self, images) -> "MethodSearch":
        r = self.recipe
        imgs = _as_images(images, "training images")
        if len(imgs) == 0:
            raise ValueError("training data is empty")
        self.image_shape_ = imgs.shape[1:]
        self.prepared_ = prepare_images(imgs, r)  # (N, h, w), for re-ranking and display
        self.n_samples_ = len(imgs)
        n_feat = int(np.prod(self.prepared_.shape[1:]))
        if r.pca is not None and r.pca > n_feat:
            raise ValueError(f"pca={r.pca} is more than the {n_feat} features of the "
                             f"{'x'.join(map(str, self.prepared_.shape[1:]))} digits")
        self.offsets_ = shift_offsets(r.shifts)
        # One BLAS thread: on a busy machine multithreaded eigh can take 20x longer (measured: 45 s vs 2.6 s).
        with _one_blas_thread():
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
    def kneighbors(self, images, k: int, *, exclude=None, progress: Progress = None) -> MethodNeighbors:
        """The k nearest training digits (over the shifted copies if any) of each query.

        ``exclude[i]``: a training index query i may not return (leave-one-out;
        with shifts, none of its copies).
        """
        Q = prepare_images(_as_images(images, "query images"), self.recipe)
        return self.kneighbors_prepared(Q, k, exclude=exclude, progress=progress)

    def kneighbors_prepared(self, Q, k: int, *, exclude=None, progress: Progress = None) -> MethodNeighbors:
        """`kneighbors` of queries already through `prepare_images` (e.g. the training digits)."""
        if Q.shape[1:] != self.prepared_.shape[1:]:
            raise ValueError(f"query images are {Q.shape[1:]} after preprocessing, the training digits "
                             f"{self.prepared_.shape[1:]}")
        available = self.n_samples_ - (exclude is not None)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k:
            raise ValueError(f"k must be a positive whole number; got {k!r}")
        if k > available * self.recipe.copies:
            raise ValueError(f"k={k} neighbours asked, but only {available * self.recipe.copies} training digits "
                             "(and shifted copies) can be neighbours")
        m = len(Q)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (m,):
                raise ValueError("exclude needs one training index per query")
        dist = np.empty((m, k))
        ind = np.empty((m, k), dtype=np.int64)
        sid = np.empty((m, k), dtype=np.int64)
        for s in range(0, m, _CHUNK):
            sl = slice(s, min(s + _CHUNK, m))
            ex = None if exclude is None else exclude[sl]
            dist[sl], ind[sl], sid[sl] = self._chunk(Q[sl], k, ex, available)
            if progress is not None:
                progress(sl.stop, m)
        return MethodNeighbors(dist, ind, self.offsets_[sid].astype(np.int8))

    def _chunk(self, Q, k, exclude, available):
        r = self.recipe
        if not r.two_stage:
            # Exact euclidean over the (augmented) set: each shift's top k holds
            # every member of the top k overall (also of the best-shift lists).
            d, i, s = self._stage1(Q, k, exclude)
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
        rows = np.repeat(np.arange(m), C)
        return _sort_pairs(rows, D.ravel(), cand.ravel(), np.zeros(m * C, np.int64), m, k, False)


# --------------------------------------------------------------------------- the estimator


class MethodClassifier(VotingMixin, ClassifierMixin, BaseEstimator):
    """k-nearest-neighbours with a recipe: preprocessing, L2 / L3, shifts, IDM re-ranking.

    Same API as `KNNClassifier`; ``kneighbors`` returns indices into the
    ORIGINAL training set and the distance the recipe ranked by (after
    re-ranking); ``kneighbors_detail`` also says which shifted copy matched.

    Parameters
    ----------
    recipe : Recipe, preset name (see `PRESETS`), dict or JSON, default "plain"
    n_neighbors : int, default 5
    weights : {"uniform", "distance"}
    tie_break : {"smallest", "nearest", "random"}
    random_state : seed of the "random" tie rule
    n_jobs : worker threads

    With shifts, a training digit may be several of the k neighbours (one
    per shifted copy) and vote once for each, unless the recipe says
    ``one_vote_per_digit``.
    """

    def __init__(self, recipe="plain", n_neighbors: int = 5, *, weights: str = "uniform",
                 tie_break: str = "smallest", random_state=None, n_jobs: int = 2):
        self.recipe = recipe
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.tie_break = tie_break
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        recipe = resolve_recipe(self.recipe)
        self._check_vote_params(self.weights, self.tie_break)
        X = _as_images(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have one label per image of X: X has {len(X)}, y has shape {y.shape}")
        self._check_k(self.n_neighbors, len(X) * recipe.copies)
        self.recipe_ = recipe
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self.search_ = MethodSearch(recipe, n_jobs=self.n_jobs).fit(X)
        self.n_samples_fit_ = len(X)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        return self

    @property
    def distance_name(self) -> str:
        return resolve_recipe(self.recipe).distance_name

    def kneighbors_detail(self, X=None, n_neighbors=None, *, progress=None) -> MethodNeighbors:
        """(distances, training indices, shifts (dy, dx) of the matched copies); X=None: leave-one-out."""
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            self._check_k(k, (self.n_samples_fit_ - 1) * self.recipe_.copies)
            return self.search_.kneighbors_prepared(
                self.search_.prepared_, k, exclude=np.arange(self.n_samples_fit_), progress=progress
            )
        self._check_k(k, self.n_samples_fit_ * self.recipe_.copies)
        return self.search_.kneighbors(X, k, progress=progress)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True, *, progress=None):
        nb = self.kneighbors_detail(X, n_neighbors, progress=progress)
        return (nb.distances, nb.indices) if return_distance else nb.indices

    def transform(self, X) -> np.ndarray:
        """Queries as the recipe compares them (prepared, in the padded frame when shifting)."""
        return self.search_.transform(X)

    def training_image(self, index: int, shift=(0, 0)) -> np.ndarray:
        """A training digit as the recipe compared it (prepared, padded, moved by `shift`)."""
        return self.search_.training_image(index, shift)


# --------------------------------------------------------------------------- cached evaluation


@dataclass(frozen=True)
class RecipeNeighborLists(NeighborLists):
    """`NeighborLists` of a recipe, plus which shifted copy each neighbour is and how long the search took.

    ``indices`` point into the original training set of the split; a
    training digit may appear more than once (at different shifts).
    """

    shifts: Optional[np.ndarray] = None  # (m, K, 2) int8, (dy, dx) of the training copy
    recipe: Optional[Recipe] = None
    seconds: float = float("nan")  # wall time of the search when it was computed (not when read)
    cpu_seconds: float = float("nan")  # CPU time of the process over that search (all threads)


def recipe_neighbors(ds, recipe="plain", split: str = "test", *, train_size=None, k_max: int = 50,
                     progress: Progress = None, use_cache: bool = True, n_jobs: int = 2) -> RecipeNeighborLists:
    """A recipe's neighbour lists for a split of a Dataset, cached on disk (knn_core.cache).

    test: the test digits against the 60,000 training digits; val: the last
    10,000 training digits against the first 50,000 (for choosing k and
    parameters honestly); loo: each training digit against the others.
    train_size: a class-balanced subset of the training digits (indices then
    point into the subset, as with evaluate.split_neighbors; see train_rows).
    Keyed by the recipe's fields, the data's fingerprint, the split, the
    training size and k_max, so the command line and the pages share one entry.
    """
    from . import cache

    recipe = resolve_recipe(recipe)
    X, y, Q, qy, k_max, parts = _cache_entry(ds, recipe, split, train_size, k_max)
    loo = Q is None

    def compute():
        t0, c0 = time.perf_counter(), time.process_time()
        search = MethodSearch(recipe, n_jobs=n_jobs).fit(X)
        if loo:
            nb = search.kneighbors_prepared(search.prepared_, k_max, exclude=np.arange(len(X)), progress=progress)
        else:
            nb = search.kneighbors(Q, k_max, progress=progress)
        return {"distances": nb.distances, "indices": nb.indices, "shifts": nb.shifts,
                "seconds": np.float64(time.perf_counter() - t0), "cpu_seconds": np.float64(time.process_time() - c0)}

    got = cache.cached_arrays("recipe-neighbors", parts, compute, use_cache=use_cache)
    return RecipeNeighborLists(
        got["distances"], got["indices"], np.asarray(y), np.asarray(y if loo else qy),
        shifts=got["shifts"], recipe=recipe, seconds=float(got["seconds"]), cpu_seconds=float(got["cpu_seconds"]),
    )


def estimate_recipe_seconds(ds, recipe="plain", split: str = "test", train_size=None) -> float:
    """Rough wall time of an uncached recipe_neighbors search on 2 cores (for a warning, not a promise).

    Fitted to the benchmark's figures for the full test set: deskew ~10 s,
    1-px shifts + L3 ~1 min, 2-px shifts + L3 ~8 min, IDM (300 candidates) ~4 min.
    """
    recipe = resolve_recipe(recipe)
    X, _, Q, _, _ = split_data(ds, split, train_size)
    n_queries = len(X) if Q is None else len(Q)
    copies = (2 * recipe.shifts + 1) ** 2
    seconds = 1.0 + 4e-5 * (len(X) + n_queries)  # preprocessing
    seconds += n_queries * 2e-4 + len(X) * n_queries / 2e8 * copies * (1 + copies / 5)
    if recipe.rerank == "idm":
        seconds += n_queries * recipe.candidates * 8e-5
    elif recipe.uses_lp:
        seconds += n_queries * recipe.candidates * copies * 2e-6
    return seconds


def _cache_entry(ds, recipe: Recipe, split: str, train_size, k_max: int):
    """(X, y, Q, qy, k_max clamped to what the split holds, cache key parts) of a recipe's lists.

    The key has no training size for the full training set (entries from before train_size)."""
    X, y, Q, qy, _ = split_data(ds, split, train_size)
    k_max = min(int(k_max), (len(X) - (Q is None)) * recipe.copies)
    parts = dict(data=ds.fingerprint, split=split, recipe=recipe.to_json(), k_max=k_max,
                 version=METHODS_VERSION)
    if len(X) < len(split_data(ds, split)[1]):
        parts["train_size"] = len(X)
    return X, y, Q, qy, k_max, parts


def recipe_cached(ds, recipe="plain", split: str = "test", *, train_size=None, k_max: int = 50) -> bool:
    """Whether recipe_neighbors(ds, recipe, split, ...) would come from the disk cache (computes nothing)."""
    from . import cache

    parts = _cache_entry(ds, resolve_recipe(recipe), split, train_size, k_max)[5]
    key = cache.cache_key(name="recipe-neighbors", **parts)
    return (cache.cache_dir() / f"recipe-neighbors-{key}.npz").exists()


# --------------------------------------------------------------------------- exactness of the two-stage Lp


def brute_force_neighbors(search: MethodSearch, images, k: int, *, progress: Progress = None,
                          prune: bool = True) -> MethodNeighbors:
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
        raise ValueError("brute force is for euclidean / minkowski recipes, not for re-ranking ones")
    Q = prepare_images(_as_images(images, "query images"), r)
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

    with _one_blas_thread():
        res = search._parallel(counted, m)
    dist = np.stack([a for a, _, _ in res])
    ind = np.stack([b for _, b, _ in res])
    sid = np.stack([c for _, _, c in res])
    return MethodNeighbors(dist, ind, search.offsets_[sid].astype(np.int8))
