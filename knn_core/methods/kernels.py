"""Distance kernels of the methods: Lp on rows, Sobel gradients and the image distortion model (IDM)."""
from __future__ import annotations

import numpy as np


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
    best = np.empty_like(b)
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
            if dy == 0 and dx == 0:
                np.copyto(best, b)
            else:
                np.minimum(best, b, out=best)
    total += best.reshape(-1, n).sum(axis=0, dtype=acc)
    return np.sqrt(np.maximum(total, 0).astype(np.float64))

