"""Driving the app in headless Chromium (Playwright, sync API): one home for the strokes and selectors.

Used by the browser tests (tests/e2e), the README's screenshots
(scripts/screenshots.py) and the in-browser latency benchmark
(benchmarks/browser_latency.py).  Only ever talks to 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import io
import math
import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

METRIC = '[data-testid="stMetricValue"]'
NEIGHBOURS = ".st-key-neighbours .neighbour-digits img"
CLEAR = 'button[aria-label="Reset canvas & history"]'
UNDO = 'button[aria-label="Undo"]'
CANVAS = "canvas.upper-canvas >> visible=true"
STATUS = '[data-testid="stStatusWidget"]'  # Streamlit's "running" indicator

# Strokes in canvas pixels (the canvas is 280 x 280).
ONE = [(140, 45), (140, 235)]
ZERO = [(140 + 62 * math.sin(t), 140 - 92 * math.cos(t)) for t in [i * 2 * math.pi / 48 for i in range(49)]]
SEVEN = [(75, 55), (205, 55), (125, 235)]
FOUR = [(95, 50), (70, 160), (200, 160), (175, 50), (175, 250)]  # one open stroke: its neighbours are 4s and 9s


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def chromium_on_app(url: str | None = None):
    """(the app's URL, a headless Chromium): the server at `url`, or `streamlit run app.py` started here."""
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("chromium not found on PATH (Debian: apt-get install chromium fonts-noto-color-emoji)")
    from playwright.sync_api import sync_playwright

    from .server import Server

    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(Server("app.py")).url
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        yield url, browser


def open_draw_page(page, url: str):
    """Open a page with the canvas (the Draw page by default) and wait until it is ready; the canvas."""
    page.goto(url)
    canvas = page.locator(CANVAS)
    canvas.wait_for()
    page.get_by_text("Draw a digit in the box").first.wait_for()
    return canvas


def stroke(page, points, steps: int = 6) -> None:
    """Draw one stroke with the mouse through these canvas points, then move the mouse off the canvas."""
    box = page.locator(CANVAS).bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()
    page.mouse.move(5, 5)


def touch_stroke(page, cdp, canvas, points, steps: int = 6) -> None:
    """One finger stroke through `points` (canvas pixels): touchStart, touchMoves, touchEnd, sent as CDP
    ``Input.dispatchTouchEvent`` (cdp: ``context.new_cdp_session(page)``), the path a finger takes."""
    box = canvas.bounding_box()
    scale = box["width"] / 280

    def at(x, y):
        return [{"x": box["x"] + x * scale, "y": box["y"] + y * scale}]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(*points[0])})
    (px, py) = points[0]
    for x, y in points[1:]:
        for i in range(1, steps + 1):
            cdp.send("Input.dispatchTouchEvent",
                     {"type": "touchMove", "touchPoints": at(px + (x - px) * i / steps, py + (y - py) * i / steps)})
        px, py = x, y
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

def canvas_ink(page) -> int:
    """How many pixels of the visible canvas are inked (white on black): 0 when the canvas is blank."""
    return page.locator("canvas.dc-canvas.lower-canvas >> visible=true").evaluate(
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }")


def prediction(page) -> str:
    """The Prediction metric's text, once it is there."""
    metric = page.locator(METRIC)
    metric.wait_for()
    return metric.inner_text().strip()


def wait_for_prediction(page, condition: str, timeout: float = 60_000) -> str:
    """Wait until the Prediction metric's text satisfies a JS condition on `text`; the text."""
    page.wait_for_function(f"() => {{ const m = document.querySelector('{METRIC}');"
                           f" if (!m) return false; const text = m.textContent.trim(); return {condition}; }}",
                           timeout=timeout)
    return prediction(page)


def clear(page) -> None:
    """Clear the canvas with its toolbar button and wait until the prediction is gone."""
    page.locator(CLEAR).click()
    page.locator(METRIC).wait_for(state="detached")


def idle(page, timeout: float = 60_000) -> None:
    """Wait until the script run has finished (Streamlit's running indicator is gone)."""
    page.wait_for_function(f"() => !document.querySelector('{STATUS}')", timeout=timeout)


def images_loaded(page, selector: str, timeout: float = 60_000) -> None:
    """Wait until every <img> matching the selector has loaded."""
    page.wait_for_function(
        "(sel) => { const imgs = [...document.querySelectorAll(sel)];"
        " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=selector, timeout=timeout)


def save_small_png(png: bytes, path: Path, colours: int = 64) -> None:
    """A screenshot as a palette PNG (a fraction of the size, still sharp)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
