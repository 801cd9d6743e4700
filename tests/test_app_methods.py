"""The "Method" setting: the pages show what a knn_core.methods preset finds, with its distance.

Small training subsets keep the searches quick; the numbers on the pages are
compared with KNNClassifier(method=...) / neighbor_lists for the same settings, searched here
(use_cache=False), never read from the disk cache the page under test filled.
"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    SMALL,
    chart,
    cli,
    codes,
    digit_grids,
    figures,
    grids,
    metrics,
    neighbour_caption_check,
    on_canvas,
    run_draw,
    run_page,
    run_vote,
    shown_text,
    texts,
)

import ui
from knn_core import (
    PRESETS,
    KNNClassifier,
    Method,
    cache,
    estimate_seconds,
    is_cached,
    neighbor_lists,
    split_data,
    stratified_subset,
)

_references: dict = {}


def reference_lists(ds, method: str, split: str = "test", size: int = SMALL):
    """knn_core's neighbour lists of a method preset, searched here (use_cache=False: never what the
    page under test left in the disk cache), once per session."""
    key = (id(ds), method, split, size)
    if key not in _references:
        _references[key] = neighbor_lists(ds, method, split, train_size=size, use_cache=False)
    return _references[key]


def fitted(ds, method: str, size: int = SMALL, **params) -> KNNClassifier:
    keep = stratified_subset(ds.train_labels, size, random_state=0)
    return KNNClassifier(method=method, **params).fit(ds.train_images[keep], ds.train_labels[keep])


# ------------------------------------------------------------------------------ settings


def test_method_is_a_setting_in_the_url():
    values, warnings = ui.settings_from_query({"method": "IDM"})
    assert values == {"method": "idm"} and not warnings
    values, warnings = ui.settings_from_query({"method": "magic"})
    assert not values and "method" in warnings[0] and "magic" in warnings[0]
    assert "plain" not in ui.METHODS  # plain L2 is classic kNN with the euclidean distance
    s = ui.Settings(method="deskew+blur+L3+shift1", metric="cosine")
    assert s.search == Method.parse("deskew+blur+L3+shift1") and s.search.preset == "deskew+blur+L3+shift1"
    assert "L3 distance" in s.distance_label
    assert ui.Settings(metric="cosine").search == Method.classic("cosine")
    assert ui.with_search(s, Method.classic("manhattan")) == ui.Settings(metric="manhattan")
    assert ui.with_search(ui.Settings(), Method.parse("idm"), weights="distance") == ui.Settings(method="idm",
                                                                                                weights="distance")


def test_cli_command_names_the_method_and_its_weights():
    s = ui.Settings(k=6, method="deskew+blur+L3+shift1", weights="distance", size=SMALL)
    assert ui.cli_command("evaluate", s) == ("python -m knn_core evaluate --k 6 --method deskew+blur+L3+shift1 "
                                             "--train-size 1000 --weights distance")
    # uniform is said too: without --weights a method votes with its own (validated) weights
    assert ui.cli_command("evaluate", ui.Settings(method="idm")).endswith("--method idm --weights uniform")


def test_a_method_disables_the_distance_setting(mnist):
    at = run_draw(params={"method": "deskew", "size": str(SMALL)})
    assert not at.warning
    metric = at.selectbox(key="setting_metric")
    assert metric.disabled and "Set by the method" in metric.help
    assert at.query_params["method"] == ["deskew"] or at.query_params["method"] == "deskew"
    at = run_draw(params={"size": str(SMALL)})
    assert not at.selectbox(key="setting_metric").disabled


# ------------------------------------------------------------------------------ Draw page


@pytest.mark.parametrize("method", ["deskew+blur+L3+shift1", "idm"])
def test_draw_page_shows_the_methods_neighbours_and_distance(mnist, method):
    image = on_canvas(mnist.test_images[3])
    digit = ui.drawing_to_mnist(image)
    clf = fitted(mnist, method, n_neighbors=5)
    nb = clf.kneighbors_detail(digit[None], 5)
    expected = clf.explain(nb.distances[0], nb.indices[0]).winner

    at = run_draw(image=image, params={"method": method, "size": str(SMALL)})

    assert not at.error and not at.warning
    assert int(at.metric[0].value) == expected
    name = PRESETS[method].recipe.distance_name
    assert f"by {name}" in shown_text(at)
    grid = [g for g in digit_grids(at) if len(g) == 5 and g[0][1].startswith("#1")]
    assert len(grid) == 1
    y = clf.classes_[clf._y]
    for rank, ((_alt, cap), d, j, (dy, dx)) in enumerate(
            zip(grid[0], nb.distances[0], nb.indices[0], nb.shifts[0]), start=1):
        assert cap.startswith(f"#{rank} ") and f"<b>{y[j]}</b>" in cap and f"d={d:.4g}" in cap
        assert ("moved" in cap) == bool(dy or dx)
        if dx or dy:
            assert ui.shift_arrows(int(dy), int(dx)) in cap
    # the digit as the method compares it beside the drawn one
    assert any(len(g) == 2 and g[1][1].startswith("As the method compares it") for g in digit_grids(at))


def test_shift_arrows():
    assert ui.shift_arrows(0, 0) == ""
    assert ui.shift_arrows(1, -2) == "←2 ↓1"
    assert ui.shift_arrows(-1, 1) == "→1 ↑1"


def test_neighbour_vote_page_places_the_methods_neighbours(mnist):
    image = on_canvas(mnist.test_images[0])
    from ui import EXTRA_SHOWN

    clf = fitted(mnist, "deskew+blur", n_neighbors=5)
    n = 5 + EXTRA_SHOWN  # k, and the faded ones outside the voting circle
    d, i = clf.kneighbors(ui.drawing_to_mnist(image)[None], n)
    at = run_vote(image=image, params={"method": "deskew+blur", "size": str(SMALL)})
    assert not at.error and not at.warning
    hover = figures(at)["radial"]["data"][0]["text"]
    assert len(hover) == n
    for r, (t, dist) in enumerate(zip(hover, d[0]), start=1):
        assert t.startswith(f"#{r} ") and f"distance {dist:.4g}" in t
    assert int(at.metric[0].value) == clf.explain(d[0, :5], i[0, :5]).winner
    assert any("deskew + blur, L2 (euclidean distance)" in c for c in texts(at.caption))


# ------------------------------------------------------------------------------ analysis pages


def test_confusion_page_with_a_method_matches_knn_core_and_the_cli(mnist, capsys):
    at = run_page("confusion", {"method": "deskew", "size": SMALL})
    lists = reference_lists(mnist, "deskew")
    acc = lists.accuracy(5)
    assert metrics(at)["Accuracy"] == f"{acc:.4f}"
    assert acc > reference_lists(mnist, "plain").accuracy(5)  # deskewing helps
    line = "python -m knn_core evaluate --k 5 --method deskew --train-size 1000 --weights uniform"
    assert line in codes(at)
    out = cli(capsys, *line.split()[3:])
    assert f"accuracy: {acc:.4f}" in out and "method=deskew" in out


def test_misclassified_page_with_a_method(mnist):
    at = run_page("misclassified", {"method": "deskew+blur", "size": SMALL, "k": 3})
    lists = reference_lists(mnist, "deskew+blur")
    wrong = int((lists.predict(3) != lists.query_labels).sum())
    assert metrics(at)["Wrong"] == f"{wrong:,} of {len(lists.query_labels):,} test digits"
    q = at.selectbox(key="wrong_open").value  # the most confidently wrong digit is open
    neighbour_caption_check(grids(at)[1], lists, q, 3, int(lists.predict(3)[q]))


def test_k_sweep_compares_methods_with_metrics(mnist):
    at = run_page("k_sweep", {"size": SMALL}, state={"compare_metrics": [Method.classic("euclidean"), Method.parse("deskew")],
                                                    "compare_weights": ["uniform"]})
    fig = chart(at, "compare_chart")
    curves = {t["name"]: t["y"] for t in fig["data"] if t.get("mode") == "lines"}
    val = reference_lists(mnist, "deskew", "val")
    want = val.sweep(range(1, 51))
    got = curves[f"{ui.search_label(Method.parse('deskew'))}, uniform"]
    assert np.allclose(got, want)
    assert any("sweep --method deskew" in c for c in codes(at))


# ------------------------------------------------------------------------------ knn_core support


def test_neighbor_lists_of_a_recipe_on_a_training_subset(mnist):
    from knn_core import Dataset

    # all 60,000 training digits (a subset of SMALL is taken from them), 50 test digits: a quick search
    ds = Dataset(mnist.train_images, mnist.train_labels, mnist.test_images[:50], mnist.test_labels[:50])
    lists = neighbor_lists(ds, "deskew+blur+L3+shift1", "test", train_size=SMALL, k_max=7, use_cache=False)
    clf = fitted(mnist, "deskew+blur+L3+shift1")
    nb = clf.kneighbors_detail(mnist.test_images[:50], 7)
    assert np.array_equal(lists.indices, nb.indices)
    assert np.array_equal(lists.distances, nb.distances)
    assert np.array_equal(lists.shifts, nb.shifts)
    rows = split_data(mnist, "test", SMALL).train_rows
    assert np.array_equal(rows, stratified_subset(mnist.train_labels, SMALL))  # the classifier's training digits
    assert np.array_equal(lists.train_rows, rows)
    assert np.array_equal(lists.train_labels, mnist.train_labels[rows])
    assert len(lists.train_labels) == SMALL


def test_recipe_cache_entries_are_per_training_size(mnist, monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert not is_cached(mnist, "deskew", "val", train_size=500)
    neighbor_lists(mnist, "deskew", "val", train_size=500)
    assert is_cached(mnist, "deskew", "val", train_size=500)
    assert not is_cached(mnist, "deskew", "val", train_size=1000)
    assert not is_cached(mnist, "deskew", "val")
    assert not is_cached(mnist, "deskew+blur", "val", train_size=500)


def test_recipe_estimates_grow_with_shifts_and_reranking(mnist):
    t = {name: estimate_seconds(mnist, name, "test") for name in PRESETS}
    assert t["deskew"] < t["deskew+blur+L3"] < t["deskew+blur+L3+shift1"] < t["deskew+blur+L3+shift2"]
    assert 60 <= t["idm"] <= 900  # measured ~4 min
    assert estimate_seconds(mnist, "idm", "test", 1000) < t["idm"]


def test_cli_method_defaults_to_the_presets_vote(mnist, capsys):
    preset = PRESETS["deskew"]
    assert (preset.k, preset.weights) != (5, "uniform")  # not the classic defaults
    out = cli(capsys, "evaluate", "--method", "deskew", "--train-size", str(SMALL))
    assert f"k={preset.k} method=deskew weights={preset.weights}" in out
    lists = reference_lists(mnist, "deskew")
    assert f"accuracy: {lists.accuracy(preset.k, weights=preset.weights):.4f}" in out


def test_the_sidebar_offers_the_methods_validated_vote(mnist):
    preset = PRESETS["deskew+blur"]
    at = run_draw(params={"method": "deskew+blur", "size": str(SMALL), "k": "9"})
    button = at.button(key="use_method_vote")
    assert f"k={preset.k}, {preset.weights} weights" in button.label
    button.click().run()
    assert at.slider(key="setting_k").value == preset.k
    assert at.selectbox(key="setting_weights").value == preset.weights
    assert not [b for b in at.button if b.key == "use_method_vote"]
    assert any("chosen on validation" in c for c in texts(at.sidebar.caption))
