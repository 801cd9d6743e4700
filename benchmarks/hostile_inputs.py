"""How long can one upload or forged canvas value keep the server busy? The worst preprocessing time.

Feeds hostile inputs (sizes up to the limits, extreme aspect ratios, alpha
tricks, 8/16-bit, grey/RGB/RGBA, PNG/JPEG/other formats, truncated files, a
stray byte before a JPEG's frame header, decompression bombs, progressive
JPEGs with thousands of scans) to the paths the app uses, and prints for each
the time from bytes (or array) to the 28x28 digit and what came out: a digit,
or the ImageError / EmptyDrawingError message.  OpenCV and BLAS run on one
thread, as on the server, so the time is one core's.  Target: <= 0.2 s each.

    .venv/bin/python benchmarks/hostile_inputs.py [--repeat 3] [--only TEXT]

Paths: ``photo`` = ``photo_to_mnist_stages(bytes)`` (the Draw page's upload),
``canvas`` = ``canvas_from_png(bytes)`` then ``canvas_to_mnist_stages(...,
min_stroke=MNIST_STROKE)`` (a canvas value from the browser), ``array`` =
``canvas_to_mnist_stages(array, min_stroke=MNIST_STROKE)`` (a library caller's
array).  Uploads are at most 5 MB (the server's ``maxUploadSize``); every
file here is smaller.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from knn_core.errors import EmptyDrawingError, ImageError  # noqa: E402
from knn_core.normalize import MNIST_STROKE, canvas_to_mnist_stages  # noqa: E402
from knn_core.photo import canvas_from_png, photo_to_mnist_stages  # noqa: E402
from knn_core.testing import (  # noqa: E402
    encode_jpeg,
    encode_png,
    frame_picture,
    huge_png,
    png_header_only,
    simulate_canvas,
    with_repeated_last_scan,
    with_stray_byte_before_frame,
)

TARGET_SECONDS = 0.2
UPLOAD_LIMIT = 5 * 1024 * 1024


def paper_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A grey photo-like picture: unevenly lit paper, a little noise, a dark "7" in the middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paper = 200 + 40 * xx / width - 30 * yy / height
    g = paper + rng.normal(0, 1.5, (height, width)).astype(np.float32)
    side = min(height, width)
    ink = np.zeros((height, width), np.uint8)
    cv2.putText(ink, "7", (width // 2 - side // 4, height // 2 + side // 4), cv2.FONT_HERSHEY_SIMPLEX,
                side / 40, 255, max(1, side // 40), cv2.LINE_AA)
    return np.clip(g * (1 - 0.7 * ink / 255.0), 0, 255).astype(np.uint8)


def _other_format(fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(paper_photo(300, 400)).save(buf, fmt, **kw)
    return buf.getvalue()


def _palette_alpha_png(side: int) -> bytes:
    """A palette PNG whose transparency (tRNS) hides all but a 1-px frame."""
    from PIL import Image

    img = Image.fromarray(frame_picture(side, side, in_alpha=False)).convert("P")
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def _cmyk_jpeg(height: int, width: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(paper_photo(height, width)).convert("CMYK").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def cases() -> list[tuple[str, str, Callable[[], object]]]:
    """(description, path, builder) of every input; builders run before the clock starts."""
    frame = frame_picture
    photo = paper_photo
    return [
        # what a normal user sends, for comparison
        ("normal: canvas drawing 280x280", "canvas",
         lambda: encode_png(simulate_canvas(np.eye(28, dtype=np.uint8) * 255, 0, pen="thin"))),
        ("normal: phone photo JPEG 4032x3024", "photo", lambda: encode_jpeg(photo(3024, 4032), 85)),
        # alpha tricks (the 3000x3000 crafted PNG first)
        ("alpha: 1-px frame, 3000x3000 RGBA PNG", "photo", lambda: encode_png(frame(3000, 3000))),
        ("alpha: 1-px frame, 2000x2000 RGBA PNG", "photo", lambda: encode_png(frame(2000, 2000))),
        ("alpha: 1-px frame, 400x10000 RGBA PNG", "photo", lambda: encode_png(frame(400, 10000))),
        ("alpha: 1-px frame, 10000x400 RGBA PNG", "photo", lambda: encode_png(frame(10000, 400))),
        ("alpha: 1-px frame, 4x1,000,000 RGBA PNG", "photo", lambda: encode_png(frame(4, 1_000_000))),
        ("alpha: random alpha, 1500x1500 RGBA PNG", "photo", lambda: encode_png(np.dstack(
            [np.zeros((1500, 1500, 3), np.uint8), np.random.default_rng(1).integers(0, 256, (1500, 1500), np.uint8)]))),
        ("alpha: palette + tRNS frame, 2000x2000 PNG", "photo", lambda: _palette_alpha_png(2000)),
        # bit depths and channels
        ("16-bit grey PNG 2000x2000", "photo", lambda: encode_png(photo(2000, 2000).astype(np.uint16) * 257)),
        ("16-bit RGB PNG 2000x2000", "photo",
         lambda: encode_png(np.dstack([photo(2000, 2000).astype(np.uint16) * 257] * 3))),
        ("16-bit RGBA PNG, frame in alpha, 2000x2000", "photo",
         lambda: encode_png(frame(2000, 2000).astype(np.uint16) * 257)),
        ("8-bit grey PNG 2000x2000", "photo", lambda: encode_png(photo(2000, 2000))),
        ("8-bit RGB PNG 2000x2000", "photo", lambda: encode_png(np.dstack([photo(2000, 2000)] * 3))),
        # sizes at and past the limits, bombs
        ("PNG 12000x12000 (144 Mpx bomb, 150 kB)", "photo", lambda: huge_png(12_000)),
        ("PNG header claiming 100000x100000", "photo", lambda: png_header_only(100_000, 100_000)),
        ("PNG header claiming 6000x5000", "photo", lambda: png_header_only(6000, 5000)),
        ("JPEG 5000x5000 baseline (25 Mpx)", "photo", lambda: encode_jpeg(photo(5000, 5000), 85)),
        ("JPEG 65000x384 baseline (aspect 170)", "photo", lambda: encode_jpeg(photo(384, 65000), 85)),
        ("JPEG 384x65000 baseline (aspect 170)", "photo", lambda: encode_jpeg(photo(65000, 384), 85)),
        ("JPEG CMYK 4000x3000", "photo", lambda: _cmyk_jpeg(3000, 4000)),
        # progressive JPEGs: one pass over every pixel per scan
        ("JPEG 5000x5000 progressive, colour (10 scans)", "photo",
         lambda: encode_jpeg(np.dstack([photo(5000, 5000)] * 3), 85, True)),
        ("JPEG 2400x2400 progressive, colour (10 scans)", "photo",
         lambda: encode_jpeg(np.dstack([photo(2400, 2400)] * 3), 85, True)),
        ("JPEG 5000x5000 progressive + 1000 scans (200 kB)", "photo",
         lambda: with_repeated_last_scan(encode_jpeg(np.zeros((5000, 5000), np.uint8), 85, True), 1000)),
        ("JPEG 560x560 progressive + 180 scans", "photo",
         lambda: with_repeated_last_scan(encode_jpeg(photo(560, 560), 85, True), 180)),
        # the stray byte before the frame header
        ("JPEG stray byte before SOF, 6000x5000", "photo",
         lambda: with_stray_byte_before_frame(encode_jpeg(np.zeros((5000, 6000), np.uint8), 85))),
        ("JPEG stray byte before SOF, 4000x3000", "photo",
         lambda: with_stray_byte_before_frame(encode_jpeg(photo(3000, 4000), 85))),
        # damaged files and other formats
        ("truncated PNG (first half of 2000x2000)", "photo",
         lambda: (lambda b: b[: len(b) // 2])(encode_png(photo(2000, 2000)))),
        ("truncated JPEG (first half of 4000x3000)", "photo",
         lambda: (lambda b: b[: len(b) // 2])(encode_jpeg(photo(3000, 4000), 85))),
        ("GIF", "photo", lambda: _other_format("GIF")),
        ("BMP", "photo", lambda: _other_format("BMP")),
        ("TIFF", "photo", lambda: _other_format("TIFF")),
        ("WebP", "photo", lambda: _other_format("WEBP")),
        ("PostScript (EPS)", "photo", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9999 9999\n"
                                              + b"0 0 moveto 9999 9999 lineto stroke\n" * 1000),
        ("random bytes (1 MB)", "photo", lambda: np.random.default_rng(2).bytes(1 << 20)),
        # forged canvas values (a real canvas sends 280x280 RGBA)
        ("canvas: 1-px frame 1400x1400", "canvas", lambda: encode_png(frame(1400, 1400, in_alpha=False))),
        ("canvas: 1-px frame 400x10000", "canvas", lambda: encode_png(frame(400, 10000, in_alpha=False))),
        ("canvas: 1-px frame 1000x1000 (at the limit)", "canvas", lambda: encode_png(frame(1000, 1000))),
        ("canvas: 1-px frame 1000x250 (aspect 4)", "canvas", lambda: encode_png(frame(1000, 250))),
        ("canvas: 4-px frame 1000x1000 (widest thickening)", "canvas",
         lambda: encode_png(frame(1000, 1000, thickness=4))),
        ("canvas: 4-px frame 1000x250 (aspect 4)", "canvas", lambda: encode_png(frame(1000, 250, thickness=4))),
        ("canvas: PNG 12000x12000 bomb", "canvas", lambda: huge_png(12_000)),
        ("canvas: JPEG instead of PNG", "canvas", lambda: encode_jpeg(photo(280, 280))),
        ("canvas: PostScript", "canvas", lambda: b"%!PS-Adobe-3.0\n0 0 moveto 280 280 lineto stroke\n"),
        # arrays handed to the library directly
        ("array: 1-px frame 2000x2000 RGBA (alpha)", "array", lambda: frame(2000, 2000)),
        ("array: 8-px frame 2000x2000 RGBA (alpha)", "array", lambda: frame(2000, 2000, thickness=8)),
        ("array: 1-px frame 400x10000 grey", "array", lambda: frame(400, 10000, in_alpha=False)),
        ("array: 1-px frame 5000x5000 uint16 grey", "array",
         lambda: frame(5000, 5000, in_alpha=False).astype(np.uint16) * 257),
    ]


def run_path(path: str, data) -> str:
    """Preprocess one input on its path; the outcome as a short text."""
    try:
        if path == "photo":
            st = photo_to_mnist_stages(data)
        elif path == "canvas":
            st = canvas_to_mnist_stages(canvas_from_png(data), min_stroke=MNIST_STROKE)
        else:
            st = canvas_to_mnist_stages(data, min_stroke=MNIST_STROKE)
    except (ImageError, EmptyDrawingError) as exc:
        return f"{type(exc).__name__}: {exc}"
    assert st.centred.shape == (28, 28) and st.centred.dtype == np.uint8
    return f"digit (ink map {st.ink.shape[1]}x{st.ink.shape[0]})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per input; the table shows the slowest")
    ap.add_argument("--only", default="", help="only inputs whose description contains this text")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    rows = []
    worst = 0.0
    with threadpool_limits(1):
        for name, path, build in cases():
            if args.only.lower() not in name.lower():
                continue
            data = build()
            size = len(data) if isinstance(data, bytes) else np.asarray(data).nbytes
            if isinstance(data, bytes) and size > UPLOAD_LIMIT:
                raise SystemExit(f"{name}: {size:,} bytes, more than the upload limit")
            cpu, wall, outcome = [], [], ""
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                outcome = run_path(path, data)
                cpu.append(time.process_time() - c)
                wall.append(time.perf_counter() - t)
            worst = max(worst, max(cpu))
            rows.append((name, path, size, max(cpu), max(wall), outcome))
            print(f"{max(cpu):7.3f} s CPU {max(wall):7.3f} s wall  {name}", file=sys.stderr)

    print(f"\nPreprocessing time per hostile input on one thread (cv2.setNumThreads(1)): CPU seconds"
          f" (the work) and wall seconds (with this machine's load), slowest of {args.repeat} runs;"
          f" target <= {TARGET_SECONDS} s of CPU\n")
    print("| input | path | bytes | CPU s | wall s | outcome |")
    print("|---|---|---:|---:|---:|---|")
    for name, path, size, cpu_s, wall_s, outcome in rows:
        print(f"| {name} | {path} | {size:,} | {cpu_s:.3f} | {wall_s:.3f} | {outcome.replace('|', '/')} |")
    print(f"\nworst: {worst:.3f} s of CPU ({'within' if worst <= TARGET_SECONDS else 'OVER'} the target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
