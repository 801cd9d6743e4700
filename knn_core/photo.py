"""Image files -> pixels, bounded whatever they hold; a photo of a digit on paper -> the 28x28 digit.

Decoding is where a hostile file could cost the most, so it goes in this order:
Pillow opens the bytes lazily (only the formats expected), the size is read
from the header and checked before a single pixel is decoded, and only then
are the pixels decoded: JPEGs at 1/2..1/8 of their size when that still leaves
``MAX_SIDE`` px, PNGs (which can't be decoded smaller) only up to
``PNG_MAX_PIXELS``, progressive JPEGs (decoded once per scan) only up to a
budget of pixels x scans.  Everything after decoding works on at most
``MAX_SIDE`` px (:mod:`knn_core.normalize`).  A failure is an ``ImageError``
or ``EmptyDrawingError`` whose message names the problem, never another
exception.
"""
from __future__ import annotations

import io
import warnings

import cv2
import numpy as np

from .errors import EmptyDrawingError, ImageError
from .normalize import (
    CANVAS_SIDE,
    MAX_SIDE,
    MNIST_STROKE,
    Stages,
    as_image_array,
    border,
    find_ink,
    image_errors,
    shrink_to,
    stages_from_ink,
    to_unit_float,
)

__all__ = [
    "canvas_from_png",
    "photo_to_mnist",
    "photo_to_mnist_stages",
    "photo_preview",
    "photo_with_preview",
    "DEFAULT_MAX_PIXELS",
    "PNG_MAX_PIXELS",
    "MAX_CANVAS_SIDE",
]

PHOTO_MIN_CONTRAST = 0.15  # photo ink must darken the paper by at least 15 %
DEFAULT_MAX_PIXELS = 25_000_000  # a JPEG is decoded at 1/8 of this (a 5000 x 5000 photo at 625 x 625)
PNG_MAX_PIXELS = 4_000_000  # a PNG is decoded in full: about 0.1 s at this size
PROGRESSIVE_MAX_WORK = 60_000_000  # pixels x scans of a progressive JPEG (one full pass per scan)
MAX_CANVAS_SIDE = 1000  # the canvas sends 280 x 280; a value far bigger is not a drawing
MAX_CANVAS_ASPECT = 4  # nor is a strip


# ------------------------------------------------------------------------- decoding


def _as_bytes(data) -> bytes:
    if isinstance(data, np.ndarray) and data.ndim == 1 and data.dtype == np.uint8:
        return data.tobytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ImageError(f"expected the bytes of a PNG or JPEG file, got {type(data).__name__}")


def _open(data: bytes, formats: tuple[str, ...], what: str, limit: int):
    """Pillow's lazy open: the format and size are known, no pixel is decoded yet."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the caller checks the size against its own, lower limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as exc:
        pillow_max = Image.MAX_IMAGE_PIXELS  # an int whenever Pillow raises this (None turns the check off)
        claimed = f"more than {2 * pillow_max:,} pixels" if pillow_max is not None else "too many pixels"
        raise ImageError(f"the {what} claims {claimed}, more than the limit of {limit:,}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"the {what} is not a {' or '.join(formats)} image") from exc
    except Exception as exc:  # Pillow's parsers raise many kinds on a damaged header
        raise ImageError(f"the {what} is a damaged {' or '.join(formats)} image ({type(exc).__name__})") from exc


def _check_pixels(size: tuple[int, int], limit: int, what: str, note: str = "") -> None:
    w, h = size
    if w == 0 or h == 0:
        raise ImageError(f"the {what} is {w}x{h} pixels: not a usable image")
    if w * h > limit:
        raise ImageError(f"the {what} is {w:,}x{h:,} = {w * h:,} pixels, more than the limit of {limit:,}{note}")


def _load(img, what: str) -> None:
    """Decode the pixels; a truncated or corrupt file becomes an ImageError."""
    try:
        img.load()
    except MemoryError as exc:
        raise ImageError(f"the {what} is too big to decode (out of memory)") from exc
    except Exception as exc:  # truncated data, bad checksums, broken streams: many exception types
        raise ImageError(f"the {what} is damaged: its pixels can't be decoded ({type(exc).__name__})") from exc


_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L")  # how Pillow reads a 16-bit grey PNG


def _convert(img, mode: str):
    try:
        return img.convert(mode)
    except Exception as exc:  # a mode Pillow can't convert (rare PNG variants)
        raise ImageError(f"the image's colour type ({img.mode}) is not supported ({type(exc).__name__})") from exc


def _grey16(img) -> np.ndarray:
    """A 16-bit grey Pillow image -> native uint16 (no float copies; 'I' is int32, 'I;16B' big-endian)."""
    a = np.asarray(img)
    return a.astype(np.uint16) if a.dtype.kind == "u" else np.clip(a, 0, 65535).astype(np.uint16)


def _pixels(img) -> np.ndarray:
    """A decoded Pillow image -> uint8 or uint16 grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4).

    16-bit grey stays 16-bit (Pillow already reads 16-bit colour as 8-bit);
    transparency of any kind becomes RGBA.
    """
    if img.mode in _SIXTEEN_BIT:
        return _grey16(img)
    if img.mode in ("LA", "PA", "La", "RGBa") or ("transparency" in img.info and img.mode != "RGBA"):
        img = _convert(img, "RGBA")
    elif img.mode not in ("L", "RGB", "RGBA"):
        img = _convert(img, "RGB")  # palettes, 1-bit, CMYK, YCbCr
    return np.asarray(img)


def _plane_of_png(img) -> tuple[np.ndarray, str]:
    """A decoded PNG -> (alpha, "alpha") if its alpha varies (strokes on a transparent background), else
    (grey, "grey"): one 8- or 16-bit plane, so a big colour PNG is never copied out in full."""
    if img.mode not in _SIXTEEN_BIT and ("A" in img.getbands() or "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else _convert(img, "RGBA")
        alpha = rgba.getchannel("A")
        lo, hi = alpha.getextrema()
        if lo != hi:
            return np.asarray(alpha), "alpha"
        if hi == 0:
            raise EmptyDrawingError("the image is fully transparent: nothing to classify")
    if img.mode in _SIXTEEN_BIT:
        return _grey16(img), "grey"
    return np.asarray(img if img.mode == "L" else _convert(img, "L")), "grey"  # BT.601, as OpenCV


def _decode_photo(data, max_pixels: int) -> tuple[np.ndarray, str]:
    """PNG/JPEG bytes -> one plane (see _plane_of_png; a JPEG's grey at reduced size), size-checked first."""
    data = _as_bytes(data)
    img = _open(data, ("PNG", "JPEG"), "upload", max_pixels)
    with img:
        _check_pixels(img.size, max_pixels, "image")
        w, h = img.size
        if img.format == "PNG":
            _check_pixels(img.size, min(max_pixels, PNG_MAX_PIXELS), "PNG",
                          " for a PNG (decoded in full; a JPEG may be bigger)")
            _load(img, "PNG")
            return _plane_of_png(img)
        if img.info.get("progressive"):
            # Every scan of a progressive JPEG is a pass over all of its pixels, at any
            # decoding scale: 1,000 scans fit in 200 kB and take minutes. A marker count
            # is enough: 0xFFDA occurs nowhere else (the entropy-coded data escapes 0xFF).
            scans = data.count(b"\xff\xda")
            if w * h * scans > PROGRESSIVE_MAX_WORK:
                raise ImageError(
                    f"the image is a progressive JPEG of {w:,}x{h:,} pixels in {scans} scans, more decoding"
                    f" work than the limit (pixels x scans <= {PROGRESSIVE_MAX_WORK:,}); a smaller or"
                    " baseline JPEG works"
                )
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale: the smallest that keeps MAX_SIDE px on the long side.
        s = MAX_SIDE / max(w, h)
        img.draft("L", (max(1, int(w * s)), max(1, int(h * s))))
        _load(img, "JPEG")
        try:
            from PIL import ImageOps

            ImageOps.exif_transpose(img, in_place=True)  # phones store photos sideways + an EXIF turn
        except Exception:  # a damaged EXIF block: the photo may just stay turned
            pass
        return np.asarray(img if img.mode == "L" else _convert(img, "L")), "grey"  # CMYK and the like


def canvas_from_png(data, max_side: int = MAX_CANVAS_SIDE) -> np.ndarray:
    """The drawing canvas' value (PNG bytes) -> its pixels, e.g. (280, 280, 4) uint8 RGBA.

    Why: the browser sends the canvas as a PNG, and anyone can send anything
    instead.  Only PNG is opened, and only a canvas-sized picture is decoded
    (the canvas sends 280 x 280; at most ``max_side`` a side and an aspect
    ratio of MAX_CANVAS_ASPECT), so a forged value costs no more than a
    drawing.  Returns uint8 (or uint16 for a 16-bit grey PNG) grey, RGB or
    RGBA, ready for :func:`knn_core.canvas_to_mnist`.  Raises ImageError, with
    a message that completes "Can't read this drawing: ...".
    """
    img = _open(_as_bytes(data), ("PNG",), "drawing", max_side * max_side)
    with img:
        w, h = img.size
        if max(w, h) > max_side or max(w, h) > MAX_CANVAS_ASPECT * max(1, min(w, h)):
            raise ImageError(f"it is {w:,}x{h:,} pixels, the canvas sends {CANVAS_SIDE}x{CANVAS_SIDE}")
        _check_pixels(img.size, max_side * max_side, "drawing")
        _load(img, "drawing")
        return _pixels(img)


# --------------------------------------------------------------------------- photos


def _photo_plane(data, max_pixels: int) -> tuple[np.ndarray, str]:
    """Bytes or an RGB(A)/grey array -> (alpha, "alpha") or (grey, "grey"), pixel count checked first."""
    if not (isinstance(data, np.ndarray) and data.ndim >= 2):
        return _decode_photo(data, max_pixels)
    img = as_image_array(data)
    _check_pixels((img.shape[1], img.shape[0]), max_pixels, "image")
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3]
        if alpha.min() != alpha.max():
            return alpha, "alpha"
        if alpha.max() == 0:
            raise EmptyDrawingError("the image is fully transparent: nothing to classify")
        img = img[:, :, :3]
    if img.dtype not in (np.uint8, np.uint16):
        img = to_unit_float(img)
    if img.ndim == 3:  # grey first, at the input's own depth: no full-size float copy of a big picture
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return img, "grey"


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
    if float(np.median(border(g))) < 0.5:
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
    with image_errors("image"):
        return _stages_of_plane(*_photo_plane(data, max_pixels), min_stroke)


def _stages_of_plane(plane: np.ndarray, kind: str, min_stroke: float | None) -> Stages:
    if kind == "alpha":
        # Strokes on a transparent background are a drawing, not a photo of paper:
        # the ink is the alpha channel (find_ink's rule), shrunk like everything else.
        return stages_from_ink(find_ink(shrink_to(plane)), "image", min_stroke)
    return stages_from_ink(_photo_ink(to_unit_float(shrink_to(plane))), "photo", min_stroke)


def photo_with_preview(data, side: int = 96, max_pixels: int = DEFAULT_MAX_PIXELS,
                       min_stroke: float | None = MNIST_STROKE) -> tuple[Stages | Exception, np.ndarray]:
    """(stages, preview) from ONE decode: the Draw page shows the photo small beside its prediction, and
    decoding is most of what an upload costs (a 2000 x 2000 PNG: ~0.1 s, every time).  The stages are
    the ImageError/EmptyDrawingError instead when the picture decodes but holds no usable digit (the
    preview is still worth showing); a file that can't be decoded raises ImageError."""
    with image_errors("image"):
        plane, kind = _photo_plane(data, max_pixels)
        preview = _shrunk_uint8(plane, side)
        stages: Stages | Exception
        try:
            stages = _stages_of_plane(plane, kind, min_stroke)
        except (ImageError, EmptyDrawingError) as exc:
            stages = exc
    return stages, preview


def photo_to_mnist(data, max_pixels: int = DEFAULT_MAX_PIXELS,
                   min_stroke: float | None = MNIST_STROKE) -> np.ndarray:
    """A photo or scan of a digit on paper (PNG/JPEG bytes, or an RGB/grey array) -> (28, 28) uint8.

    Why a separate path: photos have uneven light, grey paper, noise and
    specks that the canvas never has.  The pixel count is checked from the
    file header before decoding (ImageError naming the size and the limit;
    PNGs, decoded in full, have a lower limit, PNG_MAX_PIXELS), big photos are
    decoded/shrunk to a longest side of 560 px, the paper's lighting is
    divided out, ink is thresholded (Otsu) and cleaned of specks, then the
    canvas' MNIST normalisation is applied, by default with
    ``min_stroke=MNIST_STROKE`` (pen and pencil lines are hairlines next to
    MNIST's strokes; on simulated thin-pen photos this took kNN from 64 % to
    90 %; pass None for the plain MNIST normalisation).  A PNG whose alpha varies
    is treated as a drawing (ink = alpha).  Raises ImageError for non-images
    and anything too big, EmptyDrawingError for blank paper.
    """
    return photo_to_mnist_stages(data, max_pixels, min_stroke).centred


def photo_preview(data, side: int = 96, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A photo's grey plane (as decoded for classifying, same checks), shrunk so its longer side is
    at most `side` px: for showing which picture is being classified.  ImageError like the rest."""
    plane, _ = _decode_photo(data, max_pixels)
    return _shrunk_uint8(plane, side)


def _shrunk_uint8(plane: np.ndarray, side: int) -> np.ndarray:
    plane = np.asarray(plane)
    if plane.dtype.kind == "f":  # an array handed in as floats in [0, 1]
        plane = np.round(np.clip(plane, 0.0, 1.0) * 255).astype(np.uint8)
    elif plane.dtype != np.uint8:
        plane = (plane >> 8).astype(np.uint8) if plane.dtype == np.uint16 else np.clip(plane, 0, 255).astype(np.uint8)
    h, w = plane.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return plane
    return cv2.resize(plane, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
