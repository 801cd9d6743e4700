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


def displacement_costs(query: np.ndarray, candidates: np.ndarray, max_dy: int, max_dx: int,
                       context: int = 1) -> np.ndarray:
    """Local context costs of every query pixel against every displaced candidate pixel.

    cost[dy + max_dy, dx + max_dx, py, px, j] = || F_q(py, px) - F_j(py + dy, px + dx) ||^2,
    F the (2c+1) x (2c+1) patch of Sobel gradients of ``idm_distances`` (outside the
    image blank), for |dy| <= max_dy, |dx| <= max_dx: (2max_dy+1, 2max_dx+1, H, W, C),
    int64 for uint8 images, else float64. The building block of ``p2dhmdm_distances``.
    """
    H, W = query.shape
    c = context
    side = 2 * c + 1
    n = len(candidates)
    pad = c + max(max_dy, max_dx)
    gq = sobel_gradients(query[None], c)[0][:, :, :, None]  # (2, H+2c, W+2c, 1)
    g = np.ascontiguousarray(sobel_gradients(candidates, pad).transpose(1, 2, 3, 0))  # (2, H+2pad, W+2pad, C)
    acc = np.int64 if g.dtype == np.int32 else np.float64
    out = np.empty((2 * max_dy + 1, 2 * max_dx + 1, H, W, n), acc)
    e = np.empty((H + 2 * c, W + 2 * c, n), g.dtype)
    t = np.empty_like(e)
    rows = np.empty((H, W + 2 * c, n), g.dtype)
    for iy, dy in enumerate(range(-max_dy, max_dy + 1)):
        for ix, dx in enumerate(range(-max_dx, max_dx + 1)):
            # the candidate's patch of query pixel (py, px) starts at frame row py + dy - c + pad
            win = (slice(pad - c + dy, pad - c + dy + H + 2 * c), slice(pad - c + dx, pad - c + dx + W + 2 * c))
            np.subtract(g[0][win], gq[0], out=e)
            e *= e
            np.subtract(g[1][win], gq[1], out=t)
            t *= t
            e += t
            np.copyto(rows, e[:H])
            for o in range(1, side):
                rows += e[o : o + H]
            b = out[iy, ix]
            b[...] = rows[:, :W]
            for o in range(1, side):
                b += rows[:, o : o + W]
    return out


def _min_with_neighbours(a: np.ndarray, penalty: float) -> np.ndarray:
    """m[s] = min(a[s], a[s-1] + penalty, a[s+1] + penalty) along axis 0 (a state may move by one per step)."""
    m = a.copy()
    if penalty:
        a = a + penalty
    np.minimum(m[1:], a[:-1], out=m[1:])
    np.minimum(m[:-1], a[1:], out=m[:-1])
    return m


def p2dhmdm_from_costs(costs: np.ndarray, window: int = 2, deviation: int = 1, penalty: float = 0.0) -> np.ndarray:
    """The pseudo-2D distortion distance from ``displacement_costs`` (see ``p2dhmdm_distances``).

    costs: (2a+1, 2b+1, H, W, C) with a >= window and b >= window + deviation -> (C,) sqrt of the
    cheapest alignment's cost.
    """
    a = (costs.shape[0] - 1) // 2
    b = (costs.shape[1] - 1) // 2
    w, v = window, deviation
    if a < w or b < w + v:
        raise ValueError("costs do not cover the window and deviation")
    H, W = costs.shape[2:4]
    c = costs[a - w : a + w + 1]  # (2w+1, 2b+1, H, W, C): vertical offsets -w..w

    def local(py):  # (2w+1 dy, 2w+1 dxc, W, C) for row py: the column offset dxc's best pixel deviation -v..v
        out = c[:, b - w : b + w + 1, py].astype(np.float64)
        for dev in range(-v, v + 1):
            if dev:
                other = c[:, b - w + dev : b + w + 1 + dev, py]
                np.minimum(out, other + penalty * abs(dev) if penalty else other, out=out)
        return out

    # down each column (all columns and column offsets at once): the vertical offset moves by <= 1 per row
    d = local(0)
    for py in range(1, H):
        d = _min_with_neighbours(d, penalty)
        d += local(py)
    col = d.min(axis=0)  # (2w+1 dxc, W, C): each query column against each column offset
    # across the columns: the column offset moves by <= 1 per column
    e = col[:, 0].copy()
    for px in range(1, W):
        e = _min_with_neighbours(e, penalty)
        e += col[:, px]
    return np.sqrt(np.maximum(e.min(axis=0), 0))


def p2dhmdm_distances(query: np.ndarray, candidates: np.ndarray, window: int = 2, deviation: int = 1,
                      context: int = 1, penalty: float = 0.0) -> np.ndarray:
    """Pseudo-2D hidden Markov distortion model distances (P2DHMDM, Keysers et al. 2007, PAMI).

    Like ``idm_distances`` each query pixel p is matched to a candidate pixel by its
    3x3 (2c+1) gradient context, but the matches are tied together: every query column
    x is aligned to a candidate column x + dx(x), |dx| <= ``window``, dx changing by at most
    one from column to column (a monotone column warp: the candidate's columns advance by
    0, 1 or 2 per query column); down a query column, row y is matched to candidate row
    y + dy(y), |dy| <= ``window``, dy changing by at most one from row to row, and each pixel
    may deviate horizontally from its column's dx by up to ``deviation`` pixels. The
    distance is sqrt of the least total cost of such an alignment (found by dynamic
    programming: first down every column for every column offset, then across the columns),
    each change of offset and each pixel's deviation adding ``penalty``:

        P2D(q, y) = min over dx(.), dy(., .), dev(., .) of
                    sum_p || F_q(p) - F_y(p + (dy, dx + dev)) ||^2 + penalty * (changes + |dev|)

    Its alignments are a subset of the IDM's with window ``window + deviation``, so
    P2D >= that IDM; with window 0 and deviation 0 it is the euclidean distance of
    the context features. query: (H, W); candidates: (C, H, W) -> (C,).
    """
    if len(candidates) == 0:
        return np.zeros(0)
    costs = displacement_costs(query, candidates, window, window + deviation, context)
    return p2dhmdm_from_costs(costs, window, deviation, penalty)



TANGENT_NAMES = ("x-shift", "y-shift", "rotation", "scaling", "parallel hyperbolic", "diagonal hyperbolic", "thickness")


def tangent_vectors(images: np.ndarray) -> np.ndarray:
    """The 7 tangent vectors of Simard et al. of each image, each scaled to unit length: (N, 7, H*W) float64.

    The image changes to first order as it is shifted (x, y), rotated, scaled,
    sheared along the axes or the diagonals, and its strokes thickened. Built
    from central-difference gradients on a blank field (zeros outside), with
    coordinates from the image centre in units of half the side. Unit length:
    the penalty of `tangent_distances` then weighs every distortion alike
    (a tangent that is all zeros, on a blank image, stays zero).
    """
    f = np.pad(np.asarray(images, np.float64), [(0, 0), (1, 1), (1, 1)])
    gx = (f[:, 1:-1, 2:] - f[:, 1:-1, :-2]) / 2
    gy = (f[:, 2:, 1:-1] - f[:, :-2, 1:-1]) / 2
    H, W = gx.shape[1:]
    y = ((np.arange(H) - (H - 1) / 2) / (H / 2))[:, None]
    x = ((np.arange(W) - (W - 1) / 2) / (W / 2))[None, :]
    t = np.stack([gx, gy, y * gx - x * gy, x * gx + y * gy, x * gx - y * gy, y * gx + x * gy, gx * gx + gy * gy], axis=1)
    t = t.reshape(len(f), 7, H * W)
    norm = np.sqrt((t * t).sum(axis=-1, keepdims=True))
    return t / np.where(norm > 0, norm, 1.0)


def tangent_distances(query: np.ndarray, candidates: np.ndarray, penalty: float = 0.1,
                      candidate_tangents: np.ndarray | None = None) -> np.ndarray:
    """Two-sided tangent distances of one query image to candidate images (Simard et al. 1993).

    Both images may move along their 7 tangents (`tangent_vectors`): the
    distance is between the two tangent planes, with a penalty on how far
    each moves (Keysers et al.'s regularised form, which keeps a 6 from
    passing as a rotated 9):

        TD(q, y)^2 = min_{a, b}  || q + T_q a - y - T_y b ||^2 + penalty * (|a|^2 + |b|^2)

    a ridge regression with a closed form per candidate. penalty=0 is the
    classic tangent distance; a large penalty tends to the euclidean
    distance. query: (H, W); candidates: (C, H, W) -> (C,) sqrt(TD^2).
    ``candidate_tangents``: (C, 7, H*W) if already computed.
    """
    q = np.asarray(query, np.float64).reshape(-1)
    Y = np.asarray(candidates, np.float64).reshape(len(candidates), -1)
    n = len(Y)
    if n == 0:
        return np.zeros(0)
    tq = tangent_vectors(query[None])[0]  # (7, D)
    ty = tangent_vectors(candidates) if candidate_tangents is None else candidate_tangents  # (C, 7, D)
    d = q[None] - Y  # (C, D)
    m = tq.shape[0]
    G = np.empty((n, 2 * m, 2 * m))
    G[:, :m, :m] = tq @ tq.T
    cross = -(ty.reshape(n * m, -1) @ tq.T).reshape(n, m, m).transpose(0, 2, 1)  # -tq_i . ty_j
    G[:, :m, m:] = cross
    G[:, m:, :m] = cross.transpose(0, 2, 1)
    G[:, m:, m:] = ty @ ty.transpose(0, 2, 1)
    G += penalty * np.eye(2 * m)
    b = np.concatenate([d @ tq.T, -(ty @ d[:, :, None])[:, :, 0]], axis=1)  # (C, 2m): M^T d, M = [T_q, -T_y]
    if penalty > 0:
        x = np.linalg.solve(G, b[:, :, None])[:, :, 0]
    else:  # singular when a tangent is zero: least squares
        x = np.stack([np.linalg.lstsq(g, v, rcond=None)[0] for g, v in zip(G, b)])
    td2 = (d * d).sum(axis=1) - (b * x).sum(axis=1)
    return np.sqrt(np.maximum(td2, 0))
