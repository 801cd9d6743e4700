"""Images -> the 28x28 digit the classifier sees, the MNIST way; classic feature transforms.

MNIST digits were made like this (LeCun et al.): the writer's digit was
size-normalised to fit a 20x20 box keeping its aspect ratio (with
anti-aliasing, hence the grey levels), then placed in a 28x28 field so that its
centre of mass sits at the centre.  The bundled data confirm the details we
copy: the ink bounding box has 20 px on its larger side, the intensity-weighted
centre of mass is at array index (14, 14) with a spread of +-0.5 px (std 0.29 =
a uniform rounding error, i.e. the shift was a whole number of pixels), and the
brightest pixel is 255.  A kNN compares pixels one by one, so a query digit that
is normalised differently (off-centre, other size, other polarity) is far from
every training digit; everything here exists to make a drawing or a photo look
like MNIST before it is compared.

Everything is numpy in, numpy out, and imports neither streamlit nor anything
slow at import time.

Image encodings accepted by :func:`find_ink` (and produced by
:func:`simulate_canvas` for robustness tests):

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

import struct
from typing import NamedTuple

import cv2
import numpy as np

from .errors import EmptyDrawingError

__all__ = [
    "ImageError",
    "Stages",
    "find_ink",
    "canvas_to_mnist",
    "canvas_to_mnist_stages",
    "photo_to_mnist",
    "photo_to_mnist_stages",
    "deskew",
    "blur",
    "downsample",
    "simulate_canvas",
    "ENCODINGS",
    "PEN_RADII",
    "MNIST_SIZE",
    "MNIST_BOX",
    "MNIST_CENTRE",
    "MNIST_STROKE",
    "stroke_width",
]


class ImageError(ValueError):
    """The input is not an image we can read: not PNG/JPEG, wrong shape, or too many pixels."""


MNIST_SIZE = 28  # side of the field
MNIST_BOX = 20  # the larger side of the digit's ink box
MNIST_CENTRE = 14.0  # where MNIST's centres of mass sit (array index, rows and columns)
MNIST_STROKE = 0.125  # MNIST's median stroke width (2.5 px) over the box's larger side (20 px)

EMPTY_INK = 0.05  # a drawing whose strongest ink is below this (0..1) has no digit
BOX_FRACTION = 0.1  # ink below this fraction of the peak is ignored when finding the box

PHOTO_SIDE = 560  # photos are shrunk to this longest side before anything else
PHOTO_MIN_CONTRAST = 0.15  # photo ink must darken the paper by at least 15 %
DEFAULT_MAX_PIXELS = 25_000_000

ENCODINGS = ("white_on_black", "black_on_white", "alpha")
PEN_RADII = {"thin": -3, "normal": 0, "thick": 3}  # erode (<0) / dilate (>0), canvas px

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, what cv2's RGB2GRAY uses


# --------------------------------------------------------------------------- ink


def _as_image_array(image) -> np.ndarray:
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


def _to_unit_float(a: np.ndarray) -> np.ndarray:
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


def _border(g: np.ndarray) -> np.ndarray:
    if g.shape[0] < 3 or g.shape[1] < 3:
        return g.ravel()
    return np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])


def _ink_from_grey(g: np.ndarray) -> np.ndarray:
    """Grey in [0,1], either polarity -> ink in [0,1] with the background at exactly 0.

    The background is the median of the outer ring of pixels (a digit touches
    the border, if at all, in a few places); a light background means dark ink,
    so the image is inverted.  The background level is then subtracted and the
    remaining range stretched to [0, 1].
    """
    bg = float(np.median(_border(g)))
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
    a = _as_image_array(image)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[:, :, 3]
        if alpha.min() != alpha.max():
            return _ink_from_grey(_to_unit_float(alpha))
        if _to_unit_float(alpha[:1, :1])[0, 0] == 0.0:
            return np.zeros(a.shape[:2], np.float32)  # fully transparent: nothing visible
        a = a[:, :, :3]
    if a.ndim == 3:
        rgb = _to_unit_float(a)
        if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
            g = rgb[:, :, 0]  # already grey: keep it exact
        else:
            g = (rgb.astype(np.float64) @ _LUMA).astype(np.float32)
    else:
        g = _to_unit_float(a)
    return _ink_from_grey(g)


# ----------------------------------------------------------------- MNIST normalisation


class Stages(NamedTuple):
    """Each step from picture to MNIST digit, for showing the pipeline.

    ink: float32 (H, W) in [0,1], the whole picture's ink (after thickening, if asked for;
        then padded by the dilation radius on each side).
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


def _ink_box(ink: np.ndarray, peak: float) -> tuple[int, int, int, int]:
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
    """Dilate strokes thinner than ``min_stroke`` x the box's larger side (never thins)."""
    top, bottom, left, right = box
    crop = ink[top:bottom, left:right]
    target = min_stroke * max(crop.shape)
    radius = int(round((target - stroke_width(crop)) / 2))
    if radius <= 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(np.pad(ink, radius), kernel)


def _stages_from_ink(ink: np.ndarray, what: str = "drawing", min_stroke: float | None = None) -> Stages:
    """The MNIST normalisation proper: crop -> 20 px box -> centre of mass at (14, 14)."""
    peak = float(ink.max()) if ink.size else 0.0
    if peak < EMPTY_INK:
        raise EmptyDrawingError(f"the {what} has no ink: nothing to classify")
    box = _ink_box(ink, peak)
    if min_stroke:
        ink = _thicken(ink, box, min_stroke)
        box = _ink_box(ink, peak)
    top, bottom, left, right = box
    cropped = np.ascontiguousarray(ink[top:bottom, left:right], dtype=np.float32)
    boxed = _fit_box(cropped)
    centred, offset = _centre(boxed)
    return Stages(ink, cropped, boxed, centred, box, offset)


def canvas_to_mnist_stages(image, min_stroke: float | None = None) -> Stages:
    """Like :func:`canvas_to_mnist` but returns every intermediate step (see :class:`Stages`)."""
    return _stages_from_ink(find_ink(image), min_stroke=min_stroke)


def canvas_to_mnist(image, min_stroke: float | None = None) -> np.ndarray:
    """A drawing (grey/RGB/RGBA, any polarity, any size) -> (28, 28) uint8 MNIST-style digit.

    Crop to the ink box (ignoring ink under 10 % of the peak), scale the larger
    side to 20 px keeping the aspect ratio, shift the centre of mass to (14, 14)
    (whole pixels, within 0.5 px), brightest pixel 255.
    ``min_stroke`` (off by default; MNIST_STROKE = 0.125 is MNIST's typical
    stroke, 2.5 px of 20): first dilate strokes thinner than that fraction of
    the digit's larger side, because a thin pen on a big digit gives hairlines
    that MNIST does not have.  Strokes are never thinned.
    Raises EmptyDrawingError when there is no ink, ImageError for non-images.
    """
    return canvas_to_mnist_stages(image, min_stroke).centred


# ------------------------------------------------------------------------- photos


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _image_kind(data: bytes) -> str | None:
    if data[:8] == _PNG_SIG:
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return None


def _header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) read from the PNG IHDR or the JPEG SOF marker, without decoding."""
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return struct.unpack(">II", data[16:24])
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _decode(data, max_pixels: int) -> np.ndarray:
    """PNG/JPEG bytes -> image array (grey, or BGR/BGRA as OpenCV decodes), size-checked first."""
    if isinstance(data, np.ndarray) and data.ndim == 1 and data.dtype == np.uint8:
        data = data.tobytes()
    try:
        data = bytes(data)
    except Exception as exc:
        raise ImageError(f"not a PNG or JPEG image ({type(data).__name__})") from exc
    kind = _image_kind(data)
    if kind is None:
        raise ImageError("the upload is not a PNG or JPEG image")
    size = _header_size(data, kind)
    if size is not None:
        w, h = size
        if w == 0 or h == 0:
            raise ImageError(f"the {kind.upper()} header says {w}x{h}: not a usable image")
        if w * h > max_pixels:
            raise ImageError(
                f"the image is {w}x{h} = {w * h:,} pixels, more than the limit of {max_pixels:,}"
            )
    buf = np.frombuffer(data, np.uint8)
    if kind == "jpeg":
        # IMREAD_COLOR applies the EXIF orientation (IMREAD_UNCHANGED does not),
        # and the reduced modes let libjpeg decode a big photo at 1/2..1/8 size.
        flag = cv2.IMREAD_COLOR
        if size is not None:
            for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                    (2, cv2.IMREAD_REDUCED_COLOR_2)):
                if max(size) // factor >= PHOTO_SIDE:
                    flag = reduced
                    break
    else:
        flag = cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(buf, flag)
    except cv2.error as exc:
        raise ImageError(f"the upload is not a readable PNG or JPEG image ({exc})") from exc
    if img is None or img.size == 0:
        raise ImageError("the upload is not a readable PNG or JPEG image (decoding failed)")
    if size is None and img.shape[0] * img.shape[1] > max_pixels:
        raise ImageError(
            f"the image is {img.shape[1]}x{img.shape[0]} = {img.shape[0] * img.shape[1]:,} pixels,"
            f" more than the limit of {max_pixels:,}"
        )
    return img


def _photo_grey(img: np.ndarray) -> np.ndarray:
    """Decoded photo (grey/BGR, any depth) -> float32 grey in [0,1], longest side <= PHOTO_SIDE."""
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = (_to_unit_float(img) * 255).round().astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)
    h, w = img.shape
    if max(h, w) > PHOTO_SIDE:
        s = PHOTO_SIDE / max(h, w)
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32) / 255.0


def _photo_ink(g: np.ndarray) -> np.ndarray:
    """Grey photo of a digit on paper -> clean ink map (float32, ink high, background 0).

    1. Polarity from the border: dark paper (a blackboard, a negative) is inverted,
       so from here on the ink is darker than the paper.
    2. The paper's uneven lighting is estimated by a morphological closing with a
       kernel of 1/8 of the image (it erases every dark stroke narrower than that),
       smoothed, and divided out: ink = 1 - grey / paper.
    3. Otsu's threshold on that (at least PHOTO_MIN_CONTRAST) says which pixels
       are ink; connected components under 0.05 % of the image (specks) are
       dropped, as are components touching the border (shadows, the table, the
       paper's edge) unless nothing else is left, and components under 10 % of
       the largest one.
    4. The kept ink keeps its soft edges (a 1-px ring around the mask) and is
       stretched so that solid strokes reach 1, like MNIST's.
    """
    if float(np.median(_border(g))) < 0.5:
        g = 1.0 - g
    h, w = g.shape
    k = max(15, (max(h, w) // 8) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    paper = cv2.morphologyEx(g, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.GaussianBlur(paper, (0, 0), k / 6.0, borderType=cv2.BORDER_REPLICATE)
    paper = np.maximum(paper, g)
    ink = np.clip(1.0 - g / np.maximum(paper, 1e-3), 0.0, 1.0).astype(np.float32)

    ink8 = np.round(ink * 255).astype(np.uint8)
    otsu, _ = cv2.threshold(ink8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    t = max(otsu / 255.0, PHOTO_MIN_CONTRAST)
    mask = (ink > t).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        raise EmptyDrawingError("no ink found in the photo: nothing to classify")
    areas = stats[1:, cv2.CC_STAT_AREA]
    x0, y0 = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[1:, cv2.CC_STAT_WIDTH], y0 + stats[1:, cv2.CC_STAT_HEIGHT]
    big = areas >= max(6, 0.0005 * h * w)
    inside = (x0 > 0) & (y0 > 0) & (x1 < w) & (y1 < h)
    keep = big & inside
    if not keep.any():
        keep = big
    if not keep.any():
        raise EmptyDrawingError("no ink found in the photo: nothing to classify")
    keep &= areas >= 0.1 * areas[keep].max()
    kept = np.zeros(n, bool)
    kept[1:] = keep
    mask = kept[labels].astype(np.uint8)
    solid = float(np.percentile(ink[mask > 0], 90))
    ring = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
    return np.where(ring, np.clip(ink / max(solid, 1e-3), 0.0, 1.0), 0.0).astype(np.float32)


def photo_to_mnist_stages(data, max_pixels: int = DEFAULT_MAX_PIXELS,
                          min_stroke: float | None = MNIST_STROKE) -> Stages:
    """Like :func:`photo_to_mnist` but returns every step; ``ink`` is the cleaned photo ink."""
    if isinstance(data, np.ndarray) and data.ndim >= 2:
        img = _as_image_array(data)
        if img.shape[0] * img.shape[1] > max_pixels:
            raise ImageError(
                f"the image is {img.shape[1]}x{img.shape[0]} = {img.shape[0] * img.shape[1]:,}"
                f" pixels, more than the limit of {max_pixels:,}"
            )
        if img.ndim == 3:  # arrays are given as RGB(A); OpenCV decodes to BGR(A)
            img = np.concatenate([img[:, :, 2::-1], img[:, :, 3:]], axis=2)
    else:
        img = _decode(data, max_pixels)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3]
        if alpha.min() != alpha.max():
            # Strokes on a transparent background are a drawing, not a photo of paper.
            return _stages_from_ink(_ink_from_grey(_to_unit_float(alpha)), "image", min_stroke)
        if alpha.max() == 0:
            raise EmptyDrawingError("the image is fully transparent: nothing to classify")
        img = img[:, :, :3]
    return _stages_from_ink(_photo_ink(_photo_grey(img)), "photo", min_stroke)


def photo_to_mnist(data, max_pixels: int = DEFAULT_MAX_PIXELS,
                   min_stroke: float | None = MNIST_STROKE) -> np.ndarray:
    """A photo or scan of a digit on paper (PNG/JPEG bytes, or an RGB/grey array) -> (28, 28) uint8.

    Why a separate path: photos have uneven light, grey paper, noise and
    specks that the canvas never has.  The pixel count is checked from the
    file header before decoding (ImageError naming the size and the limit),
    big photos are decoded/shrunk to a longest side of 560 px, the paper's
    lighting is divided out, ink is thresholded (Otsu) and cleaned of specks,
    then the canvas' MNIST normalisation is applied, by default with
    ``min_stroke=MNIST_STROKE`` (pen and pencil lines are hairlines next to
    MNIST's strokes; on simulated thin-pen photos this took kNN from 64 % to
    90 %; pass None for the plain MNIST normalisation).  A PNG whose alpha varies
    is treated as a drawing (ink = alpha).  Raises ImageError for non-images,
    EmptyDrawingError for blank paper.
    """
    return photo_to_mnist_stages(data, max_pixels, min_stroke).centred


# ---------------------------------------------------------------- feature transforms


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
    for s in range(0, len(a), 8192):
        f = a[s : s + 8192].astype(np.float32)
        if sigma > 0:
            f = gaussian_filter(f, sigma=(0, sigma, sigma), mode="constant", cval=0.0, truncate=4.0)
        out[s : s + 8192] = np.clip(np.rint(f), 0, 255) if out_dtype == np.uint8 else f
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


# ------------------------------------------------------------- canvas simulation


def simulate_canvas(
    digit28,
    rng: np.random.Generator | int | None = None,
    canvas: int = 280,
    encoding: str = "white_on_black",
    pen: str | int | None = None,
    size: float | None = None,
) -> np.ndarray:
    """Redraw an MNIST digit as if drawn on a ``canvas`` x ``canvas`` RGBA drawing canvas.

    Why: to measure (and test) how the canvas pipeline copes with what users do:
    draw big or small, anywhere, with a thin or thick pen, and with the three
    encodings a browser canvas can hand back (see the module docstring).

    The digit's ink box is scaled so its larger side is ``size`` x ``canvas``
    (random in [0.35, 0.9] if None) and placed at a random position fully
    inside; the strokes are binarised (threshold at half ink, like a pen),
    eroded/dilated by ``pen`` px at canvas scale ("thin" = -3, "normal" = 0,
    "thick" = +3, an int, or random in [-3, 3] if None; erosion backs off if it
    would wipe out most of the digit), then lightly blurred (sigma 1 px) as a
    browser's anti-aliasing does.  For ``"alpha"`` the RGB is a random pen
    colour under the ink and 0 elsewhere.  Returns uint8 (canvas, canvas, 4).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    # Drawn for every encoding so that one seed gives the same drawing in all three.
    colour = rng.integers(0, 256, size=3).astype(np.uint8)
    d = np.asarray(digit28)
    if d.ndim != 2:
        raise ImageError(f"expected one (H, W) digit, got shape {d.shape}")
    d = _to_unit_float(d) if d.dtype != np.uint8 else d.astype(np.float32) / 255.0
    if d.max() < EMPTY_INK:
        raise EmptyDrawingError("the digit has no ink")
    top, bottom, left, right = _ink_box(d, float(d.max()))
    crop = d[top:bottom, left:right]
    if pen is None:
        radius = int(rng.integers(-3, 4))
    elif isinstance(pen, str):
        radius = PEN_RADII[pen]
    else:
        radius = int(pen)
    frac = float(rng.uniform(0.35, 0.9)) if size is None else float(size)
    margin = max(radius, 0) + 4  # dilation + blur tail stay on the canvas
    target = min(frac * canvas, canvas - 2 * margin)
    s = target / max(crop.shape)
    nh = max(1, int(round(crop.shape[0] * s)))
    nw = max(1, int(round(crop.shape[1] * s)))
    up = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR).reshape(nh, nw)
    stroke = (up >= 0.5 * d.max()).astype(np.uint8) * 255
    y0 = int(rng.integers(margin, canvas - nh - margin + 1))
    x0 = int(rng.integers(margin, canvas - nw - margin + 1))
    ink = np.zeros((canvas, canvas), np.uint8)
    ink[y0 : y0 + nh, x0 : x0 + nw] = stroke
    if radius != 0:
        r = abs(radius)
        op = cv2.dilate if radius > 0 else cv2.erode
        base = int(np.count_nonzero(ink))
        while r > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            changed = op(ink, kernel)
            if radius > 0 or np.count_nonzero(changed) >= 0.3 * base:
                ink = changed
                break
            r -= 1
    ink = cv2.GaussianBlur(ink, (0, 0), 1.0)
    out = np.zeros((canvas, canvas, 4), np.uint8)
    if encoding == "white_on_black":
        out[:, :, :3] = ink[:, :, None]
        out[:, :, 3] = 255
    elif encoding == "black_on_white":
        out[:, :, :3] = 255 - ink[:, :, None]
        out[:, :, 3] = 255
    else:
        out[:, :, :3] = np.where(ink[:, :, None] > 0, colour, 0)
        out[:, :, 3] = ink
    return out
