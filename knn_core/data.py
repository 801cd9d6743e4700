"""Every MNIST source -> one `Dataset`.

The bundled IDX files in ``assets/mnist`` are the default, so nothing here
touches the network unless a caller asks for OpenML explicitly.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "mnist"
DEFAULT_N_VAL = 10_000


@dataclass(frozen=True)
class Dataset:
    """MNIST as uint8 arrays: images (N, 28, 28) with ink high, labels (N,).

    The validation split is the last ``n_val`` training digits (the classic
    split: MNIST's own ``mnist.pkl.gz`` validation set is exactly those).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    n_val: int = DEFAULT_N_VAL
    source: str = "bundled"
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    @property
    def fit_images(self) -> np.ndarray:
        """Training digits without the validation split (for choosing k)."""
        return self.train_images[: len(self.train_images) - self.n_val]

    @property
    def fit_labels(self) -> np.ndarray:
        return self.train_labels[: len(self.train_labels) - self.n_val]

    @property
    def val_images(self) -> np.ndarray:
        return self.train_images[len(self.train_images) - self.n_val :]

    @property
    def val_labels(self) -> np.ndarray:
        return self.train_labels[len(self.train_labels) - self.n_val :]

    @property
    def fingerprint(self) -> str:
        """A short hash of the contents, used as the cache key of results."""
        if not self._fingerprint:
            h = hashlib.sha256()
            for a in (self.train_images, self.train_labels, self.test_images, self.test_labels):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).tobytes())
            h.update(str(self.n_val).encode())
            self._fingerprint.append(h.hexdigest()[:16])
        return self._fingerprint[0]


def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: wrong magic number, not an IDX file of unsigned bytes")
    ndim = raw[3]
    if ndim != expected_ndim:
        raise DataError(f"{path}: expected {expected_ndim} dimensions, the header says {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(shape))
    if len(raw) - header < n:
        raise DataError(f"{path}: truncated: {len(raw) - header} bytes of data, the header promises {n}")
    return np.frombuffer(raw, dtype=np.uint8, count=n, offset=header).reshape(shape)


def load_mnist(source=None) -> Dataset:
    """Load MNIST; with no argument the bundled copy, offline."""
    root = BUNDLED_DIR if source is None else Path(source)
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        imgs = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz", 3)
        labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", 1)
        arrays[split] = (imgs, labels)
    return Dataset(arrays["train"][0], arrays["train"][1], arrays["test"][0], arrays["test"][1],
                   source=str(root) if source is not None else "bundled")
