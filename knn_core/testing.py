"""Inputs for testing code that uses knn_core: simulated canvas drawings and hostile image files.

:func:`simulate_canvas` redraws an MNIST digit the way people draw on the
canvas (any size, any place, thin or thick pen, three encodings), for
robustness tests and ``benchmarks/canvas_robustness.py``.  The file builders
make the inputs a curious student could send (decompression bombs, a stray
byte before a JPEG's frame header, progressive JPEGs with thousands of scans,
alpha tricks, 16-bit PNGs), for ``tests/test_hostile_inputs.py`` and
``benchmarks/hostile_inputs.py``.
"""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np

from .errors import EmptyDrawingError, ImageError
from .normalize import EMPTY_INK, ink_box, to_unit_float

__all__ = [
    "simulate_canvas",
    "ENCODINGS",
    "PEN_RADII",
    "encode_png",
    "encode_jpeg",
    "frame_picture",
    "huge_png",
    "png_header_only",
    "with_stray_byte_before_frame",
    "with_repeated_last_scan",
]

ENCODINGS = ("white_on_black", "black_on_white", "alpha")
PEN_RADII = {"thin": -3, "normal": 0, "thick": 3}  # erode (<0) / dilate (>0), canvas px


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
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    # Drawn for every encoding so that one seed gives the same drawing in all three.
    colour = gen.integers(0, 256, size=3).astype(np.uint8)
    d = np.asarray(digit28)
    if d.ndim != 2:
        raise ImageError(f"expected one (H, W) digit, got shape {d.shape}")
    d = to_unit_float(d) if d.dtype != np.uint8 else d.astype(np.float32) / 255.0
    if d.max() < EMPTY_INK:
        raise EmptyDrawingError("the digit has no ink")
    top, bottom, left, right = ink_box(d, float(d.max()))
    crop = d[top:bottom, left:right]
    if pen is None:
        radius = int(gen.integers(-3, 4))
    elif isinstance(pen, str):
        radius = PEN_RADII[pen]
    else:
        radius = int(pen)
    frac = float(gen.uniform(0.35, 0.9)) if size is None else float(size)
    margin = max(radius, 0) + 4  # dilation + blur tail stay on the canvas
    target = min(frac * canvas, canvas - 2 * margin)
    s = target / max(crop.shape)
    nh = max(1, int(round(crop.shape[0] * s)))
    nw = max(1, int(round(crop.shape[1] * s)))
    up = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR).reshape(nh, nw)
    stroke = (up >= 0.5 * d.max()).astype(np.uint8) * 255
    y0 = int(gen.integers(margin, canvas - nh - margin + 1))
    x0 = int(gen.integers(margin, canvas - nw - margin + 1))
    ink: np.ndarray = np.zeros((canvas, canvas), np.uint8)  # later OpenCV's results (any ndarray)
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


# ------------------------------------------------------------------- image files


def encode_png(pixels: np.ndarray) -> bytes:
    """Grey, RGB or RGBA pixels (uint8 or uint16; RGB order) -> PNG bytes."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[:, :, [2, 1, 0, 3][: a.shape[2]]]  # OpenCV writes BGR(A)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    if not ok:
        raise ValueError("OpenCV could not encode this PNG")
    return buf.tobytes()


def encode_jpeg(pixels: np.ndarray, quality: int = 90, progressive: bool = False) -> bytes:
    """Grey or RGB uint8 pixels -> JPEG bytes (Pillow, libjpeg's default scans when progressive)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, "JPEG", quality=quality, progressive=progressive)
    return buf.getvalue()


def frame_picture(height: int, width: int, inset: int = 1, in_alpha: bool = True, thickness: int = 1) -> np.ndarray:
    """A rectangle of ``thickness`` px, ``inset`` px inside the border: the widest, thinnest "digit" there is.

    With ``in_alpha`` it is an RGBA picture whose alpha channel holds the frame
    (transparent elsewhere, so alpha varies and the picture reads as strokes);
    otherwise white on black, grey.  Its ink box is the whole picture and its
    stroke thin, so stroke thickening wants its largest radius on it.
    """
    g = np.zeros((height, width), np.uint8)
    t = max(1, thickness)
    b, r = height - inset, width - inset  # exclusive
    g[inset:inset + t, inset:r] = g[max(inset, b - t):b, inset:r] = 255
    g[inset:b, inset:inset + t] = g[inset:b, max(inset, r - t):r] = 255
    if not in_alpha:
        return g
    out = np.zeros((height, width, 4), np.uint8)
    out[:, :, 3] = g
    return out


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(side: int = 12_000) -> bytes:
    """A valid, all-black grey PNG of side x side pixels (144 Mpx by default) that compresses to ~150 kB."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds no pixel data (an empty IDAT): a header to size-check."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"")
            + _png_chunk(b"IEND", b""))


def _jpeg_segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each marker segment from SOI up to the first scan (SOS) included."""
    out, i = [(0, 0xD8)], 2
    while i + 4 <= len(jpeg):
        marker = jpeg[i + 1]
        out.append((i, marker))
        if marker == 0xDA:
            break
        i += 2 + struct.unpack(">H", jpeg[i + 2:i + 4])[0]
    return out


def with_stray_byte_before_frame(jpeg: bytes, width: int | None = None, height: int | None = None) -> bytes:
    """The JPEG with a stray byte before its frame header (SOF), optionally claiming another size.

    Decoders skip the stray byte (with a warning); a hand-written header
    parser that stops at it never sees the size.  With ``width``/``height``
    the frame header claims that size (the pixel data stay as they were).
    """
    sof = next(i for i, m in _jpeg_segments(jpeg) if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC))
    if width is not None or height is not None:
        h, w = struct.unpack(">HH", jpeg[sof + 5:sof + 9])
        dims = struct.pack(">HH", height or h, width or w)
        jpeg = jpeg[:sof + 5] + dims + jpeg[sof + 9:]
    return jpeg[:sof] + b"\x00" + jpeg[sof:]


def with_repeated_last_scan(jpeg: bytes, times: int) -> bytes:
    """A progressive JPEG with its last scan repeated ``times`` more times (each a pass over every block).

    libjpeg warns about the bogus progression and decodes on, so a few bytes
    per scan buy a full pass over the image: the cheapest decoding-time attack.
    """
    first_scan = _jpeg_segments(jpeg)[-1][0]
    end = jpeg.rindex(b"\xff\xd9")
    last = jpeg.rindex(b"\xff\xda", first_scan, end)  # 0xFFDA only starts scans: entropy data escape 0xFF
    return jpeg[:end] + jpeg[last:end] * times + jpeg[end:]
