"""The Dataset and Baselines pages through Streamlit's AppTest, on a small dataset (fast).

The pages take the dataset as an argument (default: the app's MNIST); here
they get 300 training digits (the last 100 the validation split) and 200 test
digits.  The Baselines page's rows are compared with knn_core.baselines rows
computed here, into a cache folder of their own; each test sets the cache it
needs, so none depends on another having run.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import chart, digit_grids, plain
from streamlit.testing.v1 import AppTest

from knn_core import Dataset
from knn_core import baselines as bl
from knn_core.cache import CACHE_ENV
from knn_core.jobs import DONE

TIMEOUT = 120
N_TRAIN, N_VAL, N_TEST = 300, 100, 200


@pytest.fixture(scope="module")
def small(mnist):
    return Dataset(mnist.train_images[:N_TRAIN], mnist.train_labels[:N_TRAIN], mnist.test_images[:N_TEST],
                   mnist.test_labels[:N_TEST], n_val=N_VAL, source="bundled (test subset)")


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory):
    """knn_core's baseline rows for `small`, computed here into an empty cache folder: (rows by
    (label, features), that folder)."""
    path = tmp_path_factory.mktemp("app-baselines-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        rows = bl.run_baselines(small)
    return {(r.label, r.features): r for r in rows}, path


def computed(queue, ds):
    """The Baselines page's job in the server's queue for all of ds's training digits (None: never asked)."""
    from pages.baselines import CV

    job = queue.get(("baselines", ds.fingerprint, len(ds.train_labels), CV))
    assert job is None or job.state == DONE, job
    return job


def dataset_script(ds):
    from pages.dataset import dataset_page

    dataset_page(ds=ds)


def baselines_script(ds, confirm_seconds):
    from pages.baselines import baselines_page

    baselines_page(ds=ds, confirm_seconds=confirm_seconds)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def grids(at: AppTest) -> list[list[tuple[str, str]]]:
    """Each ui.digit_grid on the page: (alt text, caption as plain text) per picture."""
    return [[(alt, plain(caption)) for alt, caption in grid] for grid in digit_grids(at)]


def sample(at: AppTest) -> list[tuple[int, int]]:
    """The sample grid's (label, index) per digit, from captions '5 · #123'."""
    out = []
    for grid in grids(at)[:-1]:  # the last grid is the mean digits
        for _, cap in grid:
            m = re.fullmatch(r"(\d+) · #(\d+)", cap)
            assert m, cap
            out.append((int(m[1]), int(m[2])))
    return out


# ------------------------------------------------------------------------------ Dataset


def test_dataset_page_shows_samples_counts_means_and_a_picked_digit(small):
    at = run(AppTest.from_function(dataset_script, default_timeout=TIMEOUT, kwargs={"ds": small}))
    shown = sample(at)
    assert len(shown) == 50 and len(grids(at)) == 5 + 1  # 5 rows of 10, then the means
    assert all(small.train_labels[i] == lab for lab, i in shown)
    assert len({i for _, i in shown}) == 50

    fig = chart(at, "ds_counts")
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["train"]["y"] == np.bincount(small.train_labels, minlength=10).tolist()
    assert by_name["test"]["y"] == np.bincount(small.test_labels, minlength=10).tolist()

    means = grids(at)[-1]
    assert [c for _, c in means] == [str(d) for d in range(10)]

    picked = at.get("image")[0].proto.imgs[0].caption
    assert picked == f"#0 of the training set: label {small.train_labels[0]}"


def test_dataset_page_reshuffles_filters_by_class_and_switches_split(small):
    at = run(AppTest.from_function(dataset_script, default_timeout=TIMEOUT, kwargs={"ds": small}))
    first = sample(at)
    at.button(key="ds_reshuffle").click()
    run(at)
    assert sample(at) != first

    at.selectbox(key="ds_sample_class").set_value(3)
    run(at)
    threes = sample(at)
    assert {lab for lab, _ in threes} == {3}
    assert len(threes) == min(50, int(np.sum(small.train_labels == 3)))

    at.segmented_control(key="ds_sample_split").set_value("test")
    run(at)
    test_threes = sample(at)
    assert {lab for lab, _ in test_threes} == {3}
    assert all(small.test_labels[i] == 3 for _, i in test_threes)


def test_dataset_page_picks_a_digit_by_index_within_the_splits_limits(small):
    at = run(AppTest.from_function(dataset_script, default_timeout=TIMEOUT, kwargs={"ds": small}))
    box = at.number_input(key="ds_pick_index_train")
    assert (box.min, box.max) == (0, N_TRAIN - 1)
    box.set_value(N_TRAIN - 1)
    run(at)
    caption = at.get("image")[0].proto.imgs[0].caption
    assert caption == (f"#{N_TRAIN - 1} of the training set (validation split): "
                       f"label {small.train_labels[-1]}")

    at.segmented_control(key="ds_pick_split").set_value("test")
    run(at)
    box = at.number_input(key="ds_pick_index_test")
    assert box.max == N_TEST - 1
    box.set_value(7)
    run(at)
    assert at.get("image")[0].proto.imgs[0].caption == f"#7 of the test set: label {small.test_labels[7]}"


# ---------------------------------------------------------------------------- Baselines


def test_a_small_table_is_computed_right_away_with_progress(mnist, tmp_path, monkeypatch, fresh_queue):
    tiny = Dataset(mnist.train_images[:90], mnist.train_labels[:90], mnist.test_images[:30],
                   mnist.test_labels[:30], n_val=30, source="bundled (tiny subset)")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "fresh"))
    at = run(AppTest.from_function(baselines_script, default_timeout=TIMEOUT,
                                   kwargs={"ds": tiny, "confirm_seconds": 60.0}))
    assert "bl_start" not in [b.key for b in at.button] and not at.warning  # nothing to ask
    job = computed(fresh_queue, tiny)  # computed through the server's queue, reporting its progress
    assert job.total > 0 and job.done == job.total
    assert not at.status  # then the page is drawn afresh: the finished table without the progress above it
    assert len(at.dataframe[0].value) == len(bl.METHODS) * len(bl.FEATURES)


def test_baselines_page_asks_first_then_computes_and_shows_every_method(small, reference, tmp_path, monkeypatch,
                                                                         fresh_queue):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "fresh"))
    at = run(AppTest.from_function(baselines_script, default_timeout=TIMEOUT,
                                   kwargs={"ds": small, "confirm_seconds": 0.0}))
    start = at.button(key="bl_start")
    assert re.fullmatch(r"Compute the table \(about \d+ s\)", start.label)
    assert "12 of the 12 results are still to compute" in at.warning[0].value
    assert not at.dataframe and not at.status
    assert computed(fresh_queue, small) is None  # nothing started before the press
    start.click()
    run(at)
    assert computed(fresh_queue, small).total > 0  # it computed through the queue, reporting progress
    assert not at.warning and not at.status and "bl_start" not in [b.key for b in at.button]  # drawn afresh

    rows, _ = reference
    df = at.dataframe[0].value
    assert len(df) == len(bl.METHODS) * len(bl.FEATURES) == 12
    assert set(df["Method"]) == {m.label for m in bl.METHODS.values()}
    assert set(df["Features"]) == set(bl.FEATURES)
    for _, rec in df.iterrows():
        assert rec["Test accuracy"] == rows[(rec["Method"], rec["Features"])].test_accuracy

    fig = chart(at, "bl_chart")
    assert {t["name"] for t in fig["data"]} == {"raw pixels (784)", "10×10 downsampled (100)"}
    for t in fig["data"]:
        assert t["x"] == [m.label for m in bl.METHODS.values()]
        features = "pixels" if t["name"].startswith("raw") else "10x10"
        assert t["y"] == [rows[(label, features)].test_accuracy for label in t["x"]]

    gallery = [fig for grid in grids(at) for fig in grid]
    assert len(gallery) == 40 and len(grids(at)) == 4  # rows of 10
    first = next(iter(rows.values()))  # the gallery's default: the first method, pixels
    for alt, cap in gallery:
        i = int(re.match(r"test digit (\d+)", alt)[1])
        pred, truth = first.predictions[i], small.test_labels[i]
        assert cap.startswith(str(pred))
        assert ("✗" in cap) == (pred != truth) == ("wrong" in alt)


def test_baselines_gallery_shows_a_methods_mistakes(small, reference, monkeypatch, fresh_queue):
    rows, folder = reference
    monkeypatch.setenv(CACHE_ENV, str(folder))  # the rows computed above are on disk there
    at = run(AppTest.from_function(baselines_script, default_timeout=TIMEOUT,
                                   kwargs={"ds": small, "confirm_seconds": 60.0}))
    assert not at.status  # everything came from the cache
    at.selectbox(key="bl_gallery_method").set_value("SGD hinge (linear SVM)")
    at.segmented_control(key="bl_gallery_features").set_value("10x10")
    at.toggle(key="bl_gallery_mistakes").set_value(True)
    run(at)
    row = rows[("SGD hinge (linear SVM)", "10x10")]
    wrong = np.flatnonzero(row.predictions != small.test_labels)
    gallery = [fig for grid in grids(at) for fig in grid]
    assert len(gallery) == min(40, len(wrong)) > 0
    assert all("✗" in cap and "wrong" in alt for alt, cap in gallery)
    assert {int(re.match(r"test digit (\d+)", alt)[1]) for alt, _ in gallery} <= set(wrong.tolist())
    assert any(f"{len(wrong):,} of {N_TEST:,} test digits wrong" in c.value for c in at.caption)


def test_the_shipped_table_shows_at_once_and_can_be_measured_again(small, reference, tmp_path, monkeypatch,
                                                                     fresh_queue):
    """#18: the page opens with the table shipped in assets/ (no empty page behind a button), says when it
    was measured, and measures it again on this server with one press."""
    rows, _ = reference
    shipped = tmp_path / "shipped.json"
    bl.save_table(list(rows.values()), shipped, small, cv=3)
    monkeypatch.setattr(bl, "SHIPPED_TABLE", shipped)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "fresh"))  # nothing computed on this server
    at = run(AppTest.from_function(baselines_script, default_timeout=TIMEOUT,
                                   kwargs={"ds": small, "confirm_seconds": 0.0}))
    assert not at.warning and not at.status and "bl_start" not in [b.key for b in at.button]
    df = at.dataframe[0].value
    assert len(df) == 12
    for _, rec in df.iterrows():
        assert rec["Test accuracy"] == rows[(rec["Method"], rec["Features"])].test_accuracy
    assert any(c.value.startswith("Measured on 20") and "shipped with the app" in c.value for c in at.caption)
    assert computed(fresh_queue, small) is None  # nothing computed to show it

    at.button(key="bl_measure").click()
    run(at)
    assert computed(fresh_queue, small).total > 0  # measured here, through the queue, without asking twice
    assert not at.warning and not at.status and "bl_measure" not in [b.key for b in at.button]
    assert len(at.dataframe[0].value) == 12
    assert not any("shipped with the app" in c.value for c in at.caption)
