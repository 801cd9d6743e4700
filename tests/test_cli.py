"""knn_core.cli (knn-lab, python -m knn_core): evaluate, sweep, predict, suspicious; one-line errors with
exit status 2 for knn_core's own errors, a traceback for anything else (a bug)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import knn_core.cli
import knn_core.data
from knn_core import KNNClassifier
from knn_core.cache import CACHE_ENV
from knn_core.cli import main
from knn_core.data import stratified_subset
from knn_core.errors import DataError, EmptyDrawingError, KnnLabError, ParameterError
from knn_core.evaluate import choose_k
from knn_core.lists import find_neighbors, neighbor_lists
from knn_core.methods import PRESETS

ROOT = Path(__file__).resolve().parent.parent
_real_load_mnist = knn_core.data.load_mnist
pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, mnist):
    """A fresh cache folder per test; the bundled data set is the session's (read once)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    def load_mnist(source=None, **kw):
        if source is None and not kw:
            return mnist
        return _real_load_mnist(source, **kw)

    monkeypatch.setattr(knn_core.data, "load_mnist", load_mnist)


@pytest.fixture(scope="module")
def ds(mnist):
    return mnist


def run(capsys, *argv):
    """main(argv) in this process: (exit status, stdout, stderr)."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse errors, and predict's failed files
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def error_lines(err):
    """stderr without tqdm's progress bars (drawn with carriage returns)."""
    return [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "digit/s" not in ln and "it/s" not in ln]


# --------------------------------------------------------------------------- evaluate


def test_evaluate_prints_accuracy_confusion_and_report(capsys, ds):
    status, out, err = run(capsys, "evaluate", "--train-size", "2000")
    assert status == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[0] == "kNN k=5 metric=euclidean weights=uniform tie-break=smallest train=2000 test=10000"
    keep = stratified_subset(ds.train_labels, 2000)
    direct = find_neighbors(ds.train_images[keep], ds.train_labels[keep], ds.test_images, ds.test_labels,
                            k_max=5, use_cache=False).accuracy(5)
    acc = re.search(r"^accuracy: (\d\.\d{4})  \(test error (\d+\.\d\d)%\)$", out, re.M)
    assert acc, out
    assert acc.group(1) == f"{direct:.4f}"
    assert acc.group(2) == f"{100 * (1 - direct):.2f}"
    # the confusion matrix: 10 rows of 10 counts, 10,000 in all, its diagonal the accuracy
    start = lines.index("confusion matrix (rows: true label, columns: predicted)")
    assert lines[start + 1].split() == ["true\\pred", *map(str, range(10))]
    conf = np.array([[int(v) for v in ln.split()[1:]] for ln in lines[start + 2 : start + 12]])
    assert [ln.split()[0] for ln in lines[start + 2 : start + 12]] == [str(c) for c in range(10)]
    assert conf.shape == (10, 10) and conf.sum() == 10000
    assert f"{np.trace(conf) / 10000:.4f}" == acc.group(1)
    np.testing.assert_array_equal(conf.sum(1), np.bincount(ds.test_labels))
    # the per-class report: precision / recall / f1 / support for each digit
    start = lines.index("per-class report")
    assert lines[start + 1].split() == ["class", "precision", "recall", "f1", "support"]
    rows = [ln.split() for ln in lines[start + 2 : start + 12]]
    assert [r[0] for r in rows] == [str(c) for c in range(10)]
    assert [int(r[4]) for r in rows] == np.bincount(ds.test_labels).tolist()
    recall = [float(r[2]) for r in rows]
    np.testing.assert_allclose(recall, np.diag(conf) / conf.sum(1), atol=5e-5)
    assert len(lines) == start + 12


def test_evaluate_vote_options(capsys, ds):
    status, out, _ = run(capsys, "evaluate", "--train-size", "300", "--k", "4", "--weights", "distance",
                         "--tie-break", "nearest")
    assert status == 0
    assert out.splitlines()[0] == "kNN k=4 metric=euclidean weights=distance tie-break=nearest train=300 test=10000"
    keep = stratified_subset(ds.train_labels, 300)
    clf = KNNClassifier(4, weights="distance", tie_break="nearest")
    acc = np.mean(clf.fit(ds.train_images[keep], ds.train_labels[keep]).predict(ds.test_images) == ds.test_labels)
    assert f"accuracy: {acc:.4f}" in out


# --------------------------------------------------------------------------- sweep


def test_sweep_on_validation(capsys, ds):
    status, out, err = run(capsys, "sweep", "--ks", "1,3,5", "--train-size", "2000", "--split", "val")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "accuracy against k on the val split (metric=euclidean, weights=uniform)"
    assert lines[1].split() == ["k", "accuracy"]
    table = [ln.split() for ln in lines[2:5]]
    assert [r[0] for r in table] == ["1", "3", "5"]
    keep = stratified_subset(ds.fit_labels, 2000)
    val = find_neighbors(ds.fit_images[keep], ds.fit_labels[keep], ds.val_images, ds.val_labels,
                         k_max=5, use_cache=False)
    val_acc = val.sweep([1, 3, 5])
    assert [r[1] for r in table] == [f"{a:.4f}" for a in val_acc]
    best = choose_k(val, [1, 3, 5])
    keep_t = stratified_subset(ds.train_labels, 2000)
    test_acc = KNNClassifier(best).fit(ds.train_images[keep_t], ds.train_labels[keep_t]).score(ds.test_images, ds.test_labels)
    assert lines[-1] == (f"k chosen on validation: {best} (validation accuracy {val_acc[[1, 3, 5].index(best)]:.4f}); "
                         f"test accuracy at k={best}: {test_acc:.4f}")


def test_sweep_over_training_set_sizes(capsys, ds):
    status, out, err = run(capsys, "sweep", "--train-sizes", "1000,500", "--ks", "1,3")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "test accuracy against training-set size (stratified subsets)"
    assert lines[1].split() == ["size", "k=1", "k=3"]
    assert len(lines) == 4
    for line, n in zip(lines[2:], (500, 1000)):  # sizes come out sorted
        keep = stratified_subset(ds.train_labels, n)
        clf = KNNClassifier(1).fit(ds.train_images[keep], ds.train_labels[keep])
        expected = [np.mean(clf.set_params(n_neighbors=k).predict(ds.test_images) == ds.test_labels) for k in (1, 3)]
        assert line.split() == [str(n), *(f"{a:.4f}" for a in expected)]


def test_sweep_leave_one_out_chooses_k_there(capsys, ds):
    status, out, err = run(capsys, "sweep", "--ks", "1,3,5", "--train-size", "1000", "--split", "loo")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "accuracy against k on the loo split (metric=euclidean, weights=uniform)"
    keep = stratified_subset(ds.train_labels, 1000)
    X, y = ds.train_images[keep], ds.train_labels[keep]
    loo = find_neighbors(X, y, k_max=5, use_cache=False)  # each training digit against the other 999
    loo_acc = loo.sweep([1, 3, 5])
    assert [ln.split() for ln in lines[2:5]] == [[str(k), f"{a:.4f}"] for k, a in zip((1, 3, 5), loo_acc)]
    best = choose_k(loo, [1, 3, 5])
    test_acc = KNNClassifier(best).fit(X, y).score(ds.test_images, ds.test_labels)
    assert lines[-1] == (f"k chosen on leave-one-out: {best} (leave-one-out accuracy "
                         f"{loo_acc[[1, 3, 5].index(best)]:.4f}); test accuracy at k={best}: {test_acc:.4f}")


def test_sweep_on_the_test_split_still_chooses_k_on_validation(capsys, ds):
    status, out, err = run(capsys, "sweep", "--ks", "1,4", "--train-size", "1000", "--split", "test")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "accuracy against k on the test split (metric=euclidean, weights=uniform)"
    keep = stratified_subset(ds.train_labels, 1000)
    clf = KNNClassifier(1).fit(ds.train_images[keep], ds.train_labels[keep])
    test_acc = [clf.set_params(n_neighbors=k).score(ds.test_images, ds.test_labels) for k in (1, 4)]
    assert [ln.split() for ln in lines[2:4]] == [[str(k), f"{a:.4f}"] for k, a in zip((1, 4), test_acc)]
    keep_v = stratified_subset(ds.fit_labels, 1000)
    val = find_neighbors(ds.fit_images[keep_v], ds.fit_labels[keep_v], ds.val_images, ds.val_labels, k_max=4,
                         use_cache=False)
    best = choose_k(val, [1, 4])
    assert lines[-1].startswith(f"k chosen on validation: {best} (validation accuracy ")
    assert lines[-1].endswith(f"test accuracy at k={best}: {test_acc[[1, 4].index(best)]:.4f}")


def test_sweep_with_a_method_uses_its_search_and_vote(capsys, ds):
    preset = PRESETS["deskew"]
    status, out, err = run(capsys, "sweep", "--method", "deskew", "--ks", "1,3,5", "--train-size", "1000",
                           "--split", "val")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"accuracy against k on the val split (method=deskew, weights={preset.weights})"
    val = neighbor_lists(ds, "deskew", "val", train_size=1000, k_max=5, use_cache=False)
    want = val.sweep([1, 3, 5], weights=preset.weights)
    assert [ln.split() for ln in lines[2:5]] == [[str(k), f"{a:.4f}"] for k, a in zip((1, 3, 5), want)]
    plain = find_neighbors(*(a[stratified_subset(ds.fit_labels, 1000)] for a in (ds.fit_images, ds.fit_labels)),
                           ds.val_images, ds.val_labels, k_max=5, use_cache=False)
    assert not np.array_equal(want, plain.sweep([1, 3, 5], weights=preset.weights))  # not plain kNN's numbers


# --------------------------------------------------------------------------- predict


def write_png(path, image):
    assert cv2.imwrite(str(path), image)
    return str(path)


def test_predict_mnist_pngs(capsys, ds, tmp_path):
    files, labels = [], []
    for j in (0, 1, 2, 3):
        files.append(write_png(tmp_path / f"digit{j}.png", ds.test_images[j]))
        labels.append(int(ds.test_labels[j]))
    inverted = write_png(tmp_path / "inverted.png", 255 - ds.test_images[0])  # dark ink on white paper
    status, out, err = run(capsys, "predict", *files, inverted, "--train-size", "5000")
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 5
    keep = stratified_subset(ds.train_labels, 5000)
    clf = KNNClassifier(5).fit(ds.train_images[keep], ds.train_labels[keep])
    expected = clf.predict(ds.test_images[:4]).tolist()
    assert expected == labels  # these four are classified right
    for line, path, label in zip(lines, files + [inverted], labels + labels[:1]):
        assert line.startswith(f"{path}: {label}   neighbours: ")
        neighbours = re.findall(r" (\d)\((\d+)\)", line.split("neighbours:")[1])
        assert len(neighbours) == 5
        assert "won the vote outright" in line or "Tie between" in line
    d, i = clf.kneighbors(ds.test_images[:1])
    assert [int(dist) for _, dist in re.findall(r" (\d)\((\d+)\)", lines[0])] == np.round(d[0]).astype(int).tolist()
    assert lines[4].split("neighbours:")[1] == lines[0].split("neighbours:")[1]  # inverted: the same digit


def test_predict_passes_metric_and_vote_options(capsys, ds, tmp_path):
    path = write_png(tmp_path / "d.png", ds.test_images[7])
    status, out, err = run(capsys, "predict", path, "--metric", "manhattan", "--k", "4", "--tie-break", "nearest",
                           "--train-size", "1000")
    assert status == 0, err
    keep = stratified_subset(ds.train_labels, 1000)
    X, y = ds.train_images[keep], ds.train_labels[keep]
    clf = KNNClassifier(4, metric="manhattan", tie_break="nearest").fit(X, y)
    d, i = clf.kneighbors(ds.test_images[7:8])
    shown = " ".join(f"{y[j]}({dist:.0f})" for j, dist in zip(i[0], d[0]))
    assert out.startswith(f"{path}: {clf.predict(ds.test_images[7:8])[0]}   neighbours: {shown}   ")
    assert d[0, 0] > 1000  # manhattan-sized distances, not euclidean ones


@pytest.mark.slow
def test_predict_with_the_full_training_set(capsys, ds, tmp_path):
    path = write_png(tmp_path / "seven.png", ds.test_images[0])
    status, out, err = run(capsys, "predict", path)
    assert status == 0, err
    assert out.startswith(f"{path}: {ds.test_labels[0]}   neighbours: ")


def test_predict_blank_image_is_named_and_fails(capsys, tmp_path):
    blank = write_png(tmp_path / "blank.png", np.full((60, 60), 255, np.uint8))  # white paper, no ink
    status, out, err = run(capsys, "predict", blank, "--train-size", "100")
    assert status == 1 and out == ""
    assert error_lines(err) == [f"{blank}: no ink found in the photo: nothing to classify"]


def test_predict_bad_files_are_named_and_fail(capsys, ds, tmp_path):
    good = write_png(tmp_path / "good.png", ds.test_images[1])
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image\n")
    missing = tmp_path / "missing.png"
    status, out, err = run(capsys, "predict", str(text), good, str(missing), "--train-size", "1000")
    assert status not in (0, None)
    assert out.startswith(f"{good}: {ds.test_labels[1]}")  # the good file is still classified
    errs = error_lines(err)
    assert len(errs) == 2
    assert errs[0].startswith(f"{text}: ") and "not a PNG or JPEG" in errs[0]
    assert errs[1].startswith(f"{missing}: ") and "cannot read" in errs[1]
    assert "Traceback" not in err


def test_predict_missing_file_named_once(capsys, tmp_path):
    """'x.png: x.png: cannot read (...)' names the file twice (read_image_file and cmd_predict both add it)."""
    missing = tmp_path / "missing.png"
    status, _, err = run(capsys, "predict", str(missing), "--train-size", "100")
    assert status == 1
    (line,) = error_lines(err)
    assert line == f"{missing}: cannot read (No such file or directory)"


# --------------------------------------------------------------------------- suspicious


def test_suspicious_training_digits_are_named_by_their_dataset_row(capsys, ds):
    status, out, err = run(capsys, "suspicious", "--k", "5", "--train-size", "1000", "--limit", "8")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "kNN k=5 metric=euclidean weights=uniform tie-break=smallest train=1000"
    keep = stratified_subset(ds.train_labels, 1000)
    loo = find_neighbors(ds.train_images[keep], ds.train_labels[keep], k_max=5, use_cache=False)
    n_doubts = int(lines[1].split()[0])
    disagree = np.mean(loo.neighbor_labels(5) != loo.query_labels[:, None], axis=1)
    assert n_doubts == int((disagree > 0.5).sum()) > 8
    table = [ln.split() for ln in lines[3:]]
    assert len(table) == 8 and [int(r[0]) for r in table] == list(range(1, 9))
    for r in table:
        row, label = int(r[1]), int(r[2])
        assert row in keep  # a row of the dataset, not an index into the subset
        assert label == ds.train_labels[row]
        j = int(np.searchsorted(keep, row))  # its place in the subset searched
        assert float(r[4]) == pytest.approx(disagree[j], abs=0.005)
        assert r[5:] == [str(v) for v in loo.neighbor_labels(5)[j]]
def photo_of(digit28: np.ndarray) -> np.ndarray:
    """A digit as on a photo: dark ink on light, slightly uneven paper (320 x 300 pixels)."""
    digit = cv2.resize(digit28, (180, 180), interpolation=cv2.INTER_LINEAR)
    paper = np.tile(np.linspace(215, 245, 320, dtype=np.float32), (300, 1))
    paper[60:240, 70:250] -= digit.astype(np.float32) * 0.7
    return np.clip(paper, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_predict_a_photo_goes_through_the_photo_path(capsys, ds, tmp_path, ext):
    from knn_core.photo import photo_to_mnist

    path = write_png(tmp_path / f"photo{ext}", photo_of(ds.test_images[0]))
    status, out, err = run(capsys, "predict", path, "--train-size", "5000")
    assert status == 0, err
    keep = stratified_subset(ds.train_labels, 5000)
    clf = KNNClassifier(5).fit(ds.train_images[keep], ds.train_labels[keep])
    with open(path, "rb") as f:
        digit = photo_to_mnist(f.read())
    d, i = clf.kneighbors(digit[None])
    shown = " ".join(f"{ds.train_labels[keep][j]}({dist:.0f})" for j, dist in zip(i[0], d[0]))
    assert out.startswith(f"{path}: 7   neighbours: {shown}   ")
    assert clf.predict(digit[None])[0] == 7 == ds.test_labels[0]


# The IDM presets without their refusal rule: calibrating it searches all 10,000 validation digits by the
# method (idm+blur 3.2 min, idm+affine+p2d 7.5 min on these 2 cores with 1,000 training digits; cached on disk
# afterwards, but each test run starts with an empty cache). deskew keeps the rule: a preset's predict with it.
NO_ABSTAIN = ["--no-abstain"]


@pytest.mark.parametrize("name,extra", [("deskew", []), ("idm+blur", NO_ABSTAIN), ("idm+affine+p2d", NO_ABSTAIN)])
def test_predict_with_a_method_uses_its_neighbours_and_vote(capsys, ds, tmp_path, name, extra):
    preset = PRESETS[name]  # no --k, no --weights: the preset's (e.g. k=3, distance), not the classic defaults
    assert (preset.k, preset.weights) != (5, "uniform")
    path = write_png(tmp_path / "d.png", ds.test_images[11])
    status, out, err = run(capsys, "predict", path, "--method", name, "--train-size", "1000", *extra)
    assert status == 0, err
    keep = stratified_subset(ds.train_labels, 1000)
    X, y = ds.train_images[keep], ds.train_labels[keep]
    clf = KNNClassifier(preset.k, method=preset.name, weights=preset.weights).fit(X, y)
    d, i = clf.kneighbors(ds.test_images[11:12])
    assert d.shape == (1, preset.k)  # the preset's validated k
    shown = " ".join(f"{y[j]}({dist:.0f})" for j, dist in zip(i[0], d[0]))
    winner = clf.explain(d[0], i[0]).winner
    assert winner == clf.predict(ds.test_images[11:12])[0]
    assert out.startswith(f"{path}: {winner}   neighbours: {shown}   ")
    plain = KNNClassifier(preset.k, weights=preset.weights).fit(X, y).kneighbors(ds.test_images[11:12])
    assert not np.array_equal(plain[1], i)  # not plain kNN's neighbours


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("argv,words", [
    (["evaluate", "--data", "/no/such/mnist"], "/no/such/mnist: no such file or folder"),
    (["evaluate", "--k", "0", "--train-size", "100"], "--k must be between 1 and 50; got 0"),
    (["predict", "x.png", "--k", "0"], "--k must be between 1 and 50; got 0"),
    (["evaluate", "--train-size", "0"], "at least 1 digit"),
    (["sweep", "--ks", "1,60", "--train-size", "100"], "k values above 50"),
])
def test_errors_exit_2_with_one_line(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and words in lines[0]
    assert out == ""


@pytest.mark.parametrize("argv,words", [
    (["sweep", "--ks", "abc"], "not a list of k values: 'abc'"),
    (["sweep", "--ks", "0,3"], "k values must be whole numbers >= 1"),
    (["sweep", "--train-sizes", "a,b"], "not a list of training-set sizes"),
    (["evaluate", "--k", "five"], "invalid int value: 'five'"),
    (["evaluate", "--metric", "chebyshev"], "invalid choice: 'chebyshev'"),
    ([], "required"),
])
def test_argument_errors_exit_2_naming_the_problem(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert "Traceback" not in err
    assert any(words in ln and "error:" in ln for ln in err.splitlines()), err
    assert out == ""


@pytest.mark.parametrize("argv", [["sweep", "--ks", "abc"], ["evaluate", "--k", "five"]])
def test_argument_errors_print_one_line(capsys, argv):
    """The module promises: errors print one line (argparse adds its whole usage block)."""
    _, _, err = run(capsys, *argv)
    assert len(error_lines(err)) == 1, err


@pytest.mark.parametrize("error", [KnnLabError("the input is bad"), ParameterError("k is bad"),
                                   DataError("/x: not MNIST"), EmptyDrawingError("no ink")])
def test_knn_lab_errors_print_error_and_exit_2(capsys, monkeypatch, error):
    def fails(args):
        raise error

    monkeypatch.setattr(knn_core.cli, "cmd_evaluate", fails)
    status, out, err = run(capsys, "evaluate")
    assert status == 2
    assert err == f"error: {error}\n" and out == ""


@pytest.mark.parametrize("bug", [RuntimeError("internal error: fewer than k candidates"),
                                 ValueError("a plain ValueError is a bug, not a problem with the input"),
                                 KeyError("metric")])
def test_a_bug_is_a_traceback_not_an_error_line(capsys, monkeypatch, bug):
    """Only knn_core's own errors (KnnLabError) are the user's problem; anything else must propagate."""
    def buggy(args):
        raise bug

    monkeypatch.setattr(knn_core.cli, "cmd_sweep", buggy)
    with pytest.raises(type(bug)) as exc:
        main(["sweep"])
    assert exc.value is bug
    assert "error:" not in capsys.readouterr().err


def test_a_bug_in_a_subprocess_shows_its_traceback(tmp_path):
    code = ("import sys, knn_core.cli as c\n"
            "def boom(args): raise RuntimeError('a bug')\n"
            "c.cmd_methods = boom\n"
            "sys.exit(c.main(['methods']))\n")
    env = {**os.environ, CACHE_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr and res.stderr.rstrip().endswith("RuntimeError: a bug")


def test_interrupt_exits_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(knn_core.cli, "cmd_evaluate", interrupted)
    assert run(capsys, "evaluate")[0:3:2] == (130, "interrupted\n")


def test_unknown_method_names_the_presets(capsys):
    status, out, err = run(capsys, "evaluate", "--method", "nonsense")
    assert status == 2 and out == ""
    (line,) = error_lines(err)
    assert line.startswith("error: unknown method 'nonsense'; choose one of ")
    assert all(name in line for name in PRESETS)


def test_parse_ks_ranges(capsys):
    from knn_core.cli import parse_ks, parse_sizes

    assert parse_ks("1-4,9,3") == [1, 2, 3, 4, 9]
    assert parse_ks("5,1,") == [1, 5]
    assert parse_sizes("1000, 500,1000") == [500, 1000]


# --------------------------------------------------------------------------- as a real process


def cli(*argv, cache_dir):
    env = {**os.environ, CACHE_ENV: str(cache_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "knn_core", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_help_in_a_subprocess(tmp_path):
    res = cli("--help", cache_dir=tmp_path)
    assert res.returncode == 0
    for command in ("evaluate", "sweep", "predict", "misclassified", "suspicious", "baselines", "methods"):
        assert command in res.stdout
    assert res.stdout.startswith("usage: knn-lab ")
    assert res.stderr == ""


def test_error_in_a_subprocess(tmp_path):
    res = cli("evaluate", "--data", str(tmp_path / "nowhere"), cache_dir=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == f"error: {tmp_path / 'nowhere'}: no such file or folder\n"
