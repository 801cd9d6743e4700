"""Whatever comes in, the image paths give a digit or a clear ImageError / EmptyDrawingError, at bounded cost.

Property-based tests (Hypothesis) feed random shapes, dtypes, alpha patterns
and byte strings to the canvas and photo paths; the tests after them pin each
finding of the hostile-input review (issue #16): the stray-byte JPEG, 16-bit
PNGs, forged canvas values, the crafted alpha PNG, progressive JPEGs with
thousands of scans.  Costs are checked by what bounds them (the sizes the work
runs at, the memory a conversion takes), not by timing;
``benchmarks/hostile_inputs.py`` times them.
"""
from __future__ import annotations

import io
import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knn_core import EmptyDrawingError, ImageError, canvas_to_mnist, photo_to_mnist
from knn_core.normalize import (
    MAX_SIDE,
    MNIST_STROKE,
    THICKEN_MAX_RADIUS,
    Stages,
    as_image_array,
    canvas_to_mnist_stages,
    to_unit_float,
)
from knn_core.photo import (
    PNG_MAX_PIXELS,
    PROGRESSIVE_MAX_WORK,
    canvas_from_png,
    photo_to_mnist_stages,
)
from knn_core.testing import (
    encode_jpeg,
    encode_png,
    frame_picture,
    png_header_only,
    simulate_canvas,
    with_repeated_last_scan,
    with_stray_byte_before_frame,
)

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDED_INK = MAX_SIDE + 2 * THICKEN_MAX_RADIUS  # the largest ink map any path works on


def is_digit(out) -> bool:
    return isinstance(out, np.ndarray) and out.shape == (28, 28) and out.dtype == np.uint8


def digit_or_clear_error(fn, *args, **kwargs):
    """fn's digit, or None after an ImageError / EmptyDrawingError with a message; anything else fails."""
    try:
        out = fn(*args, **kwargs)
    except (ImageError, EmptyDrawingError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None
    digit = out.centred if isinstance(out, Stages) else out
    assert is_digit(digit), (type(digit), getattr(digit, "shape", None), getattr(digit, "dtype", None))
    return out


DTYPES = ["uint8", "uint16", "int16", "int64", "float32", "float64", "bool"]
PATTERNS = ["noise", "blank", "frame", "dot", "stroke", "constant"]
ALPHAS = ["none", "opaque", "transparent", "varies", "frame", "noise"]


@st.composite
def pictures(draw, max_side: int = 700):
    """A picture of any shape, dtype and alpha pattern (built with numpy: fast at any size)."""
    h = draw(st.integers(1, max_side))
    w = draw(st.one_of(st.integers(1, max_side), st.integers(1, 4), st.integers(max_side, 3 * max_side)))
    channels = draw(st.sampled_from([0, 1, 3, 4]))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    pattern = draw(st.sampled_from(PATTERNS))
    alpha = draw(st.sampled_from(ALPHAS)) if channels == 4 else "none"
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = np.zeros((h, w), np.float64)
    if pattern == "noise":
        g = rng.random((h, w))
    elif pattern == "frame":
        g = frame_picture(h, w, inset=0, in_alpha=False) / 255.0
    elif pattern == "dot":
        g[rng.integers(h), rng.integers(w)] = 1.0
    elif pattern == "stroke":
        cv2.line(g, (0, int(rng.integers(h))), (w - 1, int(rng.integers(h))), 1.0, int(rng.integers(1, 9)))
    elif pattern == "constant":
        g[:] = rng.random()
    if dtype == np.bool_:
        a = g > 0.5
    elif dtype.kind == "f":
        a = (g * draw(st.sampled_from([1.0, 255.0, 1e6, -3.0]))).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = (g * min(info.max, 65535)).astype(dtype)
    if channels == 1:
        a = a[:, :, None]
    elif channels in (3, 4):
        a = np.repeat(a[:, :, None], channels, axis=2)
        if channels == 3 or alpha == "none":
            pass
        else:
            top = a.max() if a.size and a.dtype != np.bool_ else 1
            alpha_plane = {
                "opaque": np.full((h, w), top),
                "transparent": np.zeros((h, w)),
                "varies": np.linspace(0, top, h * w).reshape(h, w),
                "frame": frame_picture(h, w, inset=0, in_alpha=False) / 255.0 * top,
                "noise": rng.random((h, w)) * top,
            }[alpha]
            a[:, :, 3] = alpha_plane.astype(a.dtype)
    return a


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """A file cut short, with bytes overwritten or inserted (a stray byte before a marker, say)."""
    b = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["cut", "flip", "insert"]))
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        if how == "cut":
            del b[i:]
        elif how == "flip":
            b[i] = draw(st.integers(0, 255))
        else:
            b[i:i] = draw(st.binary(min_size=1, max_size=4))
    return bytes(b)


SMALL_FILES = {
    "png-rgba-canvas": encode_png(simulate_canvas(np.eye(28, dtype=np.uint8) * 255, 0, encoding="alpha")),
    "png-grey-16": encode_png((frame_picture(60, 80, in_alpha=False, thickness=3).astype(np.uint16) * 257)),
    "jpeg-baseline": encode_jpeg(255 - frame_picture(60, 80, in_alpha=False, thickness=3)),
    "jpeg-progressive": encode_jpeg(np.dstack([255 - frame_picture(64, 64, in_alpha=False, thickness=3)] * 3),
                                    progressive=True),
}


# ------------------------------------------------------------------ properties


@FEW
@given(pictures(), st.sampled_from([None, MNIST_STROKE, 0.5]))
def test_any_array_on_the_canvas_path_gives_a_digit_or_a_clear_error(picture, min_stroke):
    out = digit_or_clear_error(canvas_to_mnist_stages, picture, min_stroke=min_stroke)
    if out is not None:
        assert max(out.ink.shape) <= BOUNDED_INK  # the work ran at a bounded size


@FEW
@given(pictures())
def test_any_array_on_the_photo_path_gives_a_digit_or_a_clear_error(picture):
    out = digit_or_clear_error(photo_to_mnist_stages, picture)
    if out is not None:
        assert max(out.ink.shape) <= BOUNDED_INK


@FEW
@given(st.one_of(st.binary(max_size=3000), st.sampled_from(list(SMALL_FILES.values())).flatmap(damaged)))
def test_any_bytes_on_the_photo_path_give_a_digit_or_a_clear_error(data):
    digit_or_clear_error(photo_to_mnist, data)


@FEW
@given(st.one_of(st.binary(max_size=3000), st.sampled_from(list(SMALL_FILES.values())).flatmap(damaged)))
def test_any_bytes_as_a_canvas_value_give_a_digit_or_a_clear_error(data):
    try:
        pixels = canvas_from_png(data)
    except ImageError as exc:
        assert str(exc)
        return
    assert pixels.ndim in (2, 3) and max(pixels.shape[:2]) <= 1000
    digit_or_clear_error(canvas_to_mnist, pixels, min_stroke=MNIST_STROKE)


@FEW
@given(pictures(max_side=300))
def test_any_picture_as_a_png_gives_a_digit_or_a_clear_error(picture):
    a = as_image_array(picture)
    if a.dtype not in (np.uint8, np.uint16):
        a = np.round(to_unit_float(a) * 255).astype(np.uint8)
    digit_or_clear_error(photo_to_mnist, encode_png(a))


# ---------------------------------------------------------------- the findings


def test_a_stray_byte_before_the_jpeg_frame_header_does_not_skip_the_pixel_check():
    small = encode_jpeg(np.zeros((64, 48), np.uint8))
    forged = with_stray_byte_before_frame(small, width=6000, height=5000)
    assert forged.count(b"\x00\xff\xc0") == 1  # the stray byte is there
    with pytest.raises(ImageError, match=r"6,000x5,000 = 30,000,000 pixels, more than the limit of 25,000,000"):
        photo_to_mnist(forged)


def test_a_jpeg_with_a_stray_byte_still_reads_as_it_should():
    rng = np.random.default_rng(0)
    paper = np.full((300, 400), 220, np.uint8)
    d = simulate_canvas(np.eye(28, dtype=np.uint8) * 255, rng, canvas=300, pen="thick")[:, :, 0]
    paper[:, 50:350] = np.minimum(paper[:, 50:350], 255 - d)
    clean = encode_jpeg(paper)
    assert np.array_equal(photo_to_mnist(with_stray_byte_before_frame(clean)), photo_to_mnist(clean))


def test_16_bit_pngs_read_like_8_bit_ones():
    photo8 = 255 - frame_picture(300, 400, inset=60, in_alpha=False, thickness=12)
    ref = photo_to_mnist(encode_png(photo8))
    grey16 = photo8.astype(np.uint16) * 257
    for data in (encode_png(grey16), encode_png(np.dstack([grey16] * 3))):
        assert np.abs(photo_to_mnist(data).astype(int) - ref).max() <= 1


def test_a_16_bit_picture_is_converted_without_float_copies():
    rgb16 = np.dstack([frame_picture(3000, 3000, inset=200, in_alpha=False, thickness=40).astype(np.uint16) * 257]
                      * 3)  # 54 MB; one float64 copy would be 216 MB, a float32 one 108 MB
    tracemalloc.start()
    try:
        photo_to_mnist(rgb16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("shape", [(1400, 1400), (400, 10_000), (10_000, 400), (1000, 200)])
def test_a_forged_canvas_value_of_the_wrong_size_is_refused(shape):
    data = encode_png(frame_picture(*shape, in_alpha=False))
    with pytest.raises(ImageError, match=rf"it is {shape[1]:,}x{shape[0]:,} pixels, the canvas sends 280x280"):
        canvas_from_png(data)


def test_a_canvas_value_must_be_a_png():
    with pytest.raises(ImageError, match="12,000x12,000 pixels"):
        canvas_from_png(png_header_only(12_000, 12_000))
    for data in (encode_jpeg(np.zeros((280, 280), np.uint8)), b"%!PS-Adobe-3.0\n0 0 moveto showpage\n",
                 b"GIF89a" + bytes(100), b""):
        with pytest.raises(ImageError, match="not a PNG image"):
            canvas_from_png(data)
    with pytest.raises(ImageError, match="bytes of a PNG"):
        canvas_from_png("a string")


def test_a_real_canvas_value_is_read_exactly():
    rgba = simulate_canvas(np.eye(28, dtype=np.uint8) * 255, 3, encoding="alpha")
    rgba[:, :, :3] = 7  # junk under the alpha, as a browser may send
    out = canvas_from_png(encode_png(rgba))
    assert out.shape == (280, 280, 4) and out.dtype == np.uint8 and np.array_equal(out, rgba)


def test_big_arrays_on_the_canvas_path_are_shrunk_before_thickening():
    for shape in ((2000, 2000), (400, 10_000), (1000, 1000)):
        st_ = canvas_to_mnist_stages(frame_picture(*shape, thickness=8), min_stroke=MNIST_STROKE)
        assert max(st_.ink.shape) <= BOUNDED_INK
    # at canvas size nothing is shrunk: the same digit as before the bound existed
    c = simulate_canvas(np.eye(28, dtype=np.uint8) * 255, 1, pen="thin")
    assert canvas_to_mnist_stages(c, min_stroke=MNIST_STROKE).ink.shape[0] > 280


def test_the_crafted_alpha_png_is_refused_and_one_at_the_limit_is_bounded():
    with pytest.raises(ImageError, match=r"3,000x3,000 = 9,000,000 pixels.*4,000,000 for a PNG"):
        photo_to_mnist(encode_png(frame_picture(3000, 3000)))
    side = int(PNG_MAX_PIXELS ** 0.5)
    st_ = photo_to_mnist_stages(encode_png(frame_picture(side, side, thickness=6)))
    assert max(st_.ink.shape) <= BOUNDED_INK
    assert st_.centred.max() == 255


def test_a_progressive_jpeg_with_thousands_of_scans_is_refused():
    base = encode_jpeg(255 - frame_picture(2000, 2000, inset=400, in_alpha=False, thickness=80), progressive=True)
    assert is_digit(photo_to_mnist(base))  # libjpeg's usual 6 scans: within the budget
    many = with_repeated_last_scan(base, 1000)
    with pytest.raises(ImageError, match=r"progressive JPEG of 2,000x2,000 pixels in 10\d\d scans"):
        photo_to_mnist(many)
    assert 2000 * 2000 * base.count(b"\xff\xda") <= PROGRESSIVE_MAX_WORK  # the plain file is within budget


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP", "ICO"])
def test_other_formats_are_refused_by_the_photo_path(fmt):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(255 - frame_picture(64, 64, in_alpha=False, thickness=4)).save(buf, fmt)
    with pytest.raises(ImageError, match="not a PNG or JPEG image"):
        photo_to_mnist(buf.getvalue())


def test_opencv_and_memory_failures_become_image_errors(monkeypatch):
    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(5.0.0) /build/path/resize.cpp:1: error: (-215:Assertion failed) x in function 'resize'")

    big = frame_picture(1200, 1200, thickness=8)  # big enough to be shrunk
    monkeypatch.setattr(cv2, "resize", broken)
    with pytest.raises(ImageError, match="could not be processed") as err:
        canvas_to_mnist(big)
    assert "/build/path" not in str(err.value)  # no paths in a message a page shows

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cv2, "resize", no_memory)
    with pytest.raises(ImageError, match="too big to process"):
        photo_to_mnist(big)
