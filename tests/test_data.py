"""knn_core.data: every source format round-trips to the same uint8 arrays; bad input -> DataError."""
from __future__ import annotations

import gzip
import pickle
import re
import urllib.error

import cv2
import numpy as np
import pytest

from knn_core.data import BUNDLED_DIR, Dataset, load_mnist
from knn_core.errors import DataError

N_TRAIN, N_TEST = 50, 20


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def bundled(mnist) -> Dataset:
    return mnist


@pytest.fixture(scope="module")
def small(bundled):
    """The first 50 train / 20 test bundled digits: (train_x, train_y, test_x, test_y)."""
    return (bundled.train_images[:N_TRAIN], bundled.train_labels[:N_TRAIN],
            bundled.test_images[:N_TEST], bundled.test_labels[:N_TEST])


def idx_bytes(a: np.ndarray) -> bytes:
    """Serialize a uint8 array as IDX: magic 0x0000 08 <ndim>, big-endian dims, data."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    header = bytes([0, 0, 8, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + a.tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


NAMES = {
    "canonical": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "dotted": ("train-images.idx3-ubyte", "train-labels.idx1-ubyte",
               "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
    "dat": ("train-images.dat", "train-labels.dat", "test-images.dat", "test-labels.dat"),
    "magic_only": ("train.1", "train.2", "test.1", "test.2"),  # kind from the magic number alone
}


def write_idx_folder(folder, small, names=NAMES["canonical"], gz=True, suffix=".gz"):
    folder.mkdir(exist_ok=True)
    for name, a in zip(names, small):
        write(folder / (name + (suffix if gz else "")), idx_bytes(a), gz)
    return folder


def write_png_tree(root, small):
    for split, images, labels in (("train", small[0], small[1]), ("test", small[2], small[3])):
        for i, (img, label) in enumerate(zip(images, labels)):
            d = root / split / str(label)
            d.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(d / f"{i}.png"), img)  # unpadded names: natural sort must restore order
    return root


def assert_same(ds: Dataset, small, n_val: int):
    for got, want in zip((ds.train_images, ds.train_labels, ds.test_images, ds.test_labels), small):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    assert ds.n_val == n_val
    np.testing.assert_array_equal(ds.val_images, small[0][N_TRAIN - n_val:])
    np.testing.assert_array_equal(ds.fit_labels, small[1][: N_TRAIN - n_val])


def course_tuple(small, n_val=10, scale=255.0):
    tx, ty, sx, sy = small
    rows = [(x.reshape(len(x), -1) / scale).astype(np.float32) for x in (tx[:-n_val], tx[-n_val:], sx)]
    return rows[0], ty[:-n_val], rows[1], ty[-n_val:], rows[2], sy


# --------------------------------------------------------------------------- bundled data


def test_bundled_shapes_labels_and_split(bundled):
    assert bundled.train_images.shape == (60000, 28, 28)
    assert bundled.test_images.shape == (10000, 28, 28)
    assert bundled.train_labels.shape == (60000,) and bundled.test_labels.shape == (10000,)
    for a in (bundled.train_images, bundled.train_labels, bundled.test_images, bundled.test_labels):
        assert a.dtype == np.uint8 and not a.flags.writeable
    assert np.bincount(bundled.train_labels, minlength=10).sum() == 60000
    assert np.bincount(bundled.test_labels, minlength=10).sum() == 10000
    assert bundled.train_labels.max() <= 9 and bundled.test_labels.max() <= 9
    assert bundled.train_labels[0] == 5 and bundled.test_labels[0] == 7
    assert bundled.train_images.max() == 255 and bundled.train_images[0, 0, 0] == 0  # ink high
    assert bundled.n_val == 10000 and bundled.source == "bundled"
    np.testing.assert_array_equal(bundled.val_images, bundled.train_images[50000:])
    np.testing.assert_array_equal(bundled.val_labels, bundled.train_labels[50000:])
    assert len(bundled.fit_images) == len(bundled.fit_labels) == 50000


def test_fingerprint_is_stable_and_content_sensitive(bundled, small):
    assert re.fullmatch(r"[0-9a-f]{16}", bundled.fingerprint)
    assert bundled.fingerprint == load_mnist().fingerprint
    a = Dataset(*small, n_val=10)
    changed = small[0].copy()
    changed[0, 0, 0] ^= 1
    assert a.fingerprint != Dataset(changed, *small[1:], n_val=10).fingerprint
    assert a.fingerprint != Dataset(*small, n_val=5).fingerprint


def test_n_val_override_and_validation(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    assert load_mnist(folder, n_val=5).n_val == 5
    with pytest.raises(ValueError, match="n_val"):
        load_mnist(folder, n_val=N_TRAIN)


# --------------------------------------------------------------------------- every format round-trips


@pytest.mark.parametrize("names,gz,suffix", [
    (NAMES["canonical"], True, ".gz"),
    (NAMES["canonical"], False, ""),
    (NAMES["dotted"], False, ""),
    (NAMES["dat"], False, ""),
    (NAMES["dat"], True, ""),          # gzip found by its magic bytes, not the suffix
    (NAMES["magic_only"], False, ""),
], ids=["gz", "plain", "dotted", "dat", "dat-gzipped", "magic-only"])
def test_idx_folder_round_trip(tmp_path, small, names, gz, suffix):
    folder = write_idx_folder(tmp_path / "idx", small, names, gz, suffix)
    (folder / "README.txt").write_text("not data")  # stray files are ignored
    ds = load_mnist(folder)
    assert_same(ds, small, n_val=N_TRAIN // 6)
    assert ds.source == str(folder)


def test_png_tree_round_trip(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    (root / "train" / "3" / "notes.txt").write_text("ignored")
    assert_same(load_mnist(str(root)), small, n_val=N_TRAIN // 6)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_course_pickle_round_trip(tmp_path, small, gz):
    path = write(tmp_path / ("mnist_10000.pkl" + (".gz" if gz else "")),
                 pickle.dumps(course_tuple(small), protocol=2), gz)
    ds = load_mnist(path)
    assert_same(ds, small, n_val=10)
    assert ds.source == str(path)


@pytest.mark.parametrize("scale", [255.0, 256.0], ids=["x255", "x256"])
def test_classic_pickle_round_trip(tmp_path, small, scale):
    tx, ty, vx, vy, sx, sy = course_tuple(small, scale=scale)
    path = write(tmp_path / "mnist.pkl.gz", pickle.dumps(((tx, ty), (vx, vy), (sx, sy)), protocol=2), True)
    assert_same(load_mnist(path), small, n_val=10)


def test_float_pixels_in_0_255_are_rounded(tmp_path, small):
    tx, ty, vx, vy, sx, sy = course_tuple(small, scale=1.0)
    noisy = np.where(tx > 0, tx - 0.3, tx)  # off-grid floats still round to the same bytes
    path = write(tmp_path / "data.pkl", pickle.dumps((noisy, ty, vx, vy, sx, sy)))
    assert_same(load_mnist(path), small, n_val=10)


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    path = tmp_path / "nope"
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*no such file"):
        load_mnist(path)


def test_wrong_magic_number(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = write(folder / "train-images-idx3-ubyte.gz", idx_bytes(small[1]), gz=True)  # a labels file
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*wrong magic number 0x00000801"):
        load_mnist(folder)


@pytest.mark.parametrize("cut,problem", [(3, "truncated header"), (10, "truncated header"),
                                         (-5, "truncated data")])
def test_truncated_idx(tmp_path, small, cut, problem):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = write(folder / "train-images-idx3-ubyte.gz", idx_bytes(small[0])[:cut], gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*" + problem):
        load_mnist(folder)


def test_trailing_bytes(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(small[3]) + b"\0\0", gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*2 unexpected bytes"):
        load_mnist(folder)


def test_count_mismatch(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = write(folder / "train-labels-idx1-ubyte.gz", idx_bytes(small[1][:-1]), gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*49 labels but .* holds 50 images"):
        load_mnist(folder)


def test_label_outside_0_9(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    labels = small[3].copy()
    labels[4] = 12
    bad = write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*label 12 at index 4 is outside 0-9"):
        load_mnist(folder)


def test_idx_images_not_28x28(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = write(folder / "train-images-idx3-ubyte.gz", idx_bytes(small[0][:, :27, :]), gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*images are 27x28, expected 28x28"):
        load_mnist(folder)


def test_missing_idx_file(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=re.escape(str(folder)) + ".*no test labels file"):
        load_mnist(folder)


def test_corrupt_gzip(tmp_path, small):
    folder = write_idx_folder(tmp_path / "idx", small)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*corrupt or truncated gzip"):
        load_mnist(folder)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + ".*folder is empty"):
        load_mnist(tmp_path)


def test_folder_of_unknown_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + ".*unknown format"):
        load_mnist(tmp_path)


def test_png_tree_without_pngs(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    for p in (root / "test").rglob("*.png"):
        p.unlink()
    with pytest.raises(DataError, match=re.escape(str(root / "test")) + ".*no PNG files"):
        load_mnist(root)


def test_png_wrong_size(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    bad = next((root / "train").rglob("*.png"))
    cv2.imwrite(str(bad), np.zeros((32, 28), np.uint8))
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*image is 32x28, expected 28x28"):
        load_mnist(root)


def test_png_colour_refused(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    bad = next((root / "test").rglob("*.png"))
    img = np.zeros((28, 28, 3), np.uint8)
    img[..., 2] = 200
    cv2.imwrite(str(bad), img)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*colour image"):
        load_mnist(root)


def test_png_unreadable(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    bad = next((root / "train").rglob("*.png"))
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*not a readable PNG"):
        load_mnist(root)


def test_png_label_folder_outside_0_9(tmp_path, small):
    root = write_png_tree(tmp_path / "png", small)
    (root / "train" / "10").mkdir()
    with pytest.raises(DataError, match=re.escape(str(root / "train" / "10")) + ".*outside 0-9"):
        load_mnist(root)


def test_unknown_file_format(tmp_path):
    bad = write(tmp_path / "digits.csv", b"label,pixel0\n5,0\n")
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*unknown format"):
        load_mnist(bad)


def test_single_idx_file(tmp_path, small):
    bad = write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(small[0]), gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*single IDX file"):
        load_mnist(bad)


def test_unreadable_pickle(tmp_path, small):
    bad = write(tmp_path / "mnist.pkl", pickle.dumps(course_tuple(small), protocol=2)[:-40])
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*not a readable pickle"):
        load_mnist(bad)


def test_pickle_wrong_structure(tmp_path):
    bad = write(tmp_path / "mnist.pkl.gz", pickle.dumps({"train": 1}), gz=True)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*wrong pickle structure, a dict"):
        load_mnist(bad)


def test_pickle_wrong_shapes(tmp_path, small):
    tx, ty, vx, vy, sx, sy = course_tuple(small)
    bad = write(tmp_path / "mnist.pkl", pickle.dumps((tx[:, :700], ty, vx, vy, sx, sy)))
    with pytest.raises(DataError, match=re.escape(str(bad)) + r" train images: images of shape \(40, 700\)"):
        load_mnist(bad)


def test_pickle_labels_outside_0_9(tmp_path, small):
    tx, ty, vx, vy, sx, sy = course_tuple(small)
    vy = vy.astype(np.float64)
    vy[3] = 10.0
    bad = write(tmp_path / "mnist.pkl", pickle.dumps((tx, ty, vx, vy, sx, sy)))
    with pytest.raises(DataError, match=re.escape(str(bad)) + r" val labels: label 10\.0 at index 3 is outside 0-9"):
        load_mnist(bad)


def test_pixel_values_out_of_range(tmp_path, small):
    tx, ty, vx, vy, sx, sy = course_tuple(small)
    bad = write(tmp_path / "mnist.pkl", pickle.dumps((tx, ty, vx, vy, sx - 0.5, sy)))
    with pytest.raises(DataError, match=re.escape(str(bad)) + r" test images: pixel values -0\.5\.\..*expected \[0, 1\]"):
        load_mnist(bad)


# --------------------------------------------------------------------------- OpenML


@pytest.mark.parametrize("exc", [urllib.error.URLError("no route to host"), OSError("Network is unreachable")])
def test_openml_offline(monkeypatch, exc):
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise exc

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(DataError, match="OpenML mnist_784: the network is unavailable.*bundled"):
        load_mnist("openml")


def test_bundled_dir_is_the_default_source():
    assert (BUNDLED_DIR / "train-images-idx3-ubyte.gz").is_file()
