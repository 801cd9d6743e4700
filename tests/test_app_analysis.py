"""The analysis pages (Confusion matrix, Choosing k, Misclassified, Suspicious labels) under AppTest.

Each page is rendered by a small script function (the page function of
pages/<name>.py) with its settings in the query string, as a link would carry
them; the figures, tables and numbers it shows are compared with what knn_core
computes for the same settings.  Most tests use small training subsets (fast
searches); one checks the full data set (k=5 euclidean: accuracy 0.9688).
The knn_core parts these pages rely on (NeighborLists.sweep, wrong_votes,
label_doubts, is_cached, estimate_seconds, split_data's training rows) and the
`misclassified` / `suspicious` commands are tested here too.
"""
from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL, chart, cli, codes, grids, metrics, neighbour_caption_check, run_page, with_neighbours
from streamlit.testing.v1 import AppTest

import ui
from knn_core import (
    K_MAX,
    Method,
    NeighborLists,
    ParameterError,
    cache,
    estimate_seconds,
    is_cached,
    neighbor_lists,
    split_data,
)
from knn_core.data import Dataset
from knn_core.evaluate import (
    choose_k,
    label_doubts,
    label_issues,
    misclassified,
    report,
    size_curve,
    suspicious_labels,
    wrong_votes,
)

KS = list(range(1, K_MAX + 1))


# ------------------------------------------------------------------------------ helpers


def trace(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return found[0]


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def csv_download(at: AppTest, served_files, key: str) -> pd.DataFrame:
    """The CSV file behind the download button with this key, as the browser would save it."""
    (button,) = [b for b in at.download_button if b.key == key]
    return pd.read_csv(io.BytesIO(served_files(button.proto.url)))


_references: dict = {}


def lists_for(ds, split, size=SMALL, metric="euclidean") -> NeighborLists:
    """knn_core's neighbour lists for these settings, searched here (never read from the disk cache
    that the page under test fills), once per session."""
    key = (id(ds), split, size, metric)
    if key not in _references:
        _references[key] = neighbor_lists(ds, Method.classic(metric, ui.MINKOWSKI_P), split, train_size=size,
                                          k_max=K_MAX, use_cache=False)
    return _references[key]


# ----------------------------------------------------------------------- Confusion matrix


@pytest.mark.slow
def test_confusion_full_data_default_settings(mnist, full_test_lists):
    at = run_page("confusion")  # all 60,000 training digits: a full search (the session's cache starts empty)
    assert metrics(at)["Accuracy"] == "0.9688"
    lists = full_test_lists
    rep = report(lists.query_labels, lists.predict(5))
    fig = chart(at, "confusion_chart")
    assert np.array_equal(np.array(fig["data"][0]["z"]), rep.confusion)
    assert metrics(at)["Misclassified"] == f"{int(rep.confusion.sum() - np.trace(rep.confusion)):,} of 10,000"
    assert "python -m knn_core evaluate --k 5" in codes(at)
    assert not at.warning and not at.error


def test_confusion_matches_knn_core_on_a_subset(mnist):
    params = {"size": SMALL, "k": 3, "weights": "distance", "tie": "nearest"}
    at = run_page("confusion", params)
    lists = lists_for(mnist, "test")
    vote = dict(weights="distance", tie_break="nearest")
    pred = lists.predict(3, **vote)
    rep = report(lists.query_labels, pred)
    assert metrics(at)["Accuracy"] == f"{rep.accuracy:.4f}"
    fig = chart(at, "confusion_chart")
    assert np.array_equal(np.array(fig["data"][0]["z"]), rep.confusion)
    assert [int(v) for v in fig["data"][1]["customdata"]] == rep.confusion.ravel().tolist()  # the click targets
    per_class = table_with(at, "precision")
    assert np.array_equal(per_class["test digits"], rep.support)
    for col, want in (("precision", rep.precision), ("recall", rep.recall), ("F1", rep.f1)):
        assert np.allclose(per_class[col], want, rtol=0, atol=1e-12), col
    assert np.allclose(chart(at, "class_accuracy")["data"][0]["y"], rep.recall)
    assert chart(at, "class_accuracy")["layout"]["yaxis"]["range"][0] == 0  # from 0: no exaggerated differences
    assert codes(at)[0] == ("python -m knn_core evaluate --k 3 --train-size 1000 --weights distance "
                            "--tie-break nearest")

    # Rows normalised: each row sums to 1.
    at.radio[0].set_value("rows normalised").run()
    z = np.array(chart(at, "confusion_chart")["data"][0]["z"])
    assert np.allclose(z, rep.confusion / rep.confusion.sum(axis=1, keepdims=True))

    # A cell picked in the select boxes: its digits, most confidently wrong first, each with its neighbours.
    at.selectbox(key="cell_true").set_value(4)
    at.selectbox(key="cell_pred").set_value(9).run()
    wrong = wrong_votes(lists, 3, **vote)
    cell = wrong["index"][(wrong["true"] == 4) & (wrong["predicted"] == 9)]
    assert len(cell) == rep.confusion[4, 9] > 0
    shown = with_neighbours(at)
    assert [digit.split("\n")[0] for digit, _ in shown] == [f"test #{q}" for q in cell[:12]]
    for q, (_, captions) in zip(cell[:12], shown):
        neighbour_caption_check(captions, lists, q, 3, 9)
    assert "python -m knn_core misclassified --k 3 --train-size 1000 --weights distance --tie-break nearest " \
           "--true 4 --predicted 9" in codes(at)


def test_confusion_diagonal_cell(mnist):
    at = run_page("confusion", {"size": SMALL}, state={"cell_true": 1, "cell_pred": 1})
    lists = lists_for(mnist, "test")
    right = np.flatnonzero((lists.query_labels == 1) & (lists.predict(5) == 1))
    assert any(f"{len(right):,} test digits labelled **1**" in c.value for c in at.caption)
    assert [digit.split("\n")[0] for digit, _ in with_neighbours(at)] == [f"test #{q}" for q in right[:12]]


def test_slow_search_asks_first_with_an_estimate(mnist, empty_cache):
    # minkowski p=3, 10,000 test digits vs 500: about 26 s, over CONFIRM_SECONDS, within a browser's limit
    assert ui.jobs.CONFIRM_SECONDS < estimate_seconds(mnist, "minkowski", "test", 500) < ui.max_browser_seconds()
    at = run_page("confusion", {"metric": "minkowski", "size": 500})
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "This takes about 26 s" in warnings[0], warnings
    assert [b.label for b in at.button] == ["Start the search (about 26 s)"]
    assert not at.get("plotly_chart") and not at.status
    assert not ui.QUEUE.active()  # nothing started
    assert ui.QUEUE.get(("test", Method.classic("minkowski", ui.MINKOWSKI_P), 500)) is None


def test_a_search_too_long_for_a_browser_shows_the_command_instead(mnist, empty_cache):
    at = run_page("confusion", {"metric": "minkowski"})  # minkowski p=3 on all 60,000: about 50 minutes
    assert estimate_seconds(mnist, "minkowski", "test") > ui.max_browser_seconds()
    infos = [i.value for i in at.info]
    assert len(infos) == 1 and "too long to start from a browser" in infos[0] and "about 50 min" in infos[0], infos
    assert "python -m knn_core evaluate --metric minkowski" in codes(at)  # fills the cache the page reads
    assert not at.button and not at.warning and not at.get("plotly_chart") and not at.status
    assert not ui.QUEUE.active()  # nothing started


def test_first_search_shows_progress_then_comes_from_the_cache(mnist, empty_cache):
    params = {"size": 500}
    at = run_page("suspicious", params, state={"suspicious_view": "doubts"})  # leave-one-out on 500: quick
    assert len(at.status) == 1 and at.status[0].label.startswith("Searched in ")
    assert at.get("progress")
    first = table_with(at, "disagreement")
    ui.forget_loaded()  # a new server process: the lists are on disk now
    at = run_page("suspicious", params, state={"suspicious_view": "doubts"})
    assert not at.status and not at.error  # read from the disk cache (under a spinner): no search, no progress
    pd.testing.assert_frame_equal(table_with(at, "disagreement"), first)
    shutil.rmtree(empty_cache)  # then from memory: no status, the same table, with nothing left on disk
    for _ in range(2):
        at.run()
        assert not at.status and not at.exception and not at.error
        pd.testing.assert_frame_equal(table_with(at, "disagreement"), first)
    assert not empty_cache.exists()


def test_start_the_search_button_runs_it_and_shows_the_results(mnist, empty_cache, monkeypatch):
    monkeypatch.setattr(ui.jobs, "CONFIRM_SECONDS", 0.0)  # every search not on disk asks first
    params = {"size": 500, "k": 3}
    at = run_page("confusion", params)
    (button,) = at.button
    assert button.label.startswith("Start the search (about ")
    assert not at.get("plotly_chart") and not metrics(at)
    button.click().run()
    assert not at.exception and not at.error
    assert len(at.status) == 1 and at.status[0].label.startswith("Searched in ")
    lists = lists_for(mnist, "test", size=500)
    rep = report(lists.query_labels, lists.predict(3))
    assert metrics(at)["Accuracy"] == f"{rep.accuracy:.4f}"
    assert np.array_equal(np.array(chart(at, "confusion_chart")["data"][0]["z"]), rep.confusion)
    at.run()  # the next run: the search is done, nothing to ask
    assert not at.button and metrics(at)["Accuracy"] == f"{rep.accuracy:.4f}"
    # the lists are on disk now: a new server process does not ask again either
    ui.forget_loaded()
    at = run_page("confusion", params)
    assert not at.button and metrics(at)["Accuracy"] == f"{rep.accuracy:.4f}"


# --------------------------------------------------------------------------- Choosing k


@pytest.mark.slow
def test_k_sweep_matches_knn_core(mnist, served_files):  # four charts: about twenty searches, here and on the page
    at = run_page("k_sweep", {"size": SMALL})
    val, test, loo = (lists_for(mnist, s) for s in ("val", "test", "loo"))
    val_acc, test_acc, loo_acc = val.sweep(KS), test.sweep(KS), loo.sweep(KS)

    fig = chart(at, "sweep_chart")
    assert np.array_equal(trace(fig, "validation")["y"], val_acc)
    assert np.array_equal(trace(fig, "test")["y"], test_acc)
    k = choose_k(val, KS)
    m = metrics(at)
    assert m["k chosen on validation"] == str(k)
    assert m["its test accuracy"] == f"{test.accuracy(k):.4f}"
    assert trace(fig, f"test accuracy at k={k}")["x"] == [k]
    table = table_with(at, "validation")
    assert np.array_equal(table["validation"], val_acc) and np.array_equal(table["test"], test_acc)

    fig = chart(at, "loo_chart")
    assert np.array_equal(trace(fig, "leave-one-out")["y"], loo_acc)
    k_loo = choose_k(loo, KS)
    assert m["k chosen by leave-one-out"] == str(k_loo)
    assert m["test accuracy at this k"] == f"{test.accuracy(k_loo):.4f}"

    sizes = [500, 1000]  # the sizes up to the one set
    from pages.k_sweep import SIZE_KS

    want = size_curve(mnist, sizes, SIZE_KS, use_cache=False)
    fig = chart(at, "size_chart")
    assert fig["layout"]["xaxis"]["type"] == "log"
    for j, kk in enumerate(SIZE_KS):
        assert np.array_equal(trace(fig, f"k={kk}")["y"], want[:, j])
    assert np.array_equal(table_with(at, "training digits").iloc[:, 1:].to_numpy(), want)

    # Metrics and weightings: euclidean and cosine by default, both weightings; cosine's two searches
    # (about 17 s on 1,000 digits) wait for their button.
    assert at.multiselect(key="compare_metrics").value == [Method.classic("euclidean"), Method.classic("cosine")]
    assert [b.label for b in at.button] == ["Start the search (about 17 s)"]
    at.button(key="compare_start").click().run()
    assert not at.exception and not at.error
    summary = table_with(at, "k chosen on validation")
    assert len(summary) == 4
    for row in summary.itertuples(index=False):
        metric = row.distance.split(" ")[0]
        v, t = lists_for(mnist, "val", metric=metric), lists_for(mnist, "test", metric=metric)
        best = choose_k(v, KS, weights=row.weights)
        assert row[2] == best and row[3] == v.accuracy(best, weights=row.weights)
        assert row[4] == t.accuracy(best, weights=row.weights)

    # Every chart has a CSV download of its numbers: the file holds the chart's curves.
    assert sorted(b.key for b in at.download_button) == ["compare_csv", "loo_csv", "size_csv", "sweep_csv"]
    fig = chart(at, "sweep_chart")
    sweep_csv = csv_download(at, served_files, "sweep_csv")
    assert list(sweep_csv.columns) == ["k", "validation", "test"] and sweep_csv["k"].tolist() == KS
    for column, name in (("validation", "validation"), ("test", "test")):
        np.testing.assert_allclose(sweep_csv[column], trace(fig, name)["y"], rtol=1e-12)
    loo_csv = csv_download(at, served_files, "loo_csv")
    assert loo_csv["k"].tolist() == KS
    np.testing.assert_allclose(loo_csv["leave-one-out"], trace(chart(at, "loo_chart"), "leave-one-out")["y"],
                               rtol=1e-12)
    size_csv = csv_download(at, served_files, "size_csv")
    assert size_csv["training digits"].tolist() == sizes
    for kk in SIZE_KS:
        np.testing.assert_allclose(size_csv[f"k={kk}"], trace(chart(at, "size_chart"), f"k={kk}")["y"], rtol=1e-12)
    compare_csv = csv_download(at, served_files, "compare_csv")
    curves = {t["name"]: t["y"] for t in chart(at, "compare_chart")["data"] if t.get("mode") == "lines"}
    assert compare_csv["k"].tolist() == KS and set(compare_csv.columns[1:]) == set(curves) and len(curves) == 4
    for name, y in curves.items():
        np.testing.assert_allclose(compare_csv[name], y, rtol=1e-12)
    assert any("python -m knn_core sweep --train-size 1000 --ks 1-50 --split val" in c for c in codes(at))
    assert "python -m knn_core sweep --ks 1,3,5,10,25,50 --train-sizes 500,1000" in codes(at)


def test_k_sweep_slow_metric_in_the_comparison_asks_first(mnist, empty_cache):
    at = run_page("k_sweep", {"size": SMALL}, state={"compare_metrics": [Method.classic("euclidean"), Method.classic("minkowski", ui.MINKOWSKI_P)]})
    # 2 x 10,000 digits vs 1,000 with minkowski p=3: estimated about 2 minutes -> asked first
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "This takes about 2 min" in warnings[0] and "minkowski" in warnings[0]
    assert [b.label for b in at.button] == ["Start the search (about 2 min)"]
    assert not [d for d in at.dataframe if "k chosen on validation" in d.value.columns]
    for key in ("sweep_chart", "loo_chart", "size_chart"):  # the rest of the page is there
        chart(at, key)
    assert not ui.QUEUE.active()  # nothing started
    assert ui.QUEUE.get(("val", Method.classic("minkowski", ui.MINKOWSKI_P), SMALL)) is None


def test_sweep_in_one_pass_is_the_vote_at_each_k():
    rng = np.random.default_rng(1)
    m, K = 400, 12
    dist = np.sort(rng.integers(0, 6, (m, K)).astype(float), axis=1)  # many equal distances and zeros
    lists = NeighborLists(dist, rng.integers(0, 50, (m, K)), rng.integers(0, 4, 50), rng.integers(0, 4, m),
                          train_rows=np.arange(50))
    ks = [1, 2, 3, 4, 6, 7, 12, 5]
    for weights in ("uniform", "distance"):
        for tie in ("smallest", "nearest", "random"):
            want = [lists.accuracy(k, weights=weights, tie_break=tie) for k in ks]  # one vote per k
            assert np.array_equal(lists.sweep(ks, weights=weights, tie_break=tie), want), (weights, tie)
    with pytest.raises(ParameterError, match="within 1..12"):
        lists.sweep([13])


# --------------------------------------------------------------------------- Misclassified


def test_misclassified_matches_knn_core(mnist, capsys):
    at = run_page("misclassified", {"size": SMALL, "k": 3})
    lists = lists_for(mnist, "test")
    order = misclassified(lists, 3)
    table = table_with(at, "confidence")
    assert np.array_equal(table["test digit"], order)
    scores, pred, _ = lists.vote(3)
    assert np.array_equal(table["predicted"], pred[order])
    assert np.allclose(table["confidence"], scores[order].max(axis=1) / 3)
    assert metrics(at)["Wrong"] == f"{len(order):,} of 10,000 test digits"

    # The CLI prints the same table.
    out = cli(capsys, "misclassified", "--k", "3", "--train-size", str(SMALL))
    rows = [line.split() for line in out.splitlines()[3:]]
    assert [int(r[1]) for r in rows] == order.tolist()
    assert [float(r[4]) for r in rows] == [round(v, 4) for v in table["confidence"]]

    # The first (most confidently wrong) digit is open: the vote and its neighbours.
    q = int(order[0])
    assert at.selectbox(key="wrong_open").value == q
    fig = chart(at, "wrong_vote")
    assert np.array_equal(fig["data"][0]["y"], scores[q])
    neighbour_caption_check(grids(at)[1], lists, q, 3, int(pred[q]))
    text = " ".join(m.value for m in at.markdown)
    assert f"Test digit **#{q}** is labelled **{lists.query_labels[q]}**; kNN said **{pred[q]}**" in text

    # Filtered by true and predicted label; the CLI filter agrees.
    at.selectbox(key="wrong_true").set_value(4)
    at.selectbox(key="wrong_pred").set_value(9).run()
    want = order[(lists.query_labels[order] == 4) & (pred[order] == 9)]
    assert np.array_equal(table_with(at, "confidence")["test digit"], want)
    out = cli(capsys, "misclassified", "--k", "3", "--train-size", str(SMALL), "--true", "4", "--predicted", "9")
    assert [int(line.split()[1]) for line in out.splitlines()[3:]] == want.tolist()
    # Opening another digit of the filter.
    if len(want) > 1:
        at.selectbox(key="wrong_open").set_value(int(want[1])).run()
        assert np.array_equal(chart(at, "wrong_vote")["data"][0]["y"], scores[want[1]])


def test_a_clicked_thumbnail_opens_its_digit(mnist):
    """The gallery's click targets are the digits it shows; a click (what the chart's callback stores)
    opens that digit, its vote and its neighbours, and asks for the scroll to it; a forged or stale
    click (not a digit of the list, not a whole number) changes nothing."""
    from pages.misclassified import GALLERY, PICK_KEY, SCROLL_KEY
    at = run_page("misclassified", {"size": SMALL, "k": 3})
    lists = lists_for(mnist, "test")
    order = misclassified(lists, 3)
    scores, pred, _ = lists.vote(3)
    shown = order[:GALLERY].tolist()
    fig = chart(at, f"wrong_gallery_{shown[0]}")
    assert fig["data"][0]["customdata"] == shown
    assert [a["text"] for a in fig["layout"]["annotations"]][:2] == [
        f"#{q}<br>{lists.query_labels[q]} → <b>{pred[q]}</b>" for q in shown[:2]]
    assert len(fig["layout"]["images"]) == len(shown)
    (frame,) = fig["layout"]["shapes"]  # the open digit (the first) framed
    assert frame["x0"] < fig["data"][0]["x"][0] < frame["x1"] and frame["y0"] < fig["data"][0]["y"][0] < frame["y1"]
    assert not any("scrollIntoView" in h.proto.body for h in at.get("html"))

    q = shown[4]
    at.session_state[PICK_KEY] = q
    at.session_state[SCROLL_KEY] = True
    at.run()
    assert not at.exception
    assert at.selectbox(key="wrong_open").value == q
    assert np.array_equal(chart(at, "wrong_vote")["data"][0]["y"], scores[q])
    neighbour_caption_check(grids(at)[1], lists, q, 3, int(pred[q]))
    assert f"Test digit **#{q}** is labelled **{lists.query_labels[q]}**" in " ".join(m.value for m in at.markdown)
    assert sum("scrollIntoView" in h.proto.body for h in at.get("html")) == 1
    fig = chart(at, f"wrong_gallery_{q}")  # a fresh chart: clicking the earlier thumbnail again is a new click
    (frame,) = fig["layout"]["shapes"]
    assert frame["x0"] < fig["data"][0]["x"][4] < frame["x1"] and frame["y0"] < fig["data"][0]["y"][4] < frame["y1"]
    at.run()
    assert not any("scrollIntoView" in h.proto.body for h in at.get("html"))  # scrolled once

    right = int(np.flatnonzero(pred == lists.query_labels)[0])  # classified right: not in the list
    for bad in (right, -1, 10_000, f"{shown[1]}; 1", 3.5, True, [shown[1], shown[2]], {"x": shown[1]}, None):
        at.session_state[PICK_KEY] = bad
        at.run()
        assert not at.exception, bad
        assert at.selectbox(key="wrong_open").value == q, bad
    at.session_state[PICK_KEY] = [shown[2]]  # customdata as a one-item list
    at.run()
    assert at.selectbox(key="wrong_open").value == shown[2]


def test_picked_digit_takes_only_a_listed_whole_number():
    from pages.misclassified import picked_digit

    options = [412, 7, 9000]
    assert [picked_digit(v, options) for v in (412, 7.0, [9000], np.int64(7), "412")] == [412, 7, 9000, 7, 412]
    for bad in (8, 7.5, "8", "412; 1", True, None, [412, 7], [], {"customdata": 412}, -412, 2**70):
        assert picked_digit(bad, options) is None, bad
    assert picked_digit(412, []) is None


def test_misclassified_filter_with_no_digit(mnist):
    at = run_page("misclassified", {"size": SMALL}, state={"wrong_true": 3, "wrong_pred": 3})
    assert any("No misclassified test digit matches" in i.value for i in at.info)


# ------------------------------------------------------------------------- Suspicious labels


def test_suspicious_training_digits_match_knn_core(mnist, capsys):
    at = run_page("suspicious", {"size": SMALL, "k": 7}, state={"suspicious_view": "doubts"})
    loo = lists_for(mnist, "loo")
    idx, frac = suspicious_labels(loo, 7)
    rows = split_data(mnist, "loo", SMALL).train_rows
    table = table_with(at, "disagreement")
    assert np.array_equal(table["train digit"], rows[idx])
    assert np.array_equal(table["disagreement"], frac)
    assert np.array_equal(table["label"], mnist.train_labels[rows[idx]])  # dataset numbers, true labels
    assert np.array_equal(table["kNN says"], loo.predict(7)[idx])
    # The first page of pictures: each digit, then its leave-one-out neighbours.
    shown = with_neighbours(at)
    assert len(shown) == min(10, len(idx))
    assert shown[0][0].startswith(f"#1 train {rows[idx[0]]}\n")
    neighbour_caption_check(shown[0][1], loo, int(idx[0]), 7, int(loo.predict(7)[idx[0]]))
    assert int(idx[0]) not in loo.indices[idx[0], :7]  # never its own neighbour
    # The CLI prints the same ranking.
    out = cli(capsys, "suspicious", "--k", "7", "--train-size", str(SMALL))
    assert [int(line.split()[1]) for line in out.splitlines()[3:]] == rows[idx].tolist()
    assert "python -m knn_core suspicious --k 7 --train-size 1000 --set train" in codes(at)


def test_suspicious_test_digits_use_their_training_neighbours(mnist, capsys):
    at = run_page("suspicious", {"size": SMALL}, state={"suspicious_set": "test", "suspicious_view": "doubts"})
    test = lists_for(mnist, "test")
    d = label_doubts(test, 5)
    table = table_with(at, "disagreement")
    assert np.array_equal(table["test digit"], d["index"])
    assert np.array_equal(table["label"], mnist.test_labels[d["index"]])
    out = cli(capsys, "suspicious", "--k", "5", "--train-size", str(SMALL), "--set", "test", "--limit", "20")
    assert [int(line.split()[1]) for line in out.splitlines()[3:]] == d["index"][:20].tolist()
    # page 2 of the pictures
    at.number_input(key="suspicious_page").set_value(2).run()
    assert with_neighbours(at)[0][0].startswith(f"#11 test {d['index'][10]}\n")


def test_likely_label_errors_are_ranked_the_confident_learning_way(mnist):
    """The page opens on label_issues (not the raw disagreements, which are mostly kNN's own mistakes),
    says what the list is, and marks, in the disagreements, which are likely label errors too."""
    at = run_page("suspicious", {"size": SMALL, "k": 7})
    loo = lists_for(mnist, "loo")
    found = label_issues(loo, 7)
    rows = split_data(mnist, "loo", SMALL).train_rows
    table = table_with(at, "label's share")
    assert np.array_equal(table["train digit"], rows[found["index"]])
    assert np.array_equal(table["likely label"], found["suggested"])
    np.testing.assert_allclose(table["label's share"], found["self_confidence"])
    assert np.all(np.diff(table["label's share"]) >= 0)  # lowest share of its own label first
    n = len(found["index"])
    assert at.metric[0].label == "Likely label errors"
    assert at.metric[0].value == f"{n:,} of {SMALL:,} training digits ({n / SMALL:.2%})"
    assert any("candidates for a person to check" in m.value for m in at.markdown)
    shown = with_neighbours(at)
    assert shown[0][0] == f"#1 train {rows[found['index'][0]]}\nlabel {found['label'][0]}, likely {found['suggested'][0]}"

    at.radio(key="suspicious_view").set_value("doubts").run()
    idx, _ = suspicious_labels(loo, 7)
    doubts = table_with(at, "disagreement")
    assert np.array_equal(doubts["likely label error"], np.isin(idx, found["index"]))
    also = int(np.isin(idx, found["index"]).sum())
    assert 0 < also < len(idx)  # some are label errors, most the method's own disagreements
    assert any(f"Of these, **{also:,}** are also likely label errors" in c.value for c in at.caption)


def test_the_best_method_is_one_click_away(mnist):
    from knn_core.methods import BEST_PRESET, PRESETS

    at = run_page("suspicious", {"size": 500, "k": 3})
    at.button(key="suspicious_best").click()
    at.run()  # the sidebar takes the method; its leave-one-out search may ask first
    assert at.query_params["method"] == BEST_PRESET
    assert at.query_params["k"] == str(PRESETS[BEST_PRESET].k) and at.query_params["weights"] == PRESETS[BEST_PRESET].weights
    assert not at.exception and not any(b.key == "suspicious_best" for b in at.button)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan", "minkowski"])
def test_every_metric_on_a_small_training_set(mnist, metric):
    at = run_page("suspicious", {"size": 500, "metric": metric, "k": 9}, state={"suspicious_view": "doubts"})
    loo = lists_for(mnist, "loo", size=500, metric=metric)
    idx, _ = suspicious_labels(loo, 9)
    assert np.array_equal(table_with(at, "disagreement")["train digit"], split_data(mnist, "loo", 500).train_rows[idx])
    assert not at.error


# ------------------------------------------------------------------- knn_core additions


def tiny_dataset(seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.integers(0, 256, (60, 4, 4), dtype=np.uint8), rng.integers(0, 3, 60),
                   rng.integers(0, 256, (20, 4, 4), dtype=np.uint8), rng.integers(0, 3, 20), n_val=10)


@pytest.mark.parametrize("split", ["test", "val", "loo"])
@pytest.mark.parametrize("size", [None, 30])
def test_is_cached_knows_the_cache_entry(monkeypatch, tmp_path, split, size):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    ds = tiny_dataset()
    assert not is_cached(ds, "euclidean", split, train_size=size)
    neighbor_lists(ds, "euclidean", split, train_size=size, k_max=K_MAX)
    assert is_cached(ds, "euclidean", split, train_size=size)
    assert not is_cached(ds, "cosine", split, train_size=size)
    assert not is_cached(ds, "deskew", split, train_size=size)
    assert not is_cached(tiny_dataset(1), "euclidean", split, train_size=size)


def test_train_rows_are_the_pages_subset(mnist):
    for size in (500, SMALL, 60000):
        assert np.array_equal(split_data(mnist, "test", size).train_rows, ui.get_subset(size))
        assert np.array_equal(split_data(mnist, "loo", size).train_rows, ui.get_subset(size))
    val_rows = split_data(mnist, "val", SMALL).train_rows
    assert len(val_rows) == SMALL and val_rows.max() < len(mnist.fit_labels)


def test_search_estimates_grow_with_size_and_slow_metrics(mnist):
    est = {m: estimate_seconds(mnist, m, "test") for m in ("euclidean", "cosine", "manhattan", "minkowski")}
    assert 2 < est["euclidean"] < 15 and est["minkowski"] > 30 * 60 and est["manhattan"] > 60
    assert est["euclidean"] < ui.jobs.CONFIRM_SECONDS  # the default page searches without asking
    assert 10 < estimate_seconds(mnist, "euclidean", "loo") < 60
    assert estimate_seconds(mnist, "minkowski", "test", 500) < ui.max_browser_seconds()  # a browser may start it
    assert estimate_seconds(mnist, "manhattan", "test", 60000) > ui.max_browser_seconds()  # the command instead


def test_wrong_votes_and_label_doubts_on_synthetic_lists():
    d = np.array([[1., 2, 3], [1, 1, 2], [0, 4, 5], [2, 3, 4]])
    ind = np.array([[0, 1, 2], [1, 2, 3], [3, 0, 1], [2, 3, 0]])
    train_y = np.array([0, 1, 1, 1])
    lists = NeighborLists(d, ind, train_y, np.array([1, 0, 0, 1]), train_rows=np.arange(4))
    w = wrong_votes(lists, 3)
    assert w["index"].tolist() == [1, 2]  # query 1: all three say 1 (confidence 1); query 2: 2 of 3 say 1
    assert w["predicted"].tolist() == [1, 1] and np.allclose(w["confidence"], [1, 2 / 3])
    doubts = label_doubts(lists, 3)
    assert doubts["index"].tolist() == [1, 2] and np.allclose(doubts["disagreement"], [1, 2 / 3])
    assert doubts["predicted"].tolist() == [1, 1]


def test_cli_evaluate_is_the_confusion_page(mnist, capsys):
    out = cli(capsys, "evaluate", "--k", "3", "--train-size", str(SMALL), "--weights", "distance")
    lists = lists_for(mnist, "test")
    rep = report(lists.query_labels, lists.predict(3, weights="distance"))
    assert f"accuracy: {rep.accuracy:.4f}" in out
    assert rep.confusion_table() in out
