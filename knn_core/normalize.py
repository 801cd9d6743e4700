"""A drawing -> the 28x28 digit the classifier sees, the MNIST way.

MNIST digits were made like this (LeCun et al.): the writer's digit was
size-normalised to fit a 20x20 box keeping its aspect ratio (with
anti-aliasing, hence the grey levels), then placed in a 28x28 field so that its
centre of mass sits at the centre.  The bundled data confirm the details we
copy: the ink bounding box has 20 px on its larger side, the intensity-weighted
centre of mass is at array index (14, 14) with a spread of +-0.5 px (std 0.29 =
a uniform rounding error, i.e. the shift was a whole number of pixels), and the
brightest pixel is 255.  A kNN compares pixels one by one, so a query digit that
is normalised differently (off-centre, other size, other polarity) is far from
every training digit; everything here exists to make a drawing look like MNIST
before it is compared (:mod:`knn_core.photo` cleans up photos first).

Work is bounded by what a digit needs, whatever the input's size: pictures
are shrunk to at most ``MAX_SIDE`` px before any per-pixel float work, and
stroke thickening runs at canvas scale with a capped radius, so its cost does
not grow with the input.

Image encodings accepted by :func:`find_ink` (and produced by
:func:`knn_core.testing.simulate_canvas`):

``"white_on_black"``
    RGBA, alpha 255 everywhere, white ink in RGB on a black background
    (the drawing canvas' default).
``"black_on_white"``
    RGBA (or RGB/grey), alpha 255, black ink on white paper.
``"alpha"``
    a transparent background (alpha 0) with the ink in the alpha channel; RGB
    carries the pen colour, or zeros, or anything: it is ignored.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from .errors import EmptyDrawingError, ImageError

__all__ = [
    "Stages",
    "find_ink",
    "canvas_to_mnist",
    "canvas_to_mnist_stages",
    "stroke_width",
    "MNIST_SIZE",
    "MNIST_BOX",
    "MNIST_CENTRE",
    "MNIST_STROKE",
    "CANVAS_SIDE",
    "MAX_SIDE",
]

MNIST_SIZE = 28  # side of the field
MNIST_BOX = 20  # the larger side of the digit's ink box
MNIST_CENTRE = 14.0  # where MNIST's centres of mass sit (array index, rows and columns)
MNIST_STROKE = 0.125  # MNIST's median stroke width (2.5 px) over the box's larger side (20 px)

EMPTY_INK = 0.05  # a drawing whose strongest ink is below this (0..1) has no digit
BOX_FRACTION = 0.1  # ink below this fraction of the peak is ignored when finding the box

CANVAS_SIDE = 280  # the drawing canvas sends 280 x 280: the scale everything here is tuned at
MAX_SIDE = 2 * CANVAS_SIDE  # pictures are shrunk to this longest side before anything else
THICKEN_SIDE = CANVAS_SIDE  # strokes are thickened with the digit's box at most this big
THICKEN_MAX_RADIUS = 18  # px at THICKEN_SIDE; MNIST_STROKE needs at most 17 there

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, what cv2's RGB2GRAY uses


# --------------------------------------------------------------------------- ink


@contextmanager
def image_errors(what: str) -> Iterator[None]:
    """Turn OpenCV's and numpy's own failures on a strange picture into an ImageError naming it."""
    try:
        yield
    except cv2.error as exc:
        reason = f"OpenCV: {getattr(exc, 'err', '') or 'error'} in {getattr(exc, 'func', '') or '?'}"
        raise ImageError(f"the {what} could not be processed ({reason})") from exc  # no build paths
    except MemoryError as exc:
        raise ImageError(f"the {what} is too big to process (out of memory)") from exc


def as_image_array(image) -> np.ndarray:
    """Anything array-like -> a grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) numeric array, or ImageError."""
    try:
        a = np.asarray(image)
    except Exception as exc:  # ragged lists and the like
        raise ImageError(f"not an image array ({exc})") from exc
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ImageError(f"not an image array: dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(
            f"expected a grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) image, got shape {a.shape}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"empty image, shape {a.shape}")
    return a


def to_unit_float(a: np.ndarray) -> np.ndarray:
    """Pixel values -> float32 in [0, 1] (uint8/uint16 by their range; floats above 1 as 0..255)."""
    if np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
        if not np.isfinite(f).all():
            raise ImageError("image contains NaN or infinite values")
        if f.size and f.max() > 1.0:
            f = f / 255.0
        return np.clip(f, 0.0, 1.0)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    f = a.astype(np.float32)
    return np.clip(f / 255.0, 0.0, 1.0)


def shrink_to(a: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """Scale an image down (area averaging) so its longer side is at most ``side``; smaller ones are kept.

    Why: nothing about a digit needs more pixels than this, and every later
    step then costs at most a fixed amount, however big the input.  uint8,
    uint16 and float32 keep their dtype; other dtypes are first mapped to
    float32 in [0, 1] (OpenCV resizes only those).
    """
    h, w = a.shape[:2]
    if max(h, w) <= side:
        return a
    if a.dtype not in (np.uint8, np.uint16, np.float32):
        a = to_unit_float(a)
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    out = cv2.resize(np.ascontiguousarray(a), size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], *a.shape[2:])  # cv2 drops a length-1 axis in some builds


def border(g: np.ndarray) -> np.ndarray:
    """The outer ring of pixels, where the background is."""
    if g.shape[0] < 3 or g.shape[1] < 3:
        return g.ravel()
    return np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])


def ink_from_grey(g: np.ndarray) -> np.ndarray:
    """Grey in [0,1], either polarity -> ink in [0,1] with the background at exactly 0.

    The background is the median of the outer ring of pixels (a digit touches
    the border, if at all, in a few places); a light background means dark ink,
    so the image is inverted.  The background level is then subtracted and the
    remaining range stretched to [0, 1].
    """
    bg = float(np.median(border(g)))
    if bg > 0.5:
        g = 1.0 - g
        bg = 1.0 - bg
    if bg <= 0.0:
        return np.clip(g, 0.0, 1.0).astype(np.float32, copy=False)
    return np.clip((g - bg) / (1.0 - bg), 0.0, 1.0).astype(np.float32)


def find_ink(image) -> np.ndarray:
    """Any grey/RGB/RGBA image, any polarity -> float32 (H, W) ink map in [0, 1], ink high.

    Why: the canvas, an uploaded PNG and MNIST disagree about colours; the
    classifier only cares where the ink is.

    - If alpha varies, the picture is strokes on a transparent background, so the
      ink is the alpha channel (RGB is ignored: it is the pen colour or junk).
    - A fully transparent image has no ink.
    - Otherwise RGB is converted to grey (BT.601) and the polarity is decided by
      the background (median of the border): a light background is inverted.
    Raises ImageError for wrong shapes, dtypes or empty arrays.
    """
    a = as_image_array(image)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[:, :, 3]
        if alpha.min() != alpha.max():
            return ink_from_grey(to_unit_float(alpha))
        if to_unit_float(alpha[:1, :1])[0, 0] == 0.0:
            return np.zeros(a.shape[:2], np.float32)  # fully transparent: nothing visible
        a = a[:, :, :3]
    if a.ndim == 3:
        rgb = to_unit_float(a)
        if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
            g = rgb[:, :, 0]  # already grey: keep it exact
        else:
            g = (rgb.astype(np.float64) @ _LUMA).astype(np.float32)
    else:
        g = to_unit_float(a)
    return ink_from_grey(g)


# ----------------------------------------------------------------- MNIST normalisation


class Stages(NamedTuple):
    """Each step from picture to MNIST digit, for showing the pipeline.

    ink: float32 (H, W) in [0,1], the whole picture's ink, shrunk to at most MAX_SIDE
        px (and, before thickening, so that the digit's box is at most THICKEN_SIDE);
        after thickening, if asked for, padded by the dilation radius on each side.
    cropped: float32, the ink inside its bounding box.
    boxed: uint8, the crop scaled so its larger side is 20 px (peak 255).
    centred: uint8 (28, 28), boxed placed with its centre of mass at (14, 14).
    bbox: (top, bottom, left, right) of the crop in ``ink`` (bottom/right exclusive).
    offset: (row, col) of ``boxed``'s top-left corner in ``centred``.
    """

    ink: np.ndarray
    cropped: np.ndarray
    boxed: np.ndarray
    centred: np.ndarray
    bbox: tuple
    offset: tuple


def ink_box(ink: np.ndarray, peak: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink above BOX_FRACTION of the peak (bottom/right exclusive)."""
    mask = ink > BOX_FRACTION * peak
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _fit_box(cropped: np.ndarray) -> np.ndarray:
    """Scale so the larger side is 20 px, aspect kept; uint8 with peak 255.

    INTER_AREA when shrinking (it averages, i.e. anti-aliases), INTER_LINEAR
    when enlarging.  Any pixel with some ink keeps at least grey level 1, so the
    ink box of the result is exactly the scaled crop box.
    """
    h, w = cropped.shape
    scale = MNIST_BOX / max(h, w)
    nh = min(MNIST_BOX, max(1, int(round(h * scale))))
    nw = min(MNIST_BOX, max(1, int(round(w * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    f = np.clip(cv2.resize(cropped, (nw, nh), interpolation=interp), 0.0, None)
    f = f.reshape(nh, nw)  # cv2 drops a length-1 axis in some builds
    out = np.rint(f * (255.0 / f.max()))
    out = np.maximum(out, f > 0)
    return out.astype(np.uint8)


def _centre(boxed: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Place into 28x28 with the centre of mass at (14, 14), by a whole-pixel shift.

    A whole-pixel shift is what MNIST did (its centres of mass are spread
    uniformly over +-0.5 px) and it neither blurs the digit nor grows its box;
    the residual error is at most 0.5 px per axis.  A digit so lopsided that the
    shift would push ink off the field is clamped to stay whole (its centre of
    mass is then off by more).
    """
    h, w = boxed.shape
    f = boxed.astype(np.float64)
    m = f.sum()
    cy = float(f.sum(axis=1) @ np.arange(h)) / m
    cx = float(f.sum(axis=0) @ np.arange(w)) / m
    oy = int(np.clip(np.rint(MNIST_CENTRE - cy), 0, MNIST_SIZE - h))
    ox = int(np.clip(np.rint(MNIST_CENTRE - cx), 0, MNIST_SIZE - w))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
    out[oy : oy + h, ox : ox + w] = boxed
    return out, (oy, ox)


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels of an ink map (0 if there is no ink).

    From the distance transform of the ink above half the peak: across a
    stroke of width w the distances run 1..w/2, so their mean is about
    (w/2 + 1)/2, i.e. w = 4 * mean - 2.
    """
    peak = float(ink.max()) if ink.size else 0.0
    if peak <= 0:
        return 0.0
    mask = np.pad((ink > 0.5 * peak).astype(np.uint8), 1)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    return max(1.0, 4.0 * float(dist[mask > 0].mean()) - 2.0)


def _thicken(ink: np.ndarray, box: tuple[int, int, int, int], min_stroke: float) -> np.ndarray:
    """Dilate strokes thinner than ``min_stroke`` x the box's larger side (never thins).

    The caller has shrunk the digit's box to at most THICKEN_SIDE, and the
    radius is capped at THICKEN_MAX_RADIUS: a dilation costs pixels x kernel
    area, which would otherwise grow with the fourth power of the picture's size.
    """
    top, bottom, left, right = box
    crop = ink[top:bottom, left:right]
    target = min_stroke * max(crop.shape)
    radius = min(int(round((target - stroke_width(crop)) / 2)), THICKEN_MAX_RADIUS)
    if radius <= 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(np.pad(ink, radius), kernel)


def stages_from_ink(ink: np.ndarray, what: str = "drawing", min_stroke: float | None = None) -> Stages:
    """The MNIST normalisation proper: crop -> 20 px box -> centre of mass at (14, 14).

    ``ink`` is a float32 ink map (ink high, background 0), as :func:`find_ink`
    gives; it is shrunk to MAX_SIDE first if it is bigger.
    """
    if min_stroke is not None and not 0.0 <= min_stroke <= 1.0:
        raise ValueError(f"min_stroke is a fraction of the digit's size, 0..1; got {min_stroke}")
    ink = shrink_to(ink)
    peak = float(ink.max()) if ink.size else 0.0
    if peak < EMPTY_INK:
        raise EmptyDrawingError(f"the {what} has no ink: nothing to classify")
    box = ink_box(ink, peak)
    if min_stroke:
        side = max(box[1] - box[0], box[3] - box[2])
        if side > THICKEN_SIDE:
            ink = shrink_to(ink, max(1, max(ink.shape) * THICKEN_SIDE // side))
            peak = float(ink.max())
            box = ink_box(ink, peak)
        ink = _thicken(ink, box, min_stroke)
        box = ink_box(ink, peak)
    top, bottom, left, right = box
    cropped = np.ascontiguousarray(ink[top:bottom, left:right], dtype=np.float32)
    boxed = _fit_box(cropped)
    centred, offset = _centre(boxed)
    return Stages(ink, cropped, boxed, centred, box, offset)


def canvas_to_mnist_stages(image, min_stroke: float | None = None) -> Stages:
    """Like :func:`canvas_to_mnist` but returns every intermediate step (see :class:`Stages`)."""
    with image_errors("drawing"):
        return stages_from_ink(find_ink(shrink_to(as_image_array(image))), min_stroke=min_stroke)


def canvas_to_mnist(image, min_stroke: float | None = None) -> np.ndarray:
    """A drawing (grey/RGB/RGBA, any polarity, any size) -> (28, 28) uint8 MNIST-style digit.

    Crop to the ink box (ignoring ink under 10 % of the peak), scale the larger
    side to 20 px keeping the aspect ratio, shift the centre of mass to (14, 14)
    (whole pixels, within 0.5 px), brightest pixel 255.
    ``min_stroke`` (off by default; MNIST_STROKE = 0.125 is MNIST's typical
    stroke, 2.5 px of 20): first dilate strokes thinner than that fraction of
    the digit's larger side, because a thin pen on a big digit gives hairlines
    that MNIST does not have.  Strokes are never thinned.
    A picture bigger than MAX_SIDE (560 px) is first shrunk to it, so the work
    is bounded whatever the size (the canvas is 280 x 280).
    Raises EmptyDrawingError when there is no ink, ImageError for non-images.
    """
    return canvas_to_mnist_stages(image, min_stroke).centred
