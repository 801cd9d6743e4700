"""knn_core.baselines: every method on a small subset agrees with scikit-learn's own measurements.

The rows are computed once per module (800 training digits with a 300-digit
validation split, 300 test digits) into a temporary cache; each test then
checks them against a fresh estimator: test accuracy == ``score``, fold
accuracies == ``cross_val_score``, predictions == ``predict``.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from knn_core import Dataset
from knn_core import baselines as bl
from knn_core.cache import CACHE_ENV
from knn_core.cli import main
from knn_core.data import stratified_subset
from knn_core.errors import ParameterError
from knn_core.evaluate import DEFAULT_KS, choose_k
from knn_core.lists import neighbor_lists
from knn_core.threads import one_blas_thread

N_TRAIN, N_VAL, N_TEST = 800, 300, 300
PAIRS = [(key, f) for key in bl.METHODS for f in bl.FEATURES]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("baselines-cache")
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def small(mnist):
    return Dataset(mnist.train_images[:N_TRAIN], mnist.train_labels[:N_TRAIN], mnist.test_images[:N_TEST],
                   mnist.test_labels[:N_TEST], n_val=N_VAL, source="bundled (small subset)")


@pytest.fixture(scope="module")
def computed(small, cache_dir):
    calls, texts = [], []
    assert bl.missing(small) == [(bl.METHODS[k], f) for k, f in PAIRS]  # a fresh cache holds nothing
    rows = bl.run_baselines(small, progress=lambda d, t: calls.append((d, t)), status=texts.append)
    return rows, calls, texts


@pytest.fixture(scope="module")
def rows(computed):
    return {(r.method, r.features): r for r in computed[0]}


def _inputs(ds, m, features, train_size=None):
    idx = np.arange(len(ds.train_labels)) if train_size is None else stratified_subset(ds.train_labels, train_size)
    X = bl.model_input(bl.feature_rows(ds.train_images[idx], features), m)
    T = bl.model_input(bl.feature_rows(ds.test_images, features), m)
    return X, ds.train_labels[idx], T


def test_every_method_on_every_feature_set_in_order(computed):
    got = [(r.method, r.features) for r in computed[0]]
    assert got == PAIRS
    labels = {r.label for r in computed[0]}
    assert {"Gaussian naive Bayes", "Logistic regression", "SGD hinge (linear SVM)", "SGD log loss (logistic)",
            "kNN k=5", "kNN best k"} == labels


@pytest.mark.parametrize("key,features", PAIRS)
def test_row_equals_sklearns_own_measurements(small, rows, key, features):
    row = rows[(key, features)]
    m = bl.METHODS[key]
    X, y, T = _inputs(small, m, features)
    assert row.n_train == N_TRAIN

    with one_blas_thread():  # as run_baselines fits (the same arithmetic, bit for bit)
        est = row.estimator().fit(X, y)
        assert row.test_accuracy == est.score(T, small.test_labels)
        np.testing.assert_array_equal(row.predictions, est.predict(T))
        cv = cross_val_score(row.estimator(), X, y, cv=3)
    assert row.predictions.shape == small.test_labels.shape
    np.testing.assert_array_equal(row.cv_scores, cv)
    assert row.cv_accuracy == pytest.approx(cv.mean())
    assert row.fit_s >= 0 and row.predict_s >= 0 and row.cv_s >= 0


def test_features_are_scaled_to_unit_range_and_knn_gets_their_codes(small):
    pixels = bl.feature_rows(small.train_images, "pixels")
    small10 = bl.feature_rows(small.train_images, "10x10")
    assert pixels.shape == (N_TRAIN, 784) and small10.shape == (N_TRAIN, 100)
    for rows_ in (pixels, small10):
        x = bl.model_input(rows_, bl.METHODS["logreg"])
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.max() == 1
        np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), rows_)
        assert bl.model_input(rows_, bl.METHODS["knn-5"]) is rows_  # uint8 codes: the same ranking
    with pytest.raises(ValueError, match="unknown features"):
        bl.feature_rows(small.train_images, "20x20")


def test_best_k_is_chosen_on_the_validation_split_not_the_test_set(small, rows):
    expected = choose_k(neighbor_lists(small, "euclidean", "val"), DEFAULT_KS)
    row = rows[("knn-best", "pixels")]
    assert row.tuned == {"n_neighbors": expected}
    assert f"k={expected}" in row.detail
    assert rows[("knn-5", "pixels")].tuned == {}
    assert rows[("knn-5", "pixels")].estimator().n_neighbors == 5


def test_progress_counts_every_step_and_status_names_them(computed):
    rows_, calls, texts = computed
    total = sum(3 + 1 + bl.METHODS[k].tune_k for k, _ in PAIRS)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == list(range(1, total + 1))
    assert {t for _, t in calls} == {total}
    assert len(texts) == total
    assert any("Logistic regression on pixels: cross-validation fold 2/3" in t for t in texts)


def test_second_run_comes_from_the_cache_without_refitting(small, computed, monkeypatch):
    def refit(*args, **kwargs):
        raise AssertionError("refitted although the row is cached")

    monkeypatch.setattr(bl, "_compute_row", refit)
    calls = []
    again = bl.run_baselines(small, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1]  # cached rows still complete the progress
    assert len(again) == len(computed[0])
    for a, b in zip(computed[0], again):
        for name in ("method", "label", "features", "test_accuracy", "fit_s", "predict_s", "cv_s", "n_train",
                     "tuned", "detail"):
            assert getattr(a, name) == getattr(b, name), name
        np.testing.assert_array_equal(a.cv_scores, b.cv_scores)
        np.testing.assert_array_equal(a.predictions, b.predictions)
        assert a.predictions.dtype == b.predictions.dtype
    assert bl.missing(small) == []
    assert len(bl.run_baselines(small, only_cached=True)) == len(PAIRS)


def test_a_training_subset_uses_the_apps_class_balanced_digits(small, cache_dir):
    (row,) = bl.run_baselines(small, ["gnb"], "pixels", train_size=600)
    assert row.n_train == 600
    m = bl.METHODS["gnb"]
    X, y, T = _inputs(small, m, "pixels", train_size=600)
    assert row.test_accuracy == m.factory().fit(X, y).score(T, small.test_labels)
    assert bl.run_baselines(small, ["gnb"], "pixels", train_size=700, only_cached=True) == []


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_fit_that_stops_at_max_iter_is_noted(small, cache_dir):
    from sklearn.linear_model import LogisticRegression

    quick = bl.Baseline("logreg-2", "Logistic regression, 2 iterations", lambda: LogisticRegression(max_iter=2),
                      "for this test")
    (row,) = bl.run_baselines(small, [quick], "10x10", use_cache=False)
    assert row.detail == "4 of 4 fits stopped at max_iter=2 without converging"
    assert all(r.detail == "" for r in bl.run_baselines(small, ["logreg", "sgd-hinge"], only_cached=True))


BAD_ARGUMENTS = [
    (dict(methods=["svm"]), "unknown method 'svm'"),
    (dict(methods=["gnb"], features=["pixels", "hog"]), "unknown features"),
    (dict(methods=["gnb"], cv=1), "at least 2 folds"),
    (dict(methods=["gnb"], train_size=4), "too small"),
]


def test_methods_by_key_or_label_and_bad_arguments(small):
    assert bl.method("SGD hinge (linear SVM)") is bl.METHODS["sgd-hinge"]
    assert bl.method("LOGREG") is bl.METHODS["logreg"]
    assert isinstance(bl.METHODS["gnb"], bl.Baseline)
    for kwargs, words in BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=words):
            bl.run_baselines(small, **kwargs)


def test_estimates_grow_with_the_training_set():
    pairs = [(m, f) for m in bl.METHODS.values() for f in bl.FEATURES]
    small_, full = bl.estimate_seconds(pairs, 1_000), bl.estimate_seconds(pairs, 60_000)
    assert 0 < small_ < 60 < full
    assert bl.estimate_seconds([], 60_000) == 0


def test_format_table_lists_every_row(computed):
    text = bl.format_table(computed[0])
    for r in computed[0]:
        assert r.label in text
    assert len(text.splitlines()) == 2 + len(computed[0])


def test_command_line_prints_the_table(cache_dir, capsys):
    assert main(["baselines", "--methods", "gnb,sgd-hinge", "--features", "10x10", "--train-size", "300"]) == 0
    out = capsys.readouterr().out
    assert "train=300 test=10000 cv=3" in out
    assert "Gaussian naive Bayes" in out and "SGD hinge (linear SVM)" in out and "10x10" in out
    assert "pixels" not in out.split("\n", 2)[2]



@pytest.mark.parametrize("kwargs, words", BAD_ARGUMENTS)
def test_bad_arguments_are_parameter_errors(small, kwargs, words):
    with pytest.raises(ValueError, match=words) as exc:
        bl.run_baselines(small, **kwargs)
    assert isinstance(exc.value, ParameterError)


def test_command_line_bad_method_exits_2(cache_dir, capsys):
    assert main(["baselines", "--methods", "bogus"]) == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err


# ------------------------------------------------------------------ the shipped table


def test_a_saved_table_loads_as_the_same_rows(small, computed, tmp_path):
    saved, path = computed[0], tmp_path / "table.json"
    bl.save_table(saved, path, small, cv=3)
    got = bl.load_table(path, small, 3, N_TRAIN)
    assert got is not None
    loaded, measured = got
    assert len(measured) == 10 and measured[4] == "-"  # an ISO date
    assert [(r.method, r.label, r.features) for r in loaded] == [(r.method, r.label, r.features) for r in saved]
    for a, b in zip(loaded, saved):
        np.testing.assert_array_equal(a.predictions, b.predictions)
        np.testing.assert_array_equal(a.cv_scores, b.cv_scores)
        assert (a.test_accuracy, a.fit_s, a.tuned, a.detail, a.n_train) == (
            b.test_accuracy, b.fit_s, b.tuned, b.detail, b.n_train)
    # measured on something else, or not such a file: nothing
    other = Dataset(small.train_images, small.train_labels, small.test_images[::-1].copy(), small.test_labels[::-1].copy(),
                    n_val=N_VAL)
    assert bl.load_table(path, other, 3, N_TRAIN) is None
    assert bl.load_table(path, small, 5, N_TRAIN) is None
    assert bl.load_table(path, small, 3, 500) is None
    assert bl.load_table(tmp_path / "missing.json", small, 3, N_TRAIN) is None
    path.write_text('{"format": 1, "rows": [')
    assert bl.load_table(path, small, 3, N_TRAIN) is None


def test_the_command_line_saves_the_table(small, cache_dir, capsys, tmp_path):
    path = tmp_path / "t.json"
    assert main(["baselines", "--methods", "gnb", "--features", "10x10", "--train-size", "300", "--save", str(path)]) == 0
    assert f"saved to {path}" in capsys.readouterr().out
    assert '"method": "gnb"' in path.read_text()



def test_the_shipped_table_is_the_full_data_set_measured(mnist):
    """assets/baselines: the table the Baselines page opens with (python -m knn_core baselines --save ...)."""
    got = bl.load_table(bl.SHIPPED_TABLE, mnist, 3, 60_000)
    assert got is not None, f"{bl.SHIPPED_TABLE} is missing or was measured on other data or code"
    rows = {(r.method, r.features): r for r in got[0]}
    assert set(rows) == set(PAIRS)
    knn5 = rows[("knn-5", "pixels")]
    assert knn5.test_accuracy == 0.9688  # the app's reference figure: k=5, euclidean, full data
    assert np.mean(knn5.predictions == mnist.test_labels) == 0.9688
