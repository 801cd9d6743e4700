"""The Draw page and the shared settings, through Streamlit's AppTest (no browser).

The canvas only exists in a browser (in AppTest it is an unknown element whose
value stays None), so drawings and uploads are handed to
``pages.draw.draw_page(image=..., upload=...)`` by a small script function.
"""
from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    digit_grids,
    on_canvas,
    page_vote_bars,
    png_bytes,
    run_draw,
    shown_text,
    texts,
    vote_bar_colours,
    vote_bars,
)
from streamlit.testing.v1 import AppTest

import ui
from knn_core import KNNClassifier, Method, stratified_subset
from knn_core.testing import png_header_only

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


@pytest.fixture(scope="module")
def reference_clf(full_classifier):
    """knn_core's own classifier with the page's defaults (k=5, euclidean, all 60,000 digits)."""
    return full_classifier


# ------------------------------------------------------------------------- the Draw page


@pytest.mark.parametrize("i", [0, 1, 2, 3])
def test_drawn_digit_is_predicted_like_knn_core(mnist, reference_clf, i):
    image = on_canvas(mnist.test_images[i])
    expected = int(reference_clf.predict(ui.drawing_to_mnist(image)[None])[0])
    assert expected == mnist.test_labels[i]  # these four are easy digits

    at = run_draw(image=image)

    assert [m.label for m in at.metric] == ["Prediction"]
    assert int(at.metric[0].value) == expected
    assert not at.error and not at.warning
    # the neighbour grid: k images, nearest first, with label, distance and rank
    grids = [g for g in digit_grids(at) if len(g) == 5 and g[0][1].startswith("#1")]
    assert len(grids) == 1
    dist, ind = reference_clf.kneighbors(ui.drawing_to_mnist(image)[None])
    for rank, ((alt, cap), d, j) in enumerate(zip(grids[0], dist[0], ind[0]), start=1):
        assert cap.startswith(f"#{rank} ")
        assert f"<b>{mnist.train_labels[j]}</b>" in cap
        assert f"d={d:.4g}" in cap
        assert ("✓" in cap) == (mnist.train_labels[j] == expected)
        assert alt.startswith(f"rank {rank}: a training {mnist.train_labels[j]}")
    # the digit as the model sees it
    assert any(g[0][1] == "What the model sees (28×28)" for g in digit_grids(at) if len(g) == 1)
    # the vote bars (the k neighbours' votes) and the preprocessing expander are there
    assert sum(n for n, _ in vote_bars(page_vote_bars(at)).values()) == 5
    assert any(e.label == "Preprocessing stages" for e in at.expander)


def test_vote_bars_and_stages_drawn_only_when_the_expander_is_open(mnist, reference_clf):
    image = on_canvas(mnist.test_images[0])
    digit = ui.drawing_to_mnist(image)
    votes = np.rint(reference_clf.predict_proba(digit[None])[0] * 5).astype(int)  # uniform: neighbours per class
    assert votes.argmax() == 7
    at = run_draw(image=image)
    # the vote as light HTML bars: one per class with its neighbours and share of the vote, the winner green;
    # no Plotly chart on the Draw page (nothing heavy to load on a phone)
    text = page_vote_bars(at)
    assert vote_bars(text) == {c: (int(n), round(100 * n / 5)) for c, n in enumerate(votes)}
    assert vote_bar_colours(text)[7] == ui.WINNER_COLOUR
    assert "Votes of the 5 nearest neighbours" in text
    assert not at.get("plotly_chart")
    # the stages are built only while their expander is open
    assert [e.label for e in at.expander] == ["Pen width · or classify a photo instead",
                                               "Why this answer? Differences, pixel by pixel", "Preprocessing stages"]
    assert not any(g[0][1].startswith("1. ink") for g in digit_grids(at))
    at.session_state["stages_open"] = True
    at.run()
    stages = [g for g in digit_grids(at) if g[0][1].startswith("1. ink")]
    assert len(stages) == 1 and len(stages[0]) == 4


def test_a_thin_pen_is_thickened_to_mnist_strokes_before_the_search(mnist, reference_clf):
    from knn_core.normalize import MNIST_STROKE, canvas_to_mnist
    from knn_core.testing import simulate_canvas

    image = simulate_canvas(mnist.test_images[0], rng=0, pen="thin", size=0.8)
    as_drawn = canvas_to_mnist(image)
    thickened = ui.drawing_to_mnist(image)
    assert ui.DRAWING_MIN_STROKE == MNIST_STROKE
    assert thickened.sum() > 1.3 * as_drawn.sum()  # hairlines got MNIST's stroke width
    at = run_draw(image=image)
    grids = [g for g in digit_grids(at) if len(g) == 5 and g[0][1].startswith("#1")]
    dist, _ = reference_clf.kneighbors(thickened[None])
    assert [cap.split("d=")[1].split("<")[0] for _, cap in grids[0]] == [f"{d:.4g}" for d in dist[0]]
    assert int(at.metric[0].value) == int(reference_clf.predict(thickened[None])[0])


def test_digit_off_centre_and_small_is_still_read(mnist, reference_clf):
    image = on_canvas(mnist.test_images[0], size=90, at=(180, 10))
    at = run_draw(image=image)
    assert int(at.metric[0].value) == int(reference_clf.predict(ui.drawing_to_mnist(image)[None])[0]) == 7


@pytest.mark.parametrize("image", [None, "blank"], ids=["no-drawing-yet", "cleared-canvas"])
def test_empty_canvas_is_a_friendly_info(image):
    if image == "blank":
        image = np.zeros((280, 280, 4), np.uint8)
        image[:, :, 3] = 255
    at = run_draw(image=image)
    assert not at.metric
    assert not at.error
    assert any("Draw a digit in the box" in t for t in texts(at.info))


@pytest.mark.parametrize(
    "upload, needle",
    [
        (b"this is not an image, just text", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
        (png_header_only(100_000, 100_000), "more than the limit"),
    ],
    ids=["text-file", "corrupt-png", "too-many-pixels"],
)
def test_bad_upload_is_an_error_message_not_a_crash(upload, needle):
    at = run_draw(upload=upload)
    assert not at.metric
    errors = texts(at.error)
    assert len(errors) == 1 and needle in errors[0], errors


def test_blank_paper_upload_says_no_ink():
    paper = np.full((300, 400), 235, np.uint8)
    at = run_draw(upload=png_bytes(paper))
    assert not at.metric and not at.error
    assert any("No ink" in t for t in texts(at.info))


def test_photo_upload_is_classified(mnist):
    """Dark ink on light, slightly uneven paper, as a PNG upload."""
    digit = cv2.resize(mnist.test_images[0], (180, 180), interpolation=cv2.INTER_LINEAR)
    paper = np.tile(np.linspace(215, 245, 320, dtype=np.float32), (300, 1))
    paper[60:240, 70:250] -= digit.astype(np.float32) * 0.7
    at = run_draw(upload=png_bytes(np.clip(paper, 0, 255).astype(np.uint8)))
    assert not at.error
    assert int(at.metric[0].value) == 7


def test_upload_wins_over_the_drawing(mnist):
    image = on_canvas(mnist.test_images[2])  # a 1
    paper = 255 - cv2.resize(mnist.test_images[0], (200, 200))  # a 7, black on white
    at = run_draw(image=image, upload=png_bytes(paper))
    assert int(at.metric[0].value) == 7


def test_a_new_stroke_after_the_photo_is_classified_and_said(mnist):
    """The one changed last wins: the page is told the photo is old news and the drawing new."""
    from pages.draw import _upload_id

    image = on_canvas(mnist.test_images[2])  # a 1
    photo = png_bytes(255 - cv2.resize(mnist.test_images[0], (200, 200)))  # a 7, black on white
    at = run_draw(image=image, upload=photo)
    assert int(at.metric[0].value) == 7
    assert 'alt="your photo the upload"' in " ".join(h.proto.body for h in at.get("html"))  # shown, small
    at.session_state["draw_last_touched"] = (_upload_id(photo), "an older drawing", True)
    at.run()
    assert int(at.metric[0].value) == 1
    bodies = " ".join(h.proto.body for h in at.get("html"))
    assert "Classifying your <b>drawing</b> (changed last)" in bodies and 'alt="your photo' not in bodies


def test_an_upload_is_decoded_once_whatever_reruns(mnist, monkeypatch):
    """Decoding is most of an upload's cost (a 2000 x 2000 PNG: ~0.1 s): strokes, reruns and the
    preview beside the Prediction reuse the one decode of the upload."""
    import knn_core.photo as photo_module

    decodes = []
    real = photo_module._decode_photo
    monkeypatch.setattr(photo_module, "_decode_photo", lambda *a, **kw: decodes.append(1) or real(*a, **kw))
    photo = png_bytes(255 - cv2.resize(mnist.test_images[0], (200, 200)))  # a 7, black on white
    at = run_draw(upload=photo)
    for _ in range(3):
        assert int(at.metric[0].value) == 7
        assert 'alt="your photo the upload"' in " ".join(h.proto.body for h in at.get("html"))
        at.run()
    assert len(decodes) == 1


@pytest.fixture(scope="module")
def tied_drawing(mnist, reference_clf):
    """A drawn test digit whose 2 nearest training digits have different labels."""
    n = 1000
    queries = np.stack([ui.drawing_to_mnist(on_canvas(mnist.test_images[i])) for i in range(n)])
    _, ind = reference_clf.kneighbors(queries, n_neighbors=2)
    labels = mnist.train_labels[ind]
    i = int(np.flatnonzero(labels[:, 0] != labels[:, 1])[0])
    return on_canvas(mnist.test_images[i]), tuple(sorted(labels[i].tolist())), int(labels[i, 0])


@pytest.mark.parametrize("tie", ["smallest", "nearest"])
def test_tie_is_explained(tied_drawing, tie):
    image, classes, nearest_label = tied_drawing
    at = run_draw(image=image, params={"k": "2", "tie": tie})
    assert at.sidebar.slider[0].value == 2
    winner = min(classes) if tie == "smallest" else nearest_label
    assert int(at.metric[0].value) == winner
    warnings = texts(at.warning)
    assert len(warnings) == 1
    assert f"Tie between {classes[0]}, {classes[1]}" in warnings[0]
    rule = "smallest label wins" if tie == "smallest" else "nearest tied neighbour wins"
    assert rule in warnings[0] and f"so {winner}" in warnings[0]


def test_settings_change_the_view_but_not_the_shared_classifier(mnist):
    image = on_canvas(mnist.test_images[1])
    at = run_draw(image=image, params={"k": "7", "weights": "distance", "size": "2000"})
    assert (at.sidebar.slider[0].value, at.selectbox(key="setting_weights").value) == (7, "distance")
    assert at.sidebar.select_slider[0].value == 2000
    grids = [g for g in digit_grids(at) if len(g) == 7]
    assert len(grids) == 1
    assert "2,000 training digits" in shown_text(at)
    fitted = ui.get_fitted(Method.classic("euclidean"), 2000)
    assert (fitted.n_neighbors, fitted.weights, fitted.tie_break) == (5, "uniform", "smallest")
    assert fitted.n_samples_fit_ == 2000


@pytest.mark.parametrize("metric", ["manhattan", "minkowski", "cosine"])
def test_every_metric_works_on_a_subset(mnist, metric):
    image = on_canvas(mnist.test_images[3])
    idx = stratified_subset(mnist.train_labels, 1000, random_state=0)
    ref = KNNClassifier(n_neighbors=3, metric=metric, p=3, weights="distance").fit(
        mnist.train_images[idx], mnist.train_labels[idx])
    at = run_draw(image=image, params={"metric": metric, "size": "1000", "k": "3", "weights": "distance"})
    assert int(at.metric[0].value) == int(ref.predict(ui.drawing_to_mnist(image)[None])[0])
    dist, _ = ref.kneighbors(ui.drawing_to_mnist(image)[None])
    grid = [g for g in digit_grids(at) if len(g) == 3][0]
    assert [f"d={d:.4g}" in cap for (_, cap), d in zip(grid, dist[0])] == [True] * 3


# -------------------------------------------------------------------- the app and the URL


def test_app_entry_point_runs_and_shows_the_draw_page(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["✏️ Draw a digit"]
    assert any("Draw a digit in the box" in t for t in texts(at.info))
    # On the Draw page the settings' widgets wait in a folded section, under a line saying the settings;
    # no widget at all until asked (the pen's slider too), only the upload
    assert not at.sidebar.slider and not at.sidebar.selectbox and not at.slider
    assert texts(at.sidebar.caption)[0] == ("k=5, euclidean, uniform votes, tie rule smallest, "
                                            "60,000 training digits")
    assert dict(at.query_params) == {"k": "5", "method": "classic", "metric": "euclidean", "weights": "uniform",
                                     "tie": "smallest", "size": "60000"}
    at.session_state["settings_open"] = True
    at.run()
    assert [s.label for s in at.sidebar.slider] == ["k (neighbours)"]
    assert [s.label for s in at.sidebar.selectbox] == ["Method", "Distance", "Vote weights", "Tie rule"]


def test_a_link_sets_the_folded_settings_and_a_bad_value_still_warns(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"k": "7", "weights": "distance", "tie": "bogus"})
    at.run()
    assert not at.exception and not at.sidebar.slider
    warnings = texts(at.warning)
    assert len(warnings) == 1 and "**tie**" in warnings[0]
    assert texts(at.sidebar.caption)[0] == ("k=7, euclidean, distance votes, tie rule smallest, "
                                            "60,000 training digits")
    assert (at.query_params["k"], at.query_params["tie"]) == ("7", "smallest")


def test_settings_chosen_in_the_folded_section_stay_when_it_is_folded(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["k"] = "9"
    at.session_state["settings_open"] = True
    at.run()
    assert at.sidebar.slider[0].value == 9  # the link's value
    at.sidebar.slider[0].set_value(3).run()
    at.selectbox(key="setting_weights").set_value("distance").run()
    at.session_state["settings_open"] = False
    at.run()
    assert not at.sidebar.slider
    assert at.query_params["k"] == "3" and at.query_params["weights"] == "distance"
    assert texts(at.sidebar.caption)[0].startswith("k=3, euclidean, distance votes")
    at.run()  # and again, with the widgets gone for a whole run
    assert at.query_params["k"] == "3" and at.query_params["weights"] == "distance"
    at.session_state["settings_open"] = True
    at.run()
    assert at.sidebar.slider[0].value == 3 and at.selectbox(key="setting_weights").value == "distance"


def test_the_pen_width_is_kept_while_its_slider_is_folded(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.slider  # folded: no slider, and the pen has its default width
    at.session_state["draw_controls"] = True
    at.run()
    assert [(s.label, s.value) for s in at.slider] == [("Pen width", ui.PEN_DEFAULT)]
    at.slider[0].set_value(30).run()
    at.session_state["draw_controls"] = False
    at.run()
    assert not at.slider and at.session_state["draw_pen"] == 30
    at.run()
    at.session_state["draw_controls"] = True
    at.run()
    assert at.slider[0].value == 30


def test_bad_query_params_warn_and_fall_back_to_defaults(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"k": "1000000000", "metric": "bogus", "size": "abc", "weights": "distance"})
    at.session_state["settings_open"] = True  # the Draw page's settings, unfolded
    at.run()
    assert not at.exception
    warnings = texts(at.warning)
    assert len(warnings) == 3, warnings
    for name in ("**k**", "**metric**", "**size**"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)
    assert at.sidebar.slider[0].value == 5
    assert at.selectbox(key="setting_metric").value == "euclidean"
    assert at.selectbox(key="setting_weights").value == "distance"  # the valid one is kept
    assert at.sidebar.select_slider[0].value == 60000
    # the URL now holds the values in use, so the warnings do not come back
    assert at.query_params["k"] == "5" and at.query_params["metric"] == "euclidean"
    at.run()
    assert not at.warning


def test_widget_changes_go_into_the_url_and_survive_reruns(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["k"] = "9"
    at.session_state["settings_open"] = True  # the Draw page's settings, unfolded
    at.run()
    assert at.sidebar.slider[0].value == 9
    at.sidebar.slider[0].set_value(3).run()
    at.selectbox(key="setting_metric").set_value("manhattan").run()
    assert at.query_params["k"] == "3" and at.query_params["metric"] == "manhattan"
    at.run()
    assert at.sidebar.slider[0].value == 3 and at.selectbox(key="setting_metric").value == "manhattan"


# ------------------------------------------------------------ settings validation (pure)


def test_settings_spec_matches_the_dataclass():
    assert [s.key for s in ui.SETTINGS] == list(ui.Settings.__dataclass_fields__)
    defaults = ui.Settings()
    assert all(getattr(defaults, s.key) == s.default for s in ui.SETTINGS)
    assert defaults.as_query() == {"k": "5", "method": "classic", "metric": "euclidean", "weights": "uniform",
                                   "tie": "smallest", "size": "60000"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.k = 3  # type: ignore[misc]  # frozen


def test_valid_query_values_are_parsed():
    values, warnings = ui.settings_from_query(
        {"k": " 50 ", "metric": "Minkowski", "weights": "distance", "tie": "random",
         "size": "500", "other": "ignored"})
    assert warnings == []
    assert values == {"k": 50, "metric": "minkowski", "weights": "distance", "tie": "random", "size": 500}
    assert ui.settings_from_query({}) == ({}, [])
    assert ui.settings_from_query({"k": ["3", "4"]}) == ({"k": 4}, [])  # repeated: the last one


@pytest.mark.parametrize(
    "key, raw, problem",
    [
        ("k", "1000000000", "outside 1..50"),
        ("k", "0", "outside 1..50"),
        ("k", "-3", "outside 1..50"),
        ("k", "2.5", "not a whole number"),
        ("k", "", "not a whole number"),
        ("k", "1e9", "not a whole number"),
        ("metric", "bogus", "not one of euclidean, manhattan, minkowski, cosine"),
        ("weights", "heavy", "not one of uniform, distance"),
        ("tie", "coin", "not one of smallest, nearest, random"),
        ("size", "abc", "not one of 500, 1000"),
        ("size", "3000", "not one of"),
        ("size", "99999999999999999999999", "not one of"),
    ],
)
def test_invalid_query_values_warn_naming_the_parameter(key, raw, problem):
    values, warnings = ui.settings_from_query({key: raw})
    assert values == {}
    assert len(warnings) == 1
    assert f"**{key}**" in warnings[0]
    shown = re.sub(r"\\(.)", r"\1", warnings[0])  # as rendered: user text is Markdown-escaped (ui.md_escape)
    assert problem in shown and f"default {key}=" in shown


def test_one_bad_parameter_does_not_spoil_the_others():
    values, warnings = ui.settings_from_query({"k": "7", "metric": "bogus", "size": "1000"})
    assert values == {"k": 7, "size": 1000}
    assert len(warnings) == 1 and "**metric**" in warnings[0]


def test_digit_grid_html_is_crisp_and_escaped():
    img = np.zeros((28, 28), np.uint8)
    img[5:20, 10:14] = 200
    body = ui.digit_grid_html([img, img], ["#1 ✓ **7**\nd=12", "<script>x</script>"], scale=3,
                              borders=[ui.GREEN, None])
    assert body.count("<img ") == 2 and "<script>" not in body and "&lt;script&gt;" in body
    assert "<b>7</b><br>d=12" in body
    assert "border:3px solid rgb(46, 204, 64)" in body and "rgb(90, 90, 90)" in body
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', body).group(1)
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert (decoded == img).all()  # sent as it is (small); the browser enlarges it by whole pixels:
    assert 'width="84" height="84"' in body and "image-rendering:pixelated" in body


def test_enlarge_keeps_pixels_crisp():
    img = np.array([[0, 255], [128, 7]], np.uint8)
    big = ui.enlarge(img, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert set(np.unique(big)) == {0, 7, 128, 255}
    assert (big[:3, 3:] == 255).all() and (big[3:, :3] == 128).all()
    tile = ui.digit_tile(img, 2, border=ui.GREEN, width=1)
    assert tile.shape == (6, 6, 3)
    assert tuple(tile[0, 0]) == ui.GREEN and tuple(tile[1, 3]) == (255, 255, 255)


# -------------------------------------------------------------- what a stroke costs the server


@pytest.mark.slow
def test_a_stroke_reruns_only_the_drawing_fragment(server_url, reference_clf):
    """A real server, spoken to as a browser does (loadtest.protocol): the canvas lives in an
    st.fragment, so a stroke reruns the fragment alone (script_finished 3) and the sidebar's
    widgets are not rebuilt, while the prediction matches knn_core's."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from loadtest.payloads import drawings
    from loadtest.protocol import Session

    (png, label), = drawings(1, seed=3)

    async def stroke(url):
        async with Session(url) as s:
            return dict(s.widget_fragments), await s.draw(png)

    with ThreadPoolExecutor(1) as thread:
        # In a thread of its own: the browser tests' Playwright keeps an event loop running in this one.
        first, result = thread.submit(asyncio.run, stroke(server_url)).result()

    assert first["canvas"]
    assert first["file_uploader"] == ""  # outside the fragment
    assert "setting_k" not in first and "pen_width" not in first  # folded away: not drawn at all
    assert result.finish == 3 and not result.exceptions  # FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    assert "canvas" in result.widgets
    assert not [w for w in result.widgets if w.startswith("setting_") or w in ("pen_width", "file_uploader")]
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = reference_clf.predict(ui.drawing_to_mnist(image)[None])[0]
    assert result.prediction == str(expected)


def test_start_server_limits_blas_and_opencv_threads_and_fits_the_default_classifier():
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    cv2_threads = cv2.getNumThreads()
    with threadpool_limits(limits=None):  # restores the process' limits afterwards
        try:
            ui.start_server.cache_clear()
            ui.start_server()
            assert blas and all(p["num_threads"] == ui.SERVER_BLAS_THREADS
                                for p in threadpool_info() if p["user_api"] == "blas")
            assert cv2.getNumThreads() == 1
        finally:
            cv2.setNumThreads(cv2_threads)
        for thread in threading.enumerate():  # the default classifier, fitted in the background
            if thread.name == "knn-lab-warm-up":
                thread.join()
    assert ui.resources.is_fitted(ui.Settings().search, ui.Settings().size)
    # and the default settings' non-digit refusal calibrated, unless it cannot be (its search not cached, slow)
    s = ui.Settings()
    calibrated = (s.search, s.size, s.k, s.weights, s.tie) in ui.explain._RULES
    assert calibrated or ui.explain.rule(s, spinner=False) is None


def test_the_theme_is_read_once_and_stays_what_streamlit_would_read():
    """ui.read_theme_once (start_server): the theme sections as Streamlit's own scan gives them, read once."""
    from streamlit import config

    def scanned(section):
        return {o.name: o.value for o in config.get_config_options().values() if o.section == section}

    ui.resources.read_theme_once()
    ui.resources.read_theme_once()  # a second call keeps the first wrapper
    assert getattr(config.get_options_for_section, "reads_theme_once", False)
    sections = {o.section for o in config.get_config_options().values()}
    assert {"theme", "theme.sidebar", "theme.light", "theme.dark.sidebar", "server"} <= sections
    for section in sorted(sections):
        got = config.get_options_for_section(section)
        assert got == scanned(section), section
        got.clear()  # a caller changing what it got changes nothing for the next
        assert config.get_options_for_section(section) == scanned(section), section


def test_the_servers_gil_switch_interval_comes_from_the_environment_within_bounds(monkeypatch):
    import sys

    monkeypatch.delenv(ui.resources.GIL_SWITCH_ENV, raising=False)
    assert ui.resources.gil_switch_ms() == ui.resources.GIL_SWITCH_MS == 1.0
    for given, used in [("5", 5.0), ("0.5", 0.5), ("0", 1.0), ("1e9", 1.0), ("fast", 1.0), ("nan", 1.0)]:
        monkeypatch.setenv(ui.resources.GIL_SWITCH_ENV, given)
        assert ui.resources.gil_switch_ms() == used, given
    before = sys.getswitchinterval()
    try:
        monkeypatch.setenv(ui.resources.GIL_SWITCH_ENV, "2")
        ui.start_server.cache_clear()
        ui.start_server()
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        sys.setswitchinterval(before)
