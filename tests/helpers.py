"""Helpers shared by the app tests: run a page under AppTest and read what it shows.

Pages run as small script functions (AppTest.from_function) that call the
page function with their inputs (a drawing, an upload, a dataset), since the
canvas only exists in a browser.  The readers below turn the rendered
elements back into numbers and captions to compare with knn_core.
"""
from __future__ import annotations

import html
import json
import re

import cv2
import numpy as np
from streamlit.testing.v1 import AppTest

SMALL = 1000  # training digits for most analysis-page tests: quick searches
ANALYSIS_TIMEOUT = 900  # a first search on a busy machine; cached runs take well under a second
TIMEOUT = 60


# ------------------------------------------------------------------------------ running pages


def page_script(name: str):
    """Run one analysis page on its own (it renders the shared sidebar itself)."""
    import importlib

    getattr(importlib.import_module(f"pages.{name}"), f"{name}_page")()


def run_page(name: str, params: dict | None = None, state: dict | None = None) -> AppTest:
    """An analysis page (pages/<name>.py) with these link settings and session state, run once."""
    at = AppTest.from_function(page_script, default_timeout=ANALYSIS_TIMEOUT, kwargs={"name": name})
    for key, value in (params or {}).items():
        at.query_params[key] = str(value)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def draw_script(image=None, upload=None):
    """The Draw page on its own (it renders the shared sidebar itself); runs as an AppTest script."""
    from pages.draw import draw_page

    draw_page(image=image, upload=upload)


def run_draw(image=None, upload=None, params: dict | None = None) -> AppTest:
    at = AppTest.from_function(draw_script, default_timeout=TIMEOUT, kwargs={"image": image, "upload": upload})
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def vote_script(image=None):
    """The Neighbour vote page on its own, with a drawing handed in."""
    from pages.neighbour_vote import neighbour_vote_page

    neighbour_vote_page(image=image)


def run_vote(image=None, params: dict | None = None) -> AppTest:
    at = AppTest.from_function(vote_script, default_timeout=TIMEOUT, kwargs={"image": image})
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ------------------------------------------------------------------------------ inputs


def lists_of(neighbour_labels, labels):
    """knn_core NeighborLists whose neighbours carry the given labels (distances 1, 2, 3...), one
    query per row: synthetic votes for knn_core.evaluate's functions."""
    from knn_core.lists import NeighborLists

    neighbour_labels = np.asarray(neighbour_labels)
    m, k = neighbour_labels.shape
    train_labels = neighbour_labels.ravel()
    indices = np.arange(m * k).reshape(m, k)
    distances = np.tile(np.arange(1.0, k + 1), (m, 1))
    return NeighborLists(distances, indices, train_labels, np.asarray(labels), train_rows=np.arange(m * k))


def on_canvas(digit28: np.ndarray, size: int = 200, at: tuple[int, int] = (40, 40)) -> np.ndarray:
    """An MNIST digit blown up (cv2.resize) onto a black 280x280 RGBA canvas, like a drawing."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[:, :, 3] = 255
    big = cv2.resize(digit28, (size, size), interpolation=cv2.INTER_LINEAR)
    y, x = at
    rgba[y : y + size, x : x + size, :3] = big[:, :, None]
    return rgba


def png_bytes(grey: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", grey)
    assert ok
    return buf.tobytes()


# ------------------------------------------------------------------------------ reading pages


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def chart(at: AppTest, key: str) -> dict:
    """The plotly figure (as sent to the browser) of the chart with this widget key."""
    found = [json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"no single chart {key!r}"
    return found[0]


def figures(at: AppTest) -> dict:
    """The page's plotly figures by element key, as parsed JSON."""
    out = {}
    for element in at.get("plotly_chart"):
        key = element.proto.id.rsplit("-", 1)[-1] if element.proto.id else ""
        out[key] = json.loads(element.proto.spec)
    return out


def vote_bars(html_text: str) -> dict[int, tuple[int, int]]:
    """class -> (neighbours, share of the vote in %) of ui.vote_bars_html, read from each bar's title."""
    found = re.findall(r'title="(\d+): (\d+) neighbours?, (\d+)% of the vote"', html_text)
    return {int(c): (int(n), int(p)) for c, n, p in found}


def vote_bar_colours(html_text: str) -> dict[int, str]:
    """class -> the colour of its bar in ui.vote_bars_html."""
    return {int(c): colour for c, colour in re.findall(r'title="(\d+):.*?background:(#[0-9A-Fa-f]{6})', html_text)}


def page_vote_bars(at: AppTest) -> str:
    """The HTML of the one vote-bars element on the page (the Draw page's vote)."""
    found = [e.proto.body for e in at.get("html") if 'class="vote-bars"' in e.proto.body]
    assert len(found) == 1, f"{len(found)} vote bars on the page"
    return found[0]


def plain(caption_html: str) -> str:
    """A caption's HTML as text: <br> a newline, tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", caption_html.replace("<br>", "\n")))


def digit_grids(at: AppTest) -> list[list[tuple[str, str]]]:
    """Each ui.digit_grid on the page (an HTML element may hold several), as a list of
    (alt text, caption HTML) per picture."""
    grids = []
    for e in at.get("html"):
        for part in e.proto.body.split('<div class="digit-grid"')[1:]:
            pictures = re.findall(r'<img [^>]*alt="([^"]*)"[^>]*>(?:<figcaption[^>]*>(.*?)</figcaption>)?', part,
                                  re.S)
            grids.append([(html.unescape(alt), caption) for alt, caption in pictures])
    return grids


def _captions(body: str) -> list[str]:
    return [plain(c) for c in re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", body, re.S)]


def grids(at: AppTest) -> list[list[str]]:
    """The captions (as text) of each plain digit grid (ui.digit_grid, ui.neighbour_grid), in page order."""
    return [_captions(h.proto.body) for h in at.get("html")
            if "digit-grid" in h.proto.body and "digit-with-neighbours" not in h.proto.body]


def with_neighbours(at: AppTest) -> list[tuple[str, list[str]]]:
    """(the digit's caption, its neighbours' captions) of each ui.digit_with_neighbours, in page order."""
    out = []
    for h in at.get("html"):
        if "digit-with-neighbours" in h.proto.body:
            caps = _captions(h.proto.body)
            out.append((caps[0], caps[1:]))
    return out


def shown_text(at: AppTest) -> str:
    """The page's captions and the text of its HTML elements (tags dropped), in one string."""
    bodies = [html.unescape(re.sub(r"<[^>]+>", " ", e.proto.body)) for e in at.get("html")]
    return " ".join(texts(at.caption) + bodies)


def neighbour_caption_check(captions: list[str], lists, q: int, k: int, winner: int) -> None:
    """The captions of query q's neighbour grid: rank, label, distance, ✓ for those that voted for winner."""
    assert len(captions) == k
    for rank, cap in enumerate(captions, start=1):
        label = int(lists.train_labels[lists.indices[q, rank - 1]])
        assert cap.startswith(f"#{rank} ")
        assert f"{label}\nd={lists.distances[q, rank - 1]:.4g}" in cap
        assert ("✓" in cap) == (label == winner)


# ------------------------------------------------------------------------------ the command line


def cli(capsys, *argv) -> str:
    """`python -m knn_core ARGV` in this process; its stdout (it must succeed)."""
    from knn_core.__main__ import main as cli_main

    capsys.readouterr()
    assert cli_main(list(argv)) == 0
    return capsys.readouterr().out
