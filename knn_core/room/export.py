"""A class's labelled drawings as files other tools read: MNIST's IDX format, and a PNG tree.

Both carry the class's set as MNIST's *test* split (t10k-*, testing/<digit>/): it is what a class
set is for, measuring how a classifier trained on MNIST reads this class's handwriting. There are
no training files; `load_mnist(folder, train_from="bundled")` reads an unpacked export together
with the bundled MNIST training digits. Drawings without a label are left out (they cannot be scored).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterable

import numpy as np

from .errors import RoomError
from .store import Drawing

IDX_IMAGES = "t10k-images-idx3-ubyte.gz"
IDX_LABELS = "t10k-labels-idx1-ubyte.gz"
PNG_SPLIT = "testing"  # the "MNIST as PNG" layout: training/<digit>/*.png and testing/<digit>/*.png


def labelled(items: Iterable[Drawing]) -> list[Drawing]:
    """The drawings that carry a label, oldest first; RoomError when there are none."""
    chosen = sorted((d for d in items if d.label is not None), key=lambda d: d.id)
    if not chosen:
        raise RoomError("No labelled drawings to export yet: set a prompt, or let students say which digit they drew")
    return chosen


def idx_zip(items: Iterable[Drawing]) -> bytes:
    """A zip of t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (big-endian IDX, as MNIST ships)."""
    chosen = labelled(items)
    n = len(chosen)
    images = np.stack([d.pixels for d in chosen]).astype(np.uint8)
    labels = np.array([d.label for d in chosen], dtype=np.uint8)
    image_file = (
        (0x00000803).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, 28, 28)) + images.tobytes()
    )
    label_file = (0x00000801).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # the members are gzipped already
        zf.writestr(IDX_IMAGES, gzip.compress(image_file, mtime=0))
        zf.writestr(IDX_LABELS, gzip.compress(label_file, mtime=0))
    return buf.getvalue()


def png_zip(items: Iterable[Drawing]) -> bytes:
    """A zip of testing/<label>/<drawing id>.png, each a 28x28 8-bit grayscale PNG."""
    import cv2  # imported here: only this export needs OpenCV

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for d in labelled(items):
            ok, png = cv2.imencode(".png", np.ascontiguousarray(d.pixels, dtype=np.uint8))
            if not ok:
                raise RoomError(f"Could not encode drawing {d.id} as PNG")
            zf.writestr(f"{PNG_SPLIT}/{d.label}/{d.id}.png", png.tobytes())
    return buf.getvalue()
