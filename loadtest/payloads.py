"""What the load test sends: real MNIST test digits as canvas drawings, and garbage."""
from __future__ import annotations

import cv2
import numpy as np

from knn_core.testing import huge_png, png_header_only  # noqa: F401  (garbage the load test sends)

CANVAS = 280


def canvas_png(digit28: np.ndarray, size: int = 200, at: tuple[int, int] = (40, 40)) -> bytes:
    """An MNIST digit blown up onto a black 280 x 280 RGBA canvas, as the canvas' PNG."""
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    rgba[:, :, 3] = 255
    big = cv2.resize(np.asarray(digit28, np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
    y, x = at
    rgba[y:y + size, x:x + size, :3] = big[:, :, None]
    ok, buf = cv2.imencode(".png", rgba)
    assert ok
    return buf.tobytes()


def drawings(n: int = 200, seed: int = 0) -> list[tuple[bytes, int]]:
    """n test digits, varied in size and position, as (canvas PNG, true label)."""
    from knn_core import load_mnist

    ds = load_mnist()
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(ds.test_labels), n, replace=False):
        size = int(rng.integers(150, 230))
        y, x = (int(v) for v in rng.integers(0, CANVAS - size, 2))
        out.append((canvas_png(ds.test_images[i], size, (y, x)), int(ds.test_labels[i])))
    return out


NOT_AN_IMAGE = b"this is not an image, just a few words of text\n" * 20
BLANK_CANVAS = canvas_png(np.zeros((28, 28), np.uint8))  # the canvas after its 🗑 (clear): black, no ink
