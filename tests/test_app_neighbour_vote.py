"""The Neighbour vote page (AppTest, drawings handed in) and the map it shows (knn_core.embedding)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import figures, on_canvas, run_vote, texts
from streamlit.testing.v1 import AppTest

import ui
from knn_core.embedding import SHIPPED, DigitMap, compute_map, load_map, place, read_map, write_map

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60
pytestmark = pytest.mark.usefixtures("no_cache_warnings")  # the page shows the cache warnings it has seen


@pytest.fixture(scope="module")
def reference(full_classifier):
    return full_classifier


@pytest.fixture(scope="module")
def k_changes_the_vote(mnist, reference):
    """A drawn test digit whose prediction with k=1 differs from the one with k=15."""
    for i in range(300):
        image = on_canvas(mnist.test_images[i])
        _, ind = reference.kneighbors(ui.drawing_to_mnist(image)[None], n_neighbors=15)
        labels = mnist.train_labels[ind[0]]
        p1 = int(labels[0])
        p15 = int(np.bincount(labels, minlength=10).argmax())
        if p1 != p15 and np.bincount(labels, minlength=10).max() > np.sort(np.bincount(labels, minlength=10))[-2]:
            return image, p1, p15
    pytest.fail("no test digit among the first 300 changes its vote between k=1 and k=15")


# ---------------------------------------------------------------------------------- the page


def test_the_vote_is_drawn_around_the_digit(mnist, reference):
    image = on_canvas(mnist.test_images[0])
    digit = ui.drawing_to_mnist(image)
    dist, ind = reference.kneighbors(digit[None], n_neighbors=10)
    at = run_vote(image)

    assert [m.label for m in at.metric] == ["Prediction"]
    assert int(at.metric[0].value) == int(reference.predict(digit[None])[0]) == 7
    figs = figures(at)
    assert set(figs) == {"radial", "tally", "map"}

    radial = figs["radial"]["layout"]
    # k + 5 neighbours and the drawing in the centre, each a picture in a frame
    assert len(radial["images"]) == 5 + 5 + 1
    voters = [im for im in radial["images"][:-1] if im.get("opacity", 1) == 1]
    assert len(voters) == 5
    centre = radial["images"][-1]
    assert (centre["x"], centre["y"]) == (0, 0)
    # the 5 voters inside the circle, the 5 others outside, nearer ones nearer the centre
    from ui.radar import OUTSIDE_RING, VOTE_RADIUS, VOTER_RING

    r = np.array([np.hypot(im["x"], im["y"]) for im in radial["images"][:-1]])
    assert np.all(r[:5] < VOTE_RADIUS) and np.all(r[5:] > VOTE_RADIUS)
    assert np.all(np.diff(r[:5]) >= -1e-9) and np.all(np.diff(r[5:]) >= -1e-9)
    np.testing.assert_allclose([r[0], r[4], r[5], r[9]], [*VOTER_RING, *OUTSIDE_RING])
    # in proportion to the distances within each ring
    np.testing.assert_allclose((r[:5] - r[0]) / (r[4] - r[0]), (dist[0][:5] - dist[0][0]) / (dist[0][4] - dist[0][0]))
    circle = [s for s in radial["shapes"] if s["type"] == "circle"]
    assert len(circle) == 1 and circle[0]["x1"] == VOTE_RADIUS
    # hover text names label, distance and training index
    hover = figs["radial"]["data"][0]["text"]
    assert hover[0].startswith(f"#1 · digit {mnist.train_labels[ind[0][0]]} · distance {dist[0][0]:.4g}")

    tally = figs["tally"]["data"][0]
    assert tally["y"][7] == 5 and sum(tally["y"]) == 5
    assert figs["tally"]["layout"]["yaxis"]["tickformat"] == "d" and figs["tally"]["layout"]["yaxis"]["dtick"] == 1
    assert "5 neighbours vote (one vote each): 7×5 → **7**." in texts(at.caption)


def test_k_slider_changes_who_votes_and_the_result(k_changes_the_vote):
    image, p1, p15 = k_changes_the_vote
    at = run_vote(image, params={"k": "1"})
    assert at.slider(key="vote_k").value == 1
    assert int(at.metric[0].value) == p1

    at.slider(key="vote_k").set_value(15).run()
    assert not at.exception
    assert int(at.metric[0].value) == p15
    # the shared setting and the link follow the page's slider
    assert at.sidebar.slider[0].value == 15
    assert at.query_params["k"] == "15"
    radial = figures(at)["radial"]["layout"]
    assert sum(im.get("opacity", 1) == 1 for im in radial["images"][:-1]) == 15
    assert "k = 15" in radial["annotations"][0]["text"]

    # and the other way round: the sidebar moves the page's slider
    at.sidebar.slider[0].set_value(3).run()
    assert at.slider(key="vote_k").value == 3
    assert at.query_params["k"] == "3"


def _answers_by_k(at: AppTest) -> list[int]:
    """The answer at k = 1, 2, ... from the strip under the tally."""
    strip = [h.proto.body for h in at.get("html") if "answers-by-k" in h.proto.body]
    assert len(strip) == 1
    return [int(a) for _, a in re.findall(r'title="k=(\d+): (\d+)"', strip[0])]


def test_the_answer_at_each_k_is_shown(mnist, k_changes_the_vote, reference):
    image, p1, p15 = k_changes_the_vote
    at = run_vote(image, params={"k": "4"})
    answers = _answers_by_k(at)
    assert len(answers) == 15 and answers[0] == p1 and answers[-1] == p15
    assert answers[3] == int(at.metric[0].value)  # k=4, the current one
    _, ind = reference.kneighbors(ui.drawing_to_mnist(image)[None], n_neighbors=15)
    for k in (2, 7, 11):
        counts = np.bincount(mnist.train_labels[ind[0][:k]], minlength=10)
        assert answers[k - 1] == int(np.flatnonzero(counts == counts.max())[0])  # uniform votes, smallest on ties


def test_the_strip_gives_what_a_classifier_with_each_k_says(mnist):
    """ui.radar.answers_by_k (one neighbour search, then a vote over the first k) against a classifier
    per k (its own search of k neighbours, its own vote), with every weighting and tie rule, on digits
    with many tied votes."""
    import copy

    from knn_core import KNNClassifier
    from ui.radar import answers_by_k

    # few training digits: near votes, many ties; one fit shared by the copies (as ui.classifier does)
    fitted = KNNClassifier(random_state=3).fit(mnist.train_images[:300], mnist.train_labels[:300])
    queries = mnist.test_images[:40]
    ks = list(range(1, 16))
    ties = 0
    for weights in ("uniform", "distance"):
        for tie in ("smallest", "nearest", "random"):
            per_k = {k: copy.copy(fitted).set_params(n_neighbors=k, weights=weights, tie_break=tie) for k in ks}
            if tie == "random":  # one digit at a time, as the page asks: the draws go by tied digit of a batch
                want = np.array([[per_k[k].predict(q[None])[0] for k in ks] for q in queries])
            else:
                want = np.array([per_k[k].predict(queries) for k in ks]).T
            dist, ind = per_k[15].kneighbors(queries)
            got = np.array([answers_by_k(per_k[15], d, i, ks) for d, i in zip(dist, ind)])
            assert np.array_equal(got, want), (weights, tie)
            ties += int(np.sum(per_k[2].vote_from_neighbors(dist, ind, k=2)[2].sum(axis=1) > 1))
    assert ties > 10  # the tie rules were exercised


def test_a_ready_made_example_is_one_click_away_and_flips_with_k(mnist, full_test_lists):
    from knn_core.evaluate import k_flips

    flips = k_flips(full_test_lists)
    first, wins = int(flips["index"][0]), flips["winners"][0]
    at = run_vote(None, params={"k": "1"})
    find = [b for b in at.button if b.key == "vote_examples_find"]
    if find:  # the test lists are not on disk yet: the page asks before searching
        find[0].click().run()
    assert [b.key for b in at.button if b.key.startswith("vote_example_")] == [
        f"vote_example_{i}" for i in flips["index"]]
    at.button(key=f"vote_example_{first}").click().run()
    assert not at.exception
    assert int(at.metric[0].value) == wins[0] == full_test_lists.predict(1)[first]
    assert any(f"test digit #{first}, labelled {mnist.test_labels[first]}" in t for t in texts(at.info))
    assert _answers_by_k(at) == wins.tolist()
    at.slider(key="vote_k").set_value(15).run()
    assert int(at.metric[0].value) == wins[-1] != wins[0]
    at.button(key="vote_example_off").click().run()  # back to the drawing: nothing drawn here
    assert not at.metric


def test_distance_weights_show_in_the_tally(mnist):
    at = run_vote(on_canvas(mnist.test_images[1]), params={"weights": "distance", "k": "7"})
    tally = figures(at)["tally"]
    assert tally["layout"]["title"]["text"] == "Share of the vote (each weighs 1/distance)"
    shares = tally["data"][0]["y"]
    assert abs(sum(shares) - 1) < 1e-9 and tally["layout"]["yaxis"]["tickformat"] == ".0%"
    assert all(t == "" or t.endswith("%") for t in tally["data"][0]["text"])
    assert "each weighs 1/distance" in " ".join(texts(at.caption))


def test_presentation_mode_is_in_the_link(mnist):
    image = on_canvas(mnist.test_images[2])
    normal = run_vote(image)
    assert normal.toggle(key="present").value is False
    assert normal.query_params["present"] == "0"

    at = run_vote(image, params={"present": "1", "k": "4"})
    # the link's first run: the style alone, and the button the browser presses once it is in place
    assert _large_type(at)
    assert "present_ready_button" in str(at.get("html")[0].proto.body) and not at.title and not at.toggle
    at = show_the_page(at)
    assert at.toggle(key="present").value is True
    assert "present_ready_button" not in str(at.get("html")[0].proto.body)
    assert _large_type(at)
    big, small = figures(at), figures(normal)
    assert big["radial"]["layout"]["height"] > small["radial"]["layout"]["height"]
    assert big["map"]["layout"]["height"] > small["map"]["layout"]["height"]
    assert at.slider(key="vote_k").value == 4

    at.toggle(key="present").set_value(False).run()
    assert at.query_params["present"] == "0"
    assert not _large_type(at)


def _large_type(at: AppTest) -> bool:
    """The presentation style is on the page."""
    return any("font-size: 24px" in h.proto.body for h in at.get("html"))


def show_the_page(at: AppTest) -> AppTest:
    """Press what the browser presses once a present=1 link's style is in place; the page's next run."""
    at.button(key="present_ready_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and not [b for b in at.button if b.key == "present_ready_button"]
    return at


def _place_of_caption(node, text: str, path: tuple = ()) -> tuple | None:
    """Where in the page's element tree the caption containing `text` is (child indexes from the root)."""
    for i, child in getattr(node, "children", {}).items():
        if getattr(child, "type", "") == "caption" and text in str(child.value):
            return path + (i,)
        found = _place_of_caption(child, text, path + (i,))
        if found:
            return found
    return None


def test_the_canvas_keeps_its_place_whatever_the_mode_and_the_link(mnist):
    """#18: Streamlit mounts an element afresh when its place on the page changes, which blanked the
    canvas while its old drawing was still classified. Presentation mode and a bad link's warnings
    must not move it (its caption, just above it in the same column, stands for it here)."""
    image = on_canvas(mnist.test_images[0])
    above_canvas = "Draw a digit; the vote updates"
    places = {}
    for name, params in {"plain": {}, "presenting": {"present": "1"},
                         "bad link": {"k": "1000000000", "present": "maybe"}}.items():
        at = run_vote(image, params=params)
        if params.get("present") == "1":
            at = show_the_page(at)
        assert int(at.metric[0].value) == 7
        places[name] = _place_of_caption(at.main, above_canvas)
    assert places["plain"] is not None
    assert places["presenting"] == places["plain"] == places["bad link"], places


def test_bad_values_in_the_link_are_warnings(mnist):
    at = run_vote(on_canvas(mnist.test_images[0]),
                  params={"k": "1000000000", "metric": "bogus", "present": "maybe"})
    warnings = texts(at.warning)
    assert len(warnings) == 3, warnings
    for name in ("**k**", "**metric**", "**present**"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)
    assert at.slider(key="vote_k").value == 5
    assert int(at.metric[0].value) == 7  # the page works with the defaults


@pytest.mark.parametrize("image", [None, "blank"], ids=["nothing-drawn", "cleared"])
def test_nothing_drawn_shows_the_map_alone(image):
    if image == "blank":
        image = np.zeros((280, 280, 4), np.uint8)
        image[:, :, 3] = 255
    at = run_vote(image)
    assert not at.metric and not at.error
    assert any("Draw a digit in the box" in t for t in texts(at.info))
    figs = figures(at)
    assert set(figs) == {"map"}
    assert sum(len(_decode(t["x"])) for t in figs["map"]["data"]) == 5000


def test_the_digit_lands_among_its_neighbours_on_the_map(mnist):
    from pages.neighbour_vote import MAP_NEIGHBOURS

    image = on_canvas(mnist.test_images[0])
    at = run_vote(image)
    data = figures(at)["map"]["data"]
    star = [t for t in data if t.get("name") == "your digit"]
    near = [t for t in data if t.get("name") == "its neighbours"]
    assert len(star) == 1 and len(near) == 1
    assert len(_decode(near[0]["x"])) == MAP_NEIGHBOURS

    # the same placement, computed here: the 10 nearest mapped digits, weights 1/d
    m = load_map(mnist.train_images, mnist.train_labels)
    X = mnist.train_images[m.indices].reshape(len(m), -1).astype(np.float64)
    d = np.linalg.norm(X - ui.drawing_to_mnist(image).reshape(-1), axis=1)
    nearest = np.argsort(d, kind="stable")[:MAP_NEIGHBOURS]
    w = 1 / d[nearest]
    expected = (w[:, None] * m.coords[nearest]).sum(0) / w.sum()
    np.testing.assert_allclose([_decode(star[0]["x"])[0], _decode(star[0]["y"])[0]], expected, rtol=1e-5)
    # it lands in the 7s: most of its map neighbours are 7s
    assert np.mean(m.labels[nearest] == 7) > 0.5


def test_a_clicked_dot_is_shown():
    from pages.neighbour_vote import _clicked_row

    event = SimpleNamespace(selection=SimpleNamespace(points=[{"x": 0.1, "y": 0.2, "customdata": [1234, 5]}]))
    assert _clicked_row(event) == 1234
    assert _clicked_row(SimpleNamespace(selection=SimpleNamespace(points=[]))) is None
    assert _clicked_row(None) is None


def test_the_app_lists_the_page_and_opens_it(navigation_mode):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"k": "7", "present": "1"})
    at.run()
    at.switch_page("pages/neighbour_vote.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at = show_the_page(at)
    assert [t.value for t in at.title] == ["🗳️ Neighbour vote"]
    assert at.slider(key="vote_k").value == 7 and at.toggle(key="present").value is True
    assert any("Draw a digit in the box" in t for t in texts(at.info))


def _decode(arr):
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata", "shape"}."""
    if isinstance(arr, dict) and "bdata" in arr:
        import base64

        a = np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
        return a.reshape([int(s) for s in str(arr.get("shape", len(a))).split(",")]) if "shape" in arr else a
    return np.asarray(arr)


# ------------------------------------------------------------------------------- the map itself


def test_the_shipped_map_belongs_to_the_bundled_training_set(mnist):
    m = read_map(SHIPPED)
    assert m.method == "tsne" and len(m) == 5000
    assert SHIPPED.stat().st_size < 1_000_000
    assert (np.bincount(m.labels, minlength=10) >= 400).all()  # class-balanced
    np.testing.assert_array_equal(m.labels, mnist.train_labels[m.indices])
    loaded = load_map(mnist.train_images, mnist.train_labels)
    assert loaded.method == "tsne" and not loaded.note
    # a good map keeps classes together: the 5 nearest on the map mostly share the label
    from sklearn.neighbors import KNeighborsClassifier

    knn2d = KNeighborsClassifier(6).fit(m.coords, m.labels)
    _, idx = knn2d.kneighbors(m.coords)
    assert np.mean(m.labels[idx[:, 1:]] == m.labels[:, None]) > 0.85


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 30).astype(np.uint8)
    return images, labels


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    from knn_core import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_map_round_trip(tmp_path, small):
    m = compute_map(*small, n=100, method="pca")
    write_map(m, tmp_path / "m.npz")
    back = read_map(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.indices, m.indices)
    np.testing.assert_allclose(back.coords, m.coords)
    assert back.method == "pca" and back.digits_fingerprint == m.digits_fingerprint
    assert len(back) == 100 and np.bincount(back.labels, minlength=10).tolist() == [10] * 10


def test_tsne_map_of_a_small_sample(small):
    m = compute_map(*small, n=60, method="tsne")
    assert m.coords.shape == (60, 2) and np.isfinite(m.coords).all()


@pytest.mark.parametrize("shipped", ["missing", "garbage", "other-data", "not-a-map"])
def test_a_bad_shipped_map_falls_back_to_pca_cached_on_disk(tmp_path, tmp_cache, small, shipped):
    images, labels = small
    path = tmp_path / "shipped.npz"
    if shipped == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif shipped == "other-data":
        write_map(compute_map(255 - images, labels, n=100, method="pca"), path)
    elif shipped == "not-a-map":
        np.savez(path, something=np.arange(3))
    m = load_map(images, labels, shipped=path, n=100)
    assert m.method == "pca" and len(m) == 100
    assert "PCA map instead" in m.note and "shipped map" in m.note
    assert len(list(tmp_cache.glob("map-*.npz"))) == 1  # computed once, kept
    again = load_map(images, labels, shipped=path, n=100)
    np.testing.assert_array_equal(again.coords, m.coords)


def test_place_is_the_weighted_mean_of_the_neighbours():
    m = DigitMap(indices=np.arange(3), coords=np.array([[0, 0], [1, 0], [0, 1]], np.float32),
                 labels=np.zeros(3, np.uint8), method="pca", digits_fingerprint="")
    np.testing.assert_allclose(place(m, [1.0, 1.0], [1, 2]), [0.5, 0.5])
    np.testing.assert_allclose(place(m, [1.0, 3.0], [1, 2]), [0.75, 0.25])
    np.testing.assert_allclose(place(m, [0.0, 2.0], [2, 1]), [0, 1])  # a digit on the map itself
    with pytest.raises(ValueError):
        place(m, [], [])


# --------------------------------------------------------------------- garbage from the canvas


@pytest.mark.parametrize("data, needle", [
    (b"this is not a picture", "not a PNG image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a PNG image"),
], ids=["text", "broken-png"])
def test_a_drawing_that_is_not_a_picture_is_refused(data, needle):
    with pytest.raises(ui.DrawingError, match=needle):
        ui.drawing_from_bytes(data)


def test_an_enormous_drawing_is_refused_before_decoding():
    from loadtest.payloads import huge_png

    with pytest.raises(ui.DrawingError, match="12,000x12,000 pixels"):
        ui.drawing_from_bytes(huge_png())


def test_a_real_drawing_is_read():
    import cv2

    rgba = on_canvas(np.full((28, 28), 200, np.uint8))
    ok, buf = cv2.imencode(".png", rgba)
    out = ui.drawing_from_bytes(buf.tobytes())
    assert out.shape == (280, 280, 4) and out[100, 100, 0] == 200
    assert ui.drawing_from_bytes(None) is None
