"""Every MNIST source -> one `Dataset`.

The bundled IDX files in ``assets/mnist`` are the default, so nothing here
touches the network unless a caller asks for OpenML explicitly. Every format
goes through the same two validators (`_to_uint8_images`, `_check_labels`),
so all sources come out as the same uint8 arrays or fail with a `DataError`
that names the file and the problem.
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import DataError, ParameterError


def bundled_path(*parts: str) -> Path:
    """A file or folder shipped with knn_core, e.g. ``bundled_path("mnist")``.

    They live in the repo's ``assets/`` folder. An installed copy carries them
    inside the package as ``knn_core/_bundled/`` (pyproject.toml maps that
    package onto ``assets/``), found through importlib.resources so it works
    from any folder; a checkout that is not installed reads ``assets/`` beside
    the package.
    """
    root = resources.files("knn_core").joinpath("_bundled")
    if not root.is_dir():
        return Path(__file__).resolve().parent.parent.joinpath("assets", *parts)
    return Path(str(root)).joinpath(*parts)


BUNDLED_DIR = bundled_path("mnist")
DEFAULT_N_VAL = 10_000
IMAGE_SHAPE = (28, 28)

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3 or 1 dims
_CANONICAL = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".pck", ".p"}
_PNG_SPLIT_DIRS = {"train": ("train", "training"), "test": ("test", "testing")}  # ours, and "MNIST as PNG"
_TEST_ONLY_HINT = (
    "a folder holding only a test split (such as a class room's export) loads with "
    "load_mnist(folder, train_from='bundled')"
)
_PROGRESS_MIN_FILES = 1_000  # below this a progress bar is only noise


@dataclass(frozen=True)
class Dataset:
    """MNIST as uint8 arrays: images (N, 28, 28) with ink high, labels (N,).

    The validation split is the last ``n_val`` training digits (the classic
    split: MNIST's own ``mnist.pkl.gz`` validation set is exactly those).
    Arrays from `load_mnist` are read-only, so the cached fingerprint stays
    true to the contents.
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
        """A short hash of all the contents, used as the cache key of results.

        SHA-256 runs on the CPU's SHA extensions where present (faster than
        blake2b there); hashing the arrays' buffers avoids a 55 MB copy.
        """
        if not self._fingerprint:
            h = hashlib.sha256()
            for a in (self.train_images, self.train_labels, self.test_images, self.test_labels):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).data.cast("B"))
            h.update(str(self.n_val).encode())
            self._fingerprint.append(h.hexdigest()[:16])
        return self._fingerprint[0]


# --------------------------------------------------------------------------- entry point


def load_mnist(source=None, *, n_val: int | None = None, train_from=None) -> Dataset:
    """Load MNIST from `source`, auto-detecting the format.

    ``None`` (default): the bundled IDX files, offline. ``"openml"``: OpenML
    ``mnist_784`` (network). A folder: IDX files (gzipped or not, canonical or
    renamed names, recognised by magic number) or a PNG tree
    ``train/<digit>/*.png`` + ``test/<digit>/*.png`` (or ``training/`` +
    ``testing/``, the "MNIST as PNG" layout). A file: a pickle
    (optionally gzipped), either ``mnist.pkl.gz``'s
    ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` or the
    course format ``(trainData, trainLabels, valData, valLabels, testData,
    testLabels)``; train and validation are concatenated and ``n_val`` is the
    validation length.

    Pickles are only ever read from a path the caller names: unpickling runs
    arbitrary code, so never pass a file a web user uploaded.

    ``n_val`` overrides the validation size; by default it is the pickle's own
    split, else 10,000 (1/6 of the training digits for smaller sets).

    ``train_from``: read only the test split of the folder `source` and take
    the training split from this other source (``"bundled"``, or anything
    `load_mnist` reads). A class room's export holds only a test split, the
    class's own digits: ``load_mnist(folder, train_from="bundled")`` scores
    MNIST-trained classifiers on them.
    Raises `DataError` naming the file and what is wrong with it.
    """
    if train_from is not None:
        return _with_training_from(source, train_from, n_val)
    if source is None:
        return _load_idx_folder(BUNDLED_DIR, n_val, "bundled")
    if isinstance(source, str) and source.strip().lower() == "openml":
        return _load_openml(n_val)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_folder(path, n_val)
    return _load_file(path, n_val)


def _with_training_from(source, train_from, n_val: int | None) -> Dataset:
    """The test split of the folder `source` with the training split of `train_from`."""
    path = Path(source).expanduser() if isinstance(source, (str, Path)) else None
    if path is None or not path.is_dir():
        raise DataError(f"{source}: train_from needs a folder holding a test split (IDX files or test/<digit>/ PNGs)")
    test = _read_folder(path, ("test",))["test"]
    train = load_mnist(None if train_from == "bundled" else train_from)
    return _make_dataset(
        (train.train_images, train.train_labels), test, train.n_val if n_val is None else n_val,
        f"{path} (test) + {train.source} (train)",
    )


# --------------------------------------------------------------------------- validators


def _to_uint8_images(array, name: str) -> np.ndarray:
    """Validate and convert any image array to uint8 (N, 28, 28).

    Accepts (N, 28, 28) or flat (N, 784) rows; uint8 passes untouched, other
    integers must lie in 0-255, floats in [0, 1] or [0, 255]. Anything else
    is an error rather than a silent rescale, because a wrong scale makes
    every distance meaningless.
    """
    try:
        a = np.asarray(array)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{name}: not an array of images ({exc})") from exc
    if a.dtype.kind not in "uif":
        raise DataError(f"{name}: images hold {a.dtype} values, expected numbers")
    if a.ndim == 2 and a.shape[1] == IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        a = a.reshape(-1, *IMAGE_SHAPE)
    if a.ndim != 3 or a.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{name}: images of shape {a.shape}, expected 28x28 digits, "
            "as (N, 28, 28) or flat (N, 784)"
        )
    if len(a) == 0:
        raise DataError(f"{name}: holds no images")
    if a.dtype == np.uint8:
        return a
    lo: float  # the pixel range: whole numbers for integer arrays
    hi: float
    if a.dtype.kind in "ui":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{name}: pixel values {lo}..{hi}, expected 0..255")
        return a.astype(np.uint8)
    if not np.isfinite(a).all():
        raise DataError(f"{name}: pixel values include NaN or infinity")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1 + 1e-6:
        scale = _unit_scale(a)
    elif lo >= 0 and hi <= 255 + 1e-3:
        scale = 1.0
    else:
        raise DataError(f"{name}: pixel values {lo:g}..{hi:g}, expected [0, 1] or [0, 255]")
    return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)


def _unit_scale(a: np.ndarray) -> float:
    """255 or 256: whichever turns the [0, 1] floats back into whole numbers.

    Most copies store pixel/255, but deeplearning.net's ``mnist.pkl.gz`` is
    believed to store pixel/256 (max 0.99609375); rint(x*255) would then be
    off by one on bright pixels, so pick the exact inverse when there is one.
    """
    for scale in (255.0, 256.0):
        y = a * scale
        if float(np.abs(y - np.rint(y)).max()) < 1e-3:
            return scale
    return 255.0


def _check_labels(labels, name: str, n_images: int, images_name: str) -> np.ndarray:
    """Validate labels against their images: 1-D, same count, whole numbers 0-9 -> uint8."""
    try:
        a = np.asarray(labels)
    except Exception as exc:
        raise DataError(f"{name}: not an array of labels ({exc})") from exc
    if a.dtype.kind not in "uif":
        raise DataError(f"{name}: labels hold {a.dtype} values, expected digits 0-9")
    if a.ndim != 1:
        raise DataError(f"{name}: labels of shape {a.shape}, expected one label per image (N,)")
    if len(a) != n_images:
        raise DataError(f"{name}: {len(a)} labels but {images_name} holds {n_images} images")
    bad = (a < 0) | (a > 9)
    if a.dtype.kind == "f":
        bad |= a != np.rint(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{name}: label {a[i].item()!r} at index {i} is outside 0-9")
    return a.astype(np.uint8, copy=False)


def _make_dataset(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], n_val: int | None,
                  source: str) -> Dataset:
    """Build the read-only `Dataset` from validated (images, labels) pairs."""
    n_train = len(train[0])
    if n_val is None:
        n_val = min(DEFAULT_N_VAL, n_train // 6)
    elif not 0 <= n_val < n_train:
        raise ParameterError(f"n_val={n_val} must leave at least one of {n_train} training digits to fit on")
    arrays = (*train, *test)
    for a in arrays:
        a.flags.writeable = False
    return Dataset(*arrays, n_val=int(n_val), source=source)


# --------------------------------------------------------------------------- bytes and IDX


def _read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({exc})") from exc


def _peek_kind(path: Path) -> str | None:
    """'images' / 'labels' from the IDX magic number, None when not IDX or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:2] == _GZIP_MAGIC:
            with gzip.open(path, "rb") as f:
                head = f.read(4)
    except (OSError, EOFError, zlib.error):
        return None
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    return next((kind for kind, m in _IDX_MAGIC.items() if m == magic), None)


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """Parse one IDX file of unsigned bytes, checking magic, header, size and 28x28."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes, an IDX header needs at least 8)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[kind]:
        other = next((k for k, m in _IDX_MAGIC.items() if m == magic), None)
        what = f"an IDX {other} file" if other else "not an IDX file of unsigned bytes"
        raise DataError(
            f"{path}: wrong magic number 0x{magic:08x} ({what}), expected 0x{_IDX_MAGIC[kind]:08x} for {kind}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes, the header needs {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if kind == "images" and shape[1:] != IMAGE_SHAPE:
        dims = "x".join(map(str, shape[1:]))
        raise DataError(f"{path}: images are {dims}, expected 28x28")
    n = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header < n:
        raise DataError(f"{path}: truncated data: {len(raw) - header} bytes, the header promises {n}")
    if len(raw) - header > n:
        raise DataError(f"{path}: {len(raw) - header - n} unexpected bytes after the data")
    return np.frombuffer(raw, dtype=np.uint8, count=n, offset=header).reshape(shape)


def _split_of(name: str) -> str | None:
    """'train' / 'test' from a file name; None when it says neither (or both)."""
    is_train = "train" in name
    is_test = "t10k" in name or "test" in name
    return None if is_train == is_test else ("train" if is_train else "test")


def _find_idx_files(root: Path) -> dict[tuple[str, str], list[Path]]:
    """Candidate IDX files per (split, kind), best first.

    The split comes from the name; the kind from the name when it says so
    (so a mislabelled file fails loudly on its magic number), else from the
    magic number, which is what makes ``train.dat``-style renames work.
    """
    found: dict[tuple[str, str], list[Path]] = {}
    for p in root.iterdir():
        if not p.is_file():
            continue
        base = p.name.lower().removesuffix(".gz")
        split = _split_of(base)
        if split is None:
            continue
        kind: str | None
        if "image" in base or "idx3" in base:
            kind = "images"
        elif "label" in base or "idx1" in base:
            kind = "labels"
        else:
            kind = _peek_kind(p)
        if kind is not None:
            found.setdefault((split, kind), []).append(p)
    for (split, kind), paths in found.items():
        canonical = _CANONICAL[split, kind]
        names = {canonical, canonical.replace("-idx", ".idx")}
        # canonical names first, uncompressed (quicker) before .gz, then by name
        paths.sort(key=lambda p: (p.name.removesuffix(".gz") not in names, p.name.endswith(".gz"), p.name))
    return found


def _load_idx_folder(root: Path, n_val: int | None, source: str) -> Dataset:
    pairs = _read_idx_splits(root, ("train", "test"))
    return _make_dataset(pairs["train"], pairs["test"], n_val, source)


def _read_idx_splits(root: Path, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(images, labels) of each split from the IDX files in `root`, validated."""
    found = _find_idx_files(root) if root.is_dir() else {}
    pairs = {}
    for split in splits:
        arrays = {}
        for kind in ("images", "labels"):
            if (split, kind) not in found:
                canonical = _CANONICAL[split, kind]
                test_only = split == "train" and any(s == "test" for s, _ in found)
                raise DataError(
                    f"{root}: no {split} {kind} file (expected {canonical}[.gz], "
                    f"or a renamed IDX file such as {split}-{kind}.dat)"
                    + (f"; {_TEST_ONLY_HINT}" if test_only else "")
                )
            path = found[split, kind][0]
            arrays[kind] = (path, _read_idx(path, kind))
        (ipath, images), (lpath, labels) = arrays["images"], arrays["labels"]
        images = _to_uint8_images(images, str(ipath))
        pairs[split] = (images, _check_labels(labels, str(lpath), len(images), str(ipath)))
    return pairs


# --------------------------------------------------------------------------- folders and PNG trees


def _load_folder(root: Path, n_val: int | None) -> Dataset:
    pairs = _read_folder(root, ("train", "test"))
    return _make_dataset(pairs["train"], pairs["test"], n_val, str(root))


def _read_folder(root: Path, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """IDX files if the folder holds any, else a PNG tree, else a clear error."""
    if _find_idx_files(root):
        return _read_idx_splits(root, splits)
    if any((root / name).is_dir() for names in _PNG_SPLIT_DIRS.values() for name in names):
        return _read_png_splits(root, splits)
    if not any(root.iterdir()):
        raise DataError(f"{root}: the folder is empty, no MNIST data in it")
    raise DataError(
        f"{root}: unknown format: no MNIST data found (expected IDX files such as "
        "train-images-idx3-ubyte[.gz], or PNGs in train/<digit>/ and test/<digit>/)"
    )


def _natural_key(name: str):
    """Sort '9.png' before '10.png', so index-named files keep MNIST's own order."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def _read_png(path: Path) -> np.ndarray:
    """One 28x28 8-bit grayscale PNG; colour is refused rather than guessed at."""
    import cv2  # imported here: only PNG trees need OpenCV

    try:
        buf = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode copes with non-ASCII paths
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise DataError(f"{path}: not a readable PNG image")
    if img.ndim == 3:
        colour, alpha = img[..., :3], img[..., 3:]
        grey = (colour == colour[..., :1]).all() and (alpha.size == 0 or (alpha == alpha.max()).all())
        if not grey:
            raise DataError(f"{path}: a colour image, expected 28x28 grayscale")
        img = img[..., 0]
    if img.shape != IMAGE_SHAPE:
        raise DataError(f"{path}: image is {img.shape[0]}x{img.shape[1]}, expected 28x28")
    if img.dtype != np.uint8:
        raise DataError(f"{path}: {img.dtype} pixels, expected an 8-bit grayscale PNG")
    return img


def _read_png_splits(root: Path, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``<root>/{train,test}/<digit>/*.png`` (or training/, testing/); files sorted by name across digits.

    Sorting by (natural) file name rather than by folder keeps index-named
    files in MNIST order, so the validation split is not all nines.
    """
    from tqdm import tqdm  # imported here: only PNG trees need it

    pairs = {}
    for split in splits:
        folder = next((root / name for name in _PNG_SPLIT_DIRS[split] if (root / name).is_dir()), None)
        if folder is None:
            test_only = split == "train" and any((root / name).is_dir() for name in _PNG_SPLIT_DIRS["test"])
            raise DataError(
                f"{root}: no {split}/ folder (a PNG tree needs train/<digit>/ and test/<digit>/)"
                + (f"; {_TEST_ONLY_HINT}" if test_only else "")
            )
        files = []
        for sub in folder.iterdir():
            if not sub.is_dir() or sub.name.startswith("."):
                continue
            if not re.fullmatch(r"[0-9]", sub.name):
                raise DataError(f"{sub}: folder name {sub.name!r} is a label outside 0-9")
            label = int(sub.name)
            files += [(p, label) for p in sub.iterdir() if p.is_file() and p.suffix.lower() == ".png"]
        if not files:
            raise DataError(f"{folder}: no PNG files (expected {split}/<digit>/*.png)")
        files.sort(key=lambda f: (_natural_key(f[0].name), f[1]))
        images = np.empty((len(files), *IMAGE_SHAPE), dtype=np.uint8)
        bar = tqdm(files, desc=f"Reading {split} PNGs", unit="img", leave=False,
                   disable=None if len(files) >= _PROGRESS_MIN_FILES else True)
        for i, (path, _) in enumerate(bar):
            images[i] = _read_png(path)
        images = _to_uint8_images(images, str(folder))
        labels = np.array([label for _, label in files], dtype=np.uint8)
        pairs[split] = (images, _check_labels(labels, str(folder), len(images), str(folder)))
    return pairs


# --------------------------------------------------------------------------- pickles


def _load_file(path: Path, n_val: int | None) -> Dataset:
    """A single file can only be a pickle; say so plainly for anything else."""
    raw = _read_bytes(path)
    base = path.name.lower().removesuffix(".gz")
    if not raw:
        raise DataError(f"{path}: the file is empty")
    if raw[:3] == b"\x00\x00\x08":
        raise DataError(f"{path}: a single IDX file; pass the folder holding all four MNIST IDX files")
    if raw[:1] == b"\x80" or Path(base).suffix in _PICKLE_SUFFIXES:
        return _load_pickle(path, raw, n_val)
    raise DataError(
        f"{path}: unknown format (expected a pickle such as mnist.pkl.gz, "
        "or a folder of IDX files or PNGs)"
    )


def _load_pickle(path: Path, raw: bytes, n_val: int | None) -> Dataset:
    """Both MNIST pickle layouts; latin1 decodes the Python 2 era ``mnist.pkl.gz``.

    Only called on paths the caller named (see `load_mnist`): unpickling runs
    arbitrary code.
    """
    try:
        obj = pickle.loads(raw, encoding="latin1")
    except Exception as exc:  # unpickling can raise nearly anything
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, (tuple, list)) and len(obj) == 6:
        parts = {"train": obj[0:2], "val": obj[2:4], "test": obj[4:6]}
    elif (isinstance(obj, (tuple, list)) and len(obj) == 3
          and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in obj)):
        parts = dict(zip(("train", "val", "test"), obj))
    else:
        size = f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else ""
        raise DataError(
            f"{path}: wrong pickle structure, a {type(obj).__name__}{size}; expected "
            "((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) "
            "or (trainData, trainLabels, valData, valLabels, testData, testLabels)"
        )
    checked = {}
    for part, (x, y) in parts.items():
        images = _to_uint8_images(x, f"{path} {part} images")
        checked[part] = (images, _check_labels(y, f"{path} {part} labels", len(images), f"{path} {part} images"))
    (tx, ty), (vx, vy) = checked["train"], checked["val"]
    train = (np.concatenate([tx, vx]), np.concatenate([ty, vy]))
    return _make_dataset(train, checked["test"], len(vx) if n_val is None else n_val, str(path))


# --------------------------------------------------------------------------- OpenML


def _load_openml(n_val: int | None) -> Dataset:
    """OpenML ``mnist_784``: rows 0-59,999 train, the last 10,000 test (MNIST's own order)."""
    hint = "load_mnist() with no argument reads the bundled copy offline (the default)"
    try:
        from sklearn.datasets import fetch_openml  # imported here: slow, and only this path needs it

        bunch = fetch_openml("mnist_784", version=1, as_frame=False)
    except OSError as exc:  # URLError, timeouts and DNS failures are all OSErrors
        raise DataError(f"OpenML mnist_784: the network is unavailable ({exc}); {hint}") from exc
    except Exception as exc:
        raise DataError(f"OpenML mnist_784: download failed ({type(exc).__name__}: {exc}); {hint}") from exc
    name = "OpenML mnist_784"
    images = _to_uint8_images(bunch.data, f"{name} data")
    if len(images) != 70_000:
        raise DataError(f"{name} data: {len(images)} images, expected 70000 (60000 train + 10000 test)")
    try:
        targets = np.asarray(bunch.target).astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} target: labels are not digits ({exc})") from exc
    labels = _check_labels(targets, f"{name} target", len(images), f"{name} data")
    train = (images[:60_000], labels[:60_000])
    test = (images[60_000:], labels[60_000:])
    return _make_dataset(train, test, n_val, "openml")


def stratified_subset(labels, n: int, random_state: int = 0) -> np.ndarray:
    """Sorted indices of n items with the class proportions of `labels` (all of them when n >= len)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ParameterError(f"a training subset needs at least 1 digit; got {n}")
    from sklearn.model_selection import train_test_split

    if n < len(np.unique(labels)):
        rng = np.random.default_rng(random_state)
        return np.sort(rng.choice(len(labels), n, replace=False))
    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=random_state)
    return np.sort(idx)
