"""knn_core.normalize, .photo, .features: drawings and photos -> MNIST-style 28x28 digits; feature transforms."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from knn_core.errors import EmptyDrawingError, ImageError
from knn_core.features import blur, deskew, downsample
from knn_core.normalize import (
    MNIST_STROKE,
    Stages,
    canvas_to_mnist,
    canvas_to_mnist_stages,
    find_ink,
    stroke_width,
)
from knn_core.photo import photo_preview, photo_to_mnist, photo_to_mnist_stages, photo_with_preview
from knn_core.testing import ENCODINGS, png_header_only, simulate_canvas


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    f = img.astype(np.float64)
    m = f.sum()
    return (float(f.sum(axis=1) @ np.arange(f.shape[0]) / m),
            float(f.sum(axis=0) @ np.arange(f.shape[1]) / m))


def ink_box(img: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero((img > 0).any(axis=1))
    cols = np.flatnonzero((img > 0).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float).ravel(), np.asarray(b, float).ravel())[0, 1])


def white_on_black(grey: np.ndarray) -> np.ndarray:
    rgba = np.zeros(grey.shape + (4,), np.uint8)
    rgba[:, :, :3] = grey[:, :, None]
    rgba[:, :, 3] = 255
    return rgba


def random_shapes(rng, n):
    """Antialiased strokes of many kinds, sizes and places on a 280x280 canvas."""
    for _ in range(n):
        g = np.zeros((280, 280), np.uint8)
        kind = rng.integers(3)
        cx, cy = (int(v) for v in rng.integers(70, 210, size=2))
        if kind == 0:
            axes = tuple(int(v) for v in rng.integers(8, 60, size=2))
            cv2.ellipse(g, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 255,
                        int(rng.integers(4, 20)), cv2.LINE_AA)
        elif kind == 1:
            pts = (rng.integers(-60, 60, size=(int(rng.integers(2, 6)), 2)) + [cx, cy]).astype(np.int32)
            cv2.polylines(g, [pts], False, 255, int(rng.integers(4, 20)), cv2.LINE_AA)
        else:
            pts = (rng.integers(-50, 50, size=(4, 2)) + [cx, cy]).astype(np.int32)
            cv2.fillPoly(g, [pts], 255, cv2.LINE_AA)
        yield g


# ----------------------------------------------------------------------- canvas_to_mnist


def test_centre_of_mass_at_14_14_within_half_a_pixel(mnist):
    rng = np.random.default_rng(0)
    drawings = [white_on_black(g) for g in random_shapes(rng, 60)]
    drawings += [simulate_canvas(d, rng) for d in mnist.test_images[:150]]
    worst, clamped = 0.0, 0
    for img in drawings:
        st = canvas_to_mnist_stages(img)
        out = st.centred
        assert out.shape == (28, 28) and out.dtype == np.uint8
        assert out.max() == 255
        by, bx = centre_of_mass(st.boxed)
        ideal = (int(np.rint(14 - by)), int(np.rint(14 - bx)))
        if st.offset != ideal:  # too lopsided to centre without cutting ink off
            clamped += 1
            assert out.sum(dtype=np.int64) == st.boxed.sum(dtype=np.int64)
            continue
        cy, cx = centre_of_mass(out)
        worst = max(worst, abs(cy - 14), abs(cx - 14))
    assert worst <= 0.5
    assert clamped <= 2


def test_larger_side_is_exactly_20_and_aspect_is_kept():
    rng = np.random.default_rng(1)
    for g in random_shapes(rng, 40):
        h, w = ink_box(canvas_to_mnist(g))
        assert max(h, w) == 20
    # A 2:1 tall ellipse.
    g = np.zeros((280, 280), np.uint8)
    cv2.ellipse(g, (100, 150), (40, 80), 0, 0, 360, 255, 6, cv2.LINE_AA)
    h, w = ink_box(canvas_to_mnist(g))
    assert h == 20 and abs(w - 10) <= 1
    # Filled 2:1 rectangles with hard edges, shrunk or enlarged: exactly 20x10.
    for top, left, hh in ((50, 100, 120), (50, 100, 12), (200, 3, 2)):
        g = np.zeros((280, 280), np.uint8)
        g[top:top + hh, left:left + hh // 2] = 255
        out = canvas_to_mnist(g)
        assert ink_box(out) == (20, 10)
        assert (out[out > 0] == 255).all()


def test_wide_drawings_fill_20_columns():
    g = np.zeros((200, 300), np.uint8)
    cv2.line(g, (20, 100), (280, 110), 255, 9, cv2.LINE_AA)
    h, w = ink_box(canvas_to_mnist(g))
    assert w == 20 and h <= 3


def test_faint_noise_does_not_stretch_the_box():
    g = np.zeros((280, 280), np.uint8)
    g[100:200, 120:170] = 255
    g[5, 5] = g[270, 270] = 20  # specks under 10 % of the peak
    assert ink_box(canvas_to_mnist(g)) == (20, 10)


def test_three_encodings_give_the_same_digit(mnist):
    for i, d in enumerate(mnist.test_images[:20]):
        outs = [canvas_to_mnist(simulate_canvas(d, np.random.default_rng(i), encoding=e))
                for e in ENCODINGS]
        for o in outs[1:]:
            assert np.abs(o.astype(int) - outs[0]).max() <= 1
    # The alpha encoding ignores whatever RGB holds; grey and RGB inputs agree too.
    c = simulate_canvas(mnist.test_images[0], np.random.default_rng(7), encoding="alpha")
    junk = c.copy()
    junk[:, :, :3] = np.random.default_rng(8).integers(0, 256, size=junk.shape[:2] + (3,))
    ref = canvas_to_mnist(c)
    assert np.array_equal(canvas_to_mnist(junk), ref)
    grey = c[:, :, 3]
    for img in (grey, 255 - grey, np.dstack([grey] * 3), np.dstack([255 - grey] * 3),
                grey.astype(np.float32) / 255, grey[:, :, None]):
        assert np.abs(canvas_to_mnist(img).astype(int) - ref).max() <= 1


def test_translation_gives_identical_digits():
    g = np.zeros((280, 280), np.uint8)
    cv2.putText(g, "7", (60, 170), cv2.FONT_HERSHEY_SIMPLEX, 4, 255, 14, cv2.LINE_AA)
    ref = canvas_to_mnist(g)
    for dy, dx in ((0, 100), (60, -50), (-40, 30)):
        assert np.array_equal(canvas_to_mnist(np.roll(g, (dy, dx), axis=(0, 1))), ref)


def test_translation_and_scale_invariance_on_mnist(mnist):
    rng = np.random.default_rng(3)
    y = mnist.test_labels
    picks = [j for c in range(10) for j in np.flatnonzero(y == c)[:3]]
    outs = {j: [canvas_to_mnist(simulate_canvas(mnist.test_images[j], rng, pen="normal")).astype(float)
                for _ in range(5)] for j in picks}
    intra = [np.linalg.norm(a[p] - a[q]) for a in outs.values() for p in range(5) for q in range(p)]
    inter = [np.linalg.norm(outs[a][0] - outs[b][0]) for a in picks for b in picks if y[a] != y[b]]
    assert np.mean(intra) < 0.15 * np.mean(inter)
    assert max(intra) < min(inter)


@pytest.mark.parametrize("img", [
    np.zeros((280, 280, 4), np.uint8) + np.array([0, 0, 0, 255], np.uint8),  # black canvas
    np.full((280, 280, 4), 255, np.uint8),  # white canvas
    np.zeros((280, 280, 4), np.uint8),  # fully transparent
    np.dstack([np.random.default_rng(0).integers(0, 256, (64, 64, 3)), np.zeros((64, 64))]).astype(np.uint8),
    np.zeros((28, 28)),
    np.full((50, 50), 7, np.uint8),  # constant grey
    (np.random.default_rng(0).random((100, 100)) * 8).astype(np.uint8),  # faint noise
])
def test_empty_drawings_raise(img):
    with pytest.raises(EmptyDrawingError):
        canvas_to_mnist(img)


@pytest.mark.parametrize("bad", [
    np.zeros((280, 280, 2), np.uint8), np.zeros((280, 280, 5), np.uint8), np.zeros(280, np.uint8),
    np.zeros((2, 28, 28, 4), np.uint8), np.zeros((0, 0), np.uint8), np.zeros((0, 5, 4), np.uint8),
    np.array([["a", "b"]]), [[1, 2], [3]], np.full((5, 5), np.nan),
])
def test_wrong_inputs_raise_image_error(bad):
    with pytest.raises(ImageError):
        canvas_to_mnist(bad)
    assert issubclass(ImageError, ValueError) and issubclass(EmptyDrawingError, ValueError)


def test_find_ink_polarity_dtypes_and_background():
    ink = np.zeros((40, 40), np.float32)
    ink[10:30, 15:20] = 1.0
    assert np.allclose(find_ink((ink * 255).astype(np.uint8)), ink, atol=1 / 255)
    assert np.allclose(find_ink(((1 - ink) * 65535).astype(np.uint16)), ink, atol=1e-4)
    assert np.allclose(find_ink((1 - ink) * 255.0), ink, atol=1e-6)  # floats above 1 read as 0..255
    grey_paper = (0.8 - 0.6 * ink).astype(np.float32)  # dark ink on light grey: bg maps to 0
    assert np.allclose(find_ink(grey_paper), ink * 0.75, atol=1e-6)
    red_on_white = np.full((40, 40, 3), 255, np.uint8)
    red_on_white[ink > 0] = (200, 0, 0)
    got = find_ink(red_on_white)
    assert got.dtype == np.float32 and got[ink == 0].max() == 0 and got[ink > 0].min() > 0.5


def test_min_stroke_thickens_hairlines_only(mnist):
    g = np.zeros((280, 280), np.uint8)
    cv2.ellipse(g, (140, 140), (50, 100), 0, 0, 360, 255, 3, cv2.LINE_AA)  # a hairline "0"
    assert stroke_width(g / 255.0) < 5
    st = canvas_to_mnist_stages(g, min_stroke=MNIST_STROKE)
    assert abs(stroke_width(st.cropped) / max(st.cropped.shape) - MNIST_STROKE) < 0.02
    plain, thick = canvas_to_mnist(g), st.centred
    assert thick.sum(dtype=np.int64) > 1.5 * plain.sum(dtype=np.int64)
    assert max(ink_box(thick)) == 20
    h, w = ink_box(thick)
    assert abs(w - 10) <= 1
    # Strokes already as thick as MNIST's are left alone.
    c = simulate_canvas(mnist.test_images[0], np.random.default_rng(0), pen="thick")
    assert np.array_equal(canvas_to_mnist(c, min_stroke=MNIST_STROKE), canvas_to_mnist(c))
    # MNIST's own strokes are about MNIST_STROKE of the box.
    widths = [stroke_width(d / 255.0) for d in mnist.test_images[:200]]
    assert abs(np.median(widths) / 20 - MNIST_STROKE) < 0.02


def test_stages_are_the_pipeline():
    g = np.zeros((280, 280), np.uint8)
    cv2.putText(g, "2", (80, 200), cv2.FONT_HERSHEY_SIMPLEX, 5, 255, 16, cv2.LINE_AA)
    st = canvas_to_mnist_stages(white_on_black(g))
    assert isinstance(st, Stages)
    top, bottom, left, right = st.bbox
    assert np.array_equal(st.cropped, st.ink[top:bottom, left:right])
    assert max(st.boxed.shape) == 20 and st.boxed.max() == 255
    oy, ox = st.offset
    assert np.array_equal(st.centred[oy:oy + st.boxed.shape[0], ox:ox + st.boxed.shape[1]], st.boxed)
    assert np.array_equal(st.centred, canvas_to_mnist(g))


def test_round_trip_on_200_mnist_digits(mnist):
    digits = mnist.test_images[:200]
    means = {}
    for enc in ENCODINGS:
        rng = np.random.default_rng(11)
        means[enc] = float(np.mean([corr(canvas_to_mnist(simulate_canvas(d, rng, encoding=enc)), d)
                                    for d in digits]))
    print("round-trip mean correlation (random pens):", {k: round(v, 4) for k, v in means.items()})
    assert all(v > 0.88 for v in means.values())
    assert max(means.values()) - min(means.values()) < 0.005
    # MNIST digits are already normalised: the pipeline barely changes them.
    assert np.mean([corr(canvas_to_mnist(d), d) for d in digits]) > 0.995


# -------------------------------------------------------------------------- photos


def synth_photo(digit, rng, h=600, w=800, blank=False):
    """Light paper lit unevenly (0.45..0.95), sensor noise, a dark handwritten digit; BGR uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 0.45 + 0.3 * xx / w + 0.2 * yy / h
    ink = np.zeros((h, w), np.float32)
    if not blank:
        c = simulate_canvas(digit, rng, canvas=h, pen="normal", size=0.6)[:, :, 0] / 255.0
        ink[:, 120:120 + h] = c
    g = paper * (1 - 0.75 * ink) + rng.normal(0, 0.03, (h, w))
    g = np.clip(g * 255, 0, 255).astype(np.uint8)
    return np.dstack([g, g, np.clip(g.astype(int) + 12, 0, 255).astype(np.uint8)])  # a warm tint


def encode(img, ext):
    ok, buf = cv2.imencode(ext, img, [cv2.IMWRITE_JPEG_QUALITY, 85] if ext == ".jpg" else [])
    assert ok
    return buf.tobytes()


def test_photo_of_paper_matches_the_clean_digit(mnist):
    rng = np.random.default_rng(5)
    cs = []
    for d in mnist.test_images[:6]:
        photo = synth_photo(d, rng)
        clean = canvas_to_mnist(d)
        for ext in (".jpg", ".png"):
            cs.append(corr(photo_to_mnist(encode(photo, ext)), clean))
    assert min(cs) > 0.75 and np.mean(cs) > 0.85


def test_photo_inputs_arrays_and_transparent_pngs(mnist):
    d = mnist.test_images[1]
    rgb = synth_photo(d, np.random.default_rng(2))[:, :, ::-1]
    assert corr(photo_to_mnist(rgb), canvas_to_mnist(d)) > 0.8  # an RGB array, not bytes
    st = photo_to_mnist_stages(encode(rgb[:, :, ::-1], ".png"))
    assert st.ink.shape == (420, 560)  # shrunk to a longest side of 560
    # A PNG of strokes on a transparent background is read as a drawing (ink = alpha).
    c = simulate_canvas(d, np.random.default_rng(3), encoding="alpha")
    png = encode(c[:, :, [2, 1, 0, 3]], ".png")
    assert np.array_equal(photo_to_mnist(png), canvas_to_mnist(c, min_stroke=MNIST_STROKE))
    assert np.array_equal(photo_to_mnist(png, min_stroke=None), canvas_to_mnist(c))


def test_photo_exif_orientation_is_applied(mnist):
    from PIL import Image

    d = mnist.test_images[2]
    upright = synth_photo(d, np.random.default_rng(4))[:, :, ::-1]
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # what a phone stores; EXIF 6 rotates back
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=90)
    assert corr(photo_to_mnist(buf.getvalue()), canvas_to_mnist(d)) > 0.8


def test_blank_paper_raises_empty():
    rng = np.random.default_rng(6)
    for ext in (".jpg", ".png"):
        with pytest.raises(EmptyDrawingError):
            photo_to_mnist(encode(synth_photo(None, rng, blank=True), ext))


@pytest.mark.parametrize("data", [
    np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8).tobytes(),
    b"", b"GIF89a" + bytes(100), b"\x89PNG\r\n\x1a\n" + bytes(40), b"\xff\xd8\xff\xe0" + bytes(60),
])
def test_non_images_raise_image_error(data):
    with pytest.raises(ImageError, match="PNG or JPEG"):
        photo_to_mnist(data)


def test_too_many_pixels_raise_before_decoding():
    with pytest.raises(ImageError, match=r"6,000x5,000 = 30,000,000 pixels.*25,000,000"):
        photo_to_mnist(png_header_only(6000, 5000))
    with pytest.raises(ImageError, match=r"2,500x2,000 = 5,000,000 pixels.*4,000,000 for a PNG"):
        photo_to_mnist(png_header_only(2500, 2000))  # PNGs are decoded in full: a lower limit
    with pytest.raises(ImageError, match=r"more than 178,956,970 pixels.*25,000,000"):
        photo_to_mnist(png_header_only(20000, 20000))  # beyond Pillow's own bomb limit
    small = encode(np.full((60, 80, 3), 200, np.uint8), ".png")
    with pytest.raises(ImageError, match=r"80x60 = 4,800 pixels.*1,000"):
        photo_to_mnist(small, max_pixels=1000)
    jpg = encode(np.full((60, 80, 3), 200, np.uint8), ".jpg")
    with pytest.raises(ImageError, match=r"80x60.*1,000"):
        photo_to_mnist(jpg, max_pixels=1000)
    with pytest.raises(ImageError, match="limit"):
        photo_to_mnist(np.zeros((100, 100, 3), np.uint8), max_pixels=1000)


# -------------------------------------------------------------- feature transforms


def skew_of(img):
    f = img.astype(np.float64)
    m = f.sum()
    ys, xs = np.mgrid[0:f.shape[0], 0:f.shape[1]]
    cy, cx = (f * ys).sum() / m, (f * xs).sum() / m
    return ((f * (xs - cx) * (ys - cy)).sum()) / (f * (ys - cy) ** 2).sum()


def test_deskew_straightens_a_sheared_digit(mnist):
    upright = np.zeros((28, 28), np.uint8)
    cv2.ellipse(upright, (14, 14), (3, 9), 0, 0, 360, 255, -1, cv2.LINE_AA)
    sheared = cv2.warpAffine(upright, np.array([[1, 0.4, -0.4 * 14], [0, 1, 0]]), (28, 28))
    assert abs(skew_of(sheared)) > 0.3
    out = deskew(sheared)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert abs(skew_of(out)) < 0.03
    assert np.abs(np.subtract(centre_of_mass(out), centre_of_mass(sheared))).max() < 0.2
    batch = mnist.test_images[:300]
    before = np.abs([skew_of(d) for d in batch])
    after = np.abs([skew_of(d) for d in deskew(batch, progress=False)])
    assert np.median(after) < 0.2 * np.median(before)
    blank = np.zeros((2, 28, 28), np.float64)
    out = deskew(blank)
    assert out.dtype == np.float32 and not out.any()


def test_blur_keeps_the_ink(mnist):
    batch = mnist.test_images[:50]
    out = blur(batch, sigma=1.0)
    assert out.shape == batch.shape and out.dtype == np.uint8
    ratio = out.sum(axis=(1, 2), dtype=np.int64) / batch.sum(axis=(1, 2), dtype=np.int64)
    assert np.all(np.abs(ratio - 1) < 0.02)
    assert out.max() < batch.max()  # it did blur
    f = blur(batch[0].astype(np.float32), sigma=1.5)
    assert f.dtype == np.float32 and f.shape == (28, 28)
    assert abs(f.sum() / batch[0].sum() - 1) < 0.01
    assert np.array_equal(blur(batch, sigma=0), batch)


def test_downsample_shapes_and_means():
    const = np.full((5, 28, 28), 77, np.uint8)
    out = downsample(const)
    assert out.shape == (5, 10, 10) and out.dtype == np.uint8 and (out == 77).all()
    f = downsample(np.full((28, 28), 0.25, np.float32))
    assert f.shape == (10, 10) and f.dtype == np.float32 and np.allclose(f, 0.25)
    img = np.zeros((28, 28), np.float32)
    img[2:5, 2:5] = 9.0  # exactly the second block of each axis (28 is padded by one each side)
    out = downsample(img)
    assert out[1, 1] == 9.0 and out.sum() == 9.0


# ------------------------------------------------------------------- simulate_canvas


def test_simulate_canvas_encodings_and_pens(mnist):
    d = mnist.test_images[0]
    for enc in ENCODINGS:
        c = simulate_canvas(d, np.random.default_rng(0), encoding=enc)
        assert c.shape == (280, 280, 4) and c.dtype == np.uint8
        if enc == "alpha":
            assert c[0, 0, 3] == 0 and c[:, :, 3].max() == 255
        else:
            assert (c[:, :, 3] == 255).all()
            assert c[0, 0, 0] == (0 if enc == "white_on_black" else 255)
    amounts = [simulate_canvas(d, np.random.default_rng(0), pen=p, size=0.6)[:, :, 0].sum(dtype=np.int64)
               for p in ("thin", "normal", "thick")]
    assert amounts[0] < amounts[1] < amounts[2]
    with pytest.raises(ValueError):
        simulate_canvas(d, 0, encoding="sepia")


def test_photo_preview_is_the_photo_shrunk_and_checked_like_it():
    paper = np.full((300, 600), 230, np.uint8)
    paper[100:200, 280:320] = 20  # a dark bar in the middle
    ok, png = cv2.imencode(".png", paper)
    small = photo_preview(png.tobytes(), side=96)
    assert small.shape == (48, 96) and small.dtype == np.uint8
    assert small[24, 48] < 60 and small[5, 5] == 230  # the ink stays dark, the paper light
    tiny = cv2.imencode(".png", paper[:40, :50])[1].tobytes()
    assert photo_preview(tiny, side=96).shape == (40, 50)  # never enlarged
    with pytest.raises(ImageError, match="not a PNG or JPEG"):
        photo_preview(b"not a picture at all")


def test_photo_with_preview_is_both_from_one_decode(mnist):
    """The Draw page's one decode per upload: the same stages and preview as the two separate calls,
    for a photo on paper and a transparent PNG; blank paper keeps its preview and says why."""
    from knn_core.testing import encode_png

    paper = np.full((400, 300), 235, np.uint8)
    paper[100:300, 50:250] -= (cv2.resize(mnist.test_images[0], (200, 200)) * 0.8).astype(np.uint8)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[50:250, 50:250, 3] = cv2.resize(mnist.test_images[1], (200, 200))
    for png in (cv2.imencode(".png", paper)[1].tobytes(), encode_png(rgba)):
        stages, preview = photo_with_preview(png, side=72)
        np.testing.assert_array_equal(stages.centred, photo_to_mnist_stages(png).centred)
        np.testing.assert_array_equal(preview, photo_preview(png, side=72))
    blank = cv2.imencode(".png", np.full((200, 200), 230, np.uint8))[1].tobytes()
    stages, preview = photo_with_preview(blank, side=72)
    assert isinstance(stages, EmptyDrawingError) and preview.shape == (72, 72)
    with pytest.raises(ImageError, match="not a PNG or JPEG"):
        photo_with_preview(b"not a picture at all")

