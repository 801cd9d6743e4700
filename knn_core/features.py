"""Classic feature transforms of 28x28 digits: deskew, blur, downsample.

The image steps the methods (:mod:`knn_core.methods`) and baselines compose
with a metric.  Batches (N, H, W) or single images (H, W); uint8 stays uint8.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import ImageError
from .threads import pause_point

__all__ = ["deskew", "blur", "downsample"]


def _as_batch(images) -> tuple[np.ndarray, bool]:
    a = np.asarray(images)
    if a.ndim == 2:
        return a[None], True
    if a.ndim != 3 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ImageError(f"expected images of shape (N, H, W) or (H, W), got {a.shape}")
    return a, False


def _progress_bar(total: int, progress: bool | None, desc: str):
    """A tqdm bar when asked for, or by default for more than 5000 images; else None."""
    if progress is None:
        progress = total > 5000
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", mininterval=0.5)


def deskew(images, progress: bool | None = None) -> np.ndarray:
    """Shear each digit so its main axis is vertical (the classic moment deskew).

    Why: slant is the largest source of variation between writers that says
    nothing about the digit; removing it from training and query digits alike
    makes pixel distances compare shapes.  skew = mu11 / mu02 (central image
    moments, computed for the whole batch in numpy); each image is sheared
    horizontally about its centre-of-mass row with cv2.warpAffine
    (WARP_INVERSE_MAP | INTER_LINEAR), which leaves the centre of mass in place.
    Blank images are returned unchanged.  Ink sheared past the field's edge is
    lost (as in the classic).  Accepts (N, H, W) or (H, W); uint8 stays uint8
    (rounded), other dtypes come back as float32.  Shows a tqdm bar over 5000
    images unless ``progress=False``.
    """
    a, single = _as_batch(images)
    n, h, w = a.shape
    out_dtype = np.uint8 if a.dtype == np.uint8 else np.float32
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    out = np.empty((n, h, w), out_dtype)
    chunk = 2048
    bar = _progress_bar(n, progress, "deskew")
    for s in range(0, n, chunk):
        f = a[s : s + chunk].astype(np.float64)
        m00 = f.sum(axis=(1, 2))
        rows = f.sum(axis=2)
        cols = f.sum(axis=1)
        safe = np.where(m00 > 0, m00, 1.0)
        cy = rows @ ys / safe
        cx = cols @ xs / safe
        mu02 = rows @ (ys**2) - m00 * cy**2
        mu11 = np.einsum("nij,i,j->n", f, ys, xs) - m00 * cx * cy
        ok = (m00 > 0) & (mu02 > 1e-2 * np.maximum(m00, 1e-12))
        skew = np.where(ok, mu11 / np.where(ok, mu02, 1.0), 0.0)
        src = a[s : s + chunk]
        for j in range(len(f)):
            if j % 256 == 0:
                pause_point()  # a background fit: the server's requests first (knn_core.threads)
            img = src[j] if src.dtype == out_dtype else src[j].astype(out_dtype)
            if not ok[j]:
                out[s + j] = img
                continue
            m = np.array([[1.0, skew[j], -skew[j] * cy[j]], [0.0, 1.0, 0.0]])
            out[s + j] = cv2.warpAffine(
                img, m, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=0,
            )
        if bar is not None:
            bar.update(len(f))
    if bar is not None:
        bar.close()
    return out[0] if single else out


def blur(images, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur of each image (not across the batch).

    Why: a little blur turns "the stroke is 1 px to the left" from a total
    mismatch into a near match, which helps a pixel-distance classifier.
    Outside the field counts as blank (zero padding), so the total ink is kept
    except for what spills over the edge.  uint8 stays uint8 (rounded), other
    dtypes come back as float32.  Accepts (N, H, W) or (H, W).
    """
    from scipy.ndimage import gaussian_filter

    a, single = _as_batch(images)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    out_dtype = np.uint8 if a.dtype == np.uint8 else np.float32
    out = np.empty(a.shape, out_dtype)
    for s in range(0, len(a), 2048):
        pause_point()
        f = a[s : s + 2048].astype(np.float32)
        if sigma > 0:
            f = gaussian_filter(f, sigma=(0, sigma, sigma), mode="constant", cval=0.0, truncate=4.0)
        out[s : s + 2048] = np.clip(np.rint(f), 0, 255) if out_dtype == np.uint8 else f
    return out[0] if single else out


def downsample(images) -> np.ndarray:
    """Mean of 3x3 blocks: (N, 28, 28) -> (N, 10, 10) (any size -> ceil(H/3) x ceil(W/3)).

    Why: fewer, smoother features make kNN faster and more tolerant of small
    shifts.  28 is padded to 30 (one row/column each side); the edge blocks
    average only the real pixels they cover, so this equals zero padding for
    MNIST's blank borders while a constant image stays constant.
    uint8 stays uint8 (rounded), other dtypes come back as float32.
    """
    a, single = _as_batch(images)
    n, h, w = a.shape
    ph, pw = (-h) % 3, (-w) % 3
    pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    f = np.pad(a.astype(np.float32), pad)
    ones = np.pad(np.ones((h, w), np.float32), pad[1:])
    H, W = f.shape[1] // 3, f.shape[2] // 3
    sums = f.reshape(n, H, 3, W, 3).sum(axis=(2, 4))
    counts = ones.reshape(H, 3, W, 3).sum(axis=(1, 3))
    out = sums / counts
    if a.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    else:
        out = out.astype(np.float32)
    return out[0] if single else out
