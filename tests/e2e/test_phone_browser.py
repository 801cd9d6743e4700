"""The Draw page on a phone: Chromium with Playwright's Pixel 7 profile (412 x 839 CSS px, touch).

Strokes are real touch events (CDP ``Input.dispatchTouchEvent``), the path a finger takes, not the
mouse.  Uses the ``browser`` and ``app_url`` fixtures of tests/e2e/conftest.py.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from loadtest.browser import METRIC, ONE, SEVEN, open_draw_page, touch_stroke
from loadtest.run_browsers import PIXEL_7  # Playwright's devices["Pixel 7"], written out

pytestmark = pytest.mark.e2e

TOOLBAR = ["Undo", "Redo", "Edit", "Reset canvas & history"]  # aria-labels of the buttons a user sees
MIN_TOUCH_TARGET = 40  # px, CSS; the usual guideline is 44-48

# A 0 in canvas pixels (the canvas is 280 x 280); the 1 and 7 are loadtest.browser's.
ZERO = [(140 + 62 * math.sin(t), 140 - 92 * math.cos(t)) for t in [i * 2 * math.pi / 48 for i in range(49)]]


@pytest.fixture
def phone(browser):
    """A page in the Pixel 7 profile and a CDP session on it (for touch events)."""
    context = browser.new_context(**PIXEL_7)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page, context.new_cdp_session(page)
    context.close()


def prediction(page) -> str:
    page.locator(METRIC).wait_for()
    return page.locator(METRIC).inner_text().strip()


def scroll_positions(page) -> list[float]:
    """The window's and Streamlit's main container's scroll offsets (the main area scrolls by itself)."""
    return page.evaluate("""() => {
      const main = document.querySelector('[data-testid="stMain"]') || document.querySelector('section.main');
      return [scrollX, scrollY, main ? main.scrollTop : 0, main ? main.scrollLeft : 0];
    }""")


@pytest.mark.parametrize("points, digit", [(ONE, "1"), (ZERO, "0"), (SEVEN, "7")], ids=["one", "zero", "seven"])
def test_a_digit_drawn_with_a_finger_is_read(phone, app_url, points, digit):
    page, cdp = phone
    canvas = open_draw_page(page, app_url)
    before = scroll_positions(page)
    touch_stroke(page, cdp, canvas, points)
    assert prediction(page) == digit
    assert scroll_positions(page) == before  # the finger drew; the page did not scroll


def test_canvas_and_prediction_fit_one_phone_screen(phone, app_url):
    page, cdp = phone
    canvas = open_draw_page(page, app_url)
    touch_stroke(page, cdp, canvas, ONE)
    assert prediction(page) == "1"
    height, width = page.evaluate("() => [innerHeight, innerWidth]")
    c, m = canvas.bounding_box(), page.locator('[data-testid="stMetric"]').bounding_box()
    undo = page.locator('button[aria-label="Undo"]').bounding_box()
    assert 0 <= undo["y"] and 0 <= c["y"] and c["y"] + c["height"] <= m["y"]  # toolbar, canvas, then the Prediction
    assert m["y"] + m["height"] <= height, f"the Prediction ends at y={m['y'] + m['height']:.0f} of {height}"
    assert c["x"] >= 0 and c["x"] + c["width"] <= width
    # nothing scrolls sideways: neither the document nor Streamlit's main area
    overflow = page.evaluate("""() => {
      const main = document.querySelector('[data-testid="stMain"]');
      return [document.documentElement.scrollWidth, main ? main.scrollWidth - main.clientWidth : 0];
    }""")
    assert overflow[0] <= width and overflow[1] <= 0, overflow
    # the sidebar starts folded, off the screen
    sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
    assert sidebar is None or sidebar["x"] + sidebar["width"] <= 0


def test_toolbar_buttons_are_finger_sized(phone, app_url):
    page, _ = phone
    open_draw_page(page, app_url)
    # The sizes come from CSS that the page puts into the canvas' shadow root once it is there (ui/canvas.py
    # checks every 0.4 s): wait for it, as a finger would, rather than race it (it failed once under load).
    page.wait_for_function(f"""() => {{
      const b = [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
        .map(r => r.querySelector('button[aria-label="Undo"]')).find(Boolean);
      return b && b.getBoundingClientRect().width >= {MIN_TOUCH_TARGET};
    }}""", timeout=10_000)
    for label in TOOLBAR:
        box = page.locator(f'button[aria-label="{label}"]').bounding_box()
        assert box is not None, label
        assert min(box["width"], box["height"]) >= MIN_TOUCH_TARGET, (label, box)


def _photo_of_a_seven() -> bytes:
    """A 7 in dark ink on light paper, as a PNG."""
    paper = np.full((300, 260), 235, np.uint8)
    cv2.line(paper, (60, 60), (200, 60), 30, 22)
    cv2.line(paper, (200, 60), (110, 250), 30, 22)
    ok, buf = cv2.imencode(".png", paper)
    assert ok
    return buf.tobytes()


def test_the_last_touched_of_drawing_and_photo_is_classified(phone, app_url):
    """A photo, then a stroke: the drawing. Clearing the box: the photo again, shown beside the answer."""
    page, cdp = phone
    canvas = open_draw_page(page, app_url)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "seven.png", "mimeType": "image/png", "buffer": _photo_of_a_seven()}])
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMetricValue\"]')?.textContent.trim() === '7'")
    assert page.locator('img[alt^="your photo"]').is_visible()

    touch_stroke(page, cdp, canvas, ONE)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMetricValue\"]')?.textContent.trim() === '1'")
    assert "Classifying your drawing" in page.locator(".draw-source").inner_text()
    assert page.locator('img[alt^="your photo"]').count() == 0

    page.locator('button[aria-label="Reset canvas & history"]').click()
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMetricValue\"]')?.textContent.trim() === '7'")
    assert page.locator('img[alt^="your photo"]').is_visible()
