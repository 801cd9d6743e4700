"""The Neighbour vote page in a real browser, the load test's smoke run, and a known link problem.

Run with `pytest tests/e2e/test_neighbour_vote_browser.py -s` to see the figures.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "neighbour_vote.png"
METRIC = '[data-testid="stMetricValue"]'
RADAR_PICTURES = ".st-key-radial svg image"
K_SLIDER = 'input[type="range"][aria-label="k: how many neighbours vote"]'  # the page's own k slider
SIDEBAR_K = 'input[type="range"][aria-label="k (neighbours)"]'

# Strokes in canvas pixels (280 x 280)
SEVEN = [(75, 55), (205, 55), (125, 235)]
# A "4" drawn as one open stroke: its neighbours are 4s and 9s, a good picture of a vote
FOUR = [(95, 50), (70, 160), (200, 160), (175, 50), (175, 250)]


def stroke(page, points, steps: int = 6) -> None:
    canvas = page.locator("canvas.upper-canvas >> visible=true")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()
    page.mouse.move(5, 5)


def open_vote_page(page, app_url: str, query: str = ""):
    # A student's tab on the Draw page first, then the teacher's link
    page.goto(app_url + "/")
    page.locator("canvas.upper-canvas >> visible=true").wait_for()
    page.goto(f"{app_url}/neighbour_vote{query}")
    page.locator("canvas.upper-canvas >> visible=true").wait_for()
    page.get_by_text("Draw a digit in the box").first.wait_for()


def test_draw_vote_change_k_and_present(page, app_url):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # the first stroke fits the classifier on a busy machine
    page.set_viewport_size({"width": 1400, "height": 1100})
    open_vote_page(page, app_url, "?k=5")
    # the map is there before anything is drawn
    expect(page.locator(".st-key-map .js-plotly-plot")).to_have_count(1)

    stroke(page, SEVEN)
    expect(page.locator(METRIC)).to_have_text("7")
    expect(page.locator(RADAR_PICTURES)).to_have_count(5 + 5 + 1)  # k + 5 faded + the drawing
    assert "5 neighbours vote" in page.locator('[data-testid="stCaptionContainer"]').all_inner_texts().__str__()

    # the page's k slider: the radar, the tally and the link follow
    # One key at a time until the link says k=9: on a busy machine a rerun
    # can redraw the slider between presses and drop the focus.
    thumb = page.locator(K_SLIDER)
    for _ in range(40):
        if "k=9" in page.url:
            break
        current = int(thumb.input_value())
        thumb.focus()
        thumb.press("ArrowRight" if current < 9 else "ArrowLeft")
        page.wait_for_timeout(400)
    page.wait_for_url("**k=9**")
    expect(page.locator(RADAR_PICTURES)).to_have_count(9 + 5 + 1)
    expect(page.get_by_text("9 neighbours vote", exact=False)).to_be_visible()
    expect(page.locator(SIDEBAR_K)).to_have_value("9")

    # presentation mode: in the link, everything larger, and the sidebar folded away
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_have_attribute("data-collapsed", "false")
    page.get_by_text("Presentation mode").click()
    page.wait_for_url("**present=1**")
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '24px'")
    expect(sidebar).to_have_attribute("data-collapsed", "true")
    # the same link opens the same view in another tab
    other = page.context.new_page()
    other.goto(page.url)
    other.locator("canvas.upper-canvas >> visible=true").wait_for()
    other.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '24px'")
    assert other.locator(K_SLIDER).input_value() == "9"
    expect(other.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "true")
    other.close()
    # turned off again: the sidebar comes back
    page.get_by_text("Presentation mode").click()
    page.wait_for_url("**present=0**")
    expect(sidebar).to_have_attribute("data-collapsed", "false")


def test_screenshot(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1800})
    open_vote_page(page, app_url, "?k=7&present=0")
    stroke(page, FOUR)
    page.locator(METRIC).wait_for()
    page.locator(RADAR_PICTURES).nth(7).wait_for()
    page.locator(".st-key-map").get_by_text("your digit").wait_for()  # the map's legend, once it has the star
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")  # the run has finished
    page.wait_for_timeout(1500)  # pictures and charts settle
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    img = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    img.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)


def test_load_test_smoke(chromium_path):
    """The protocol-level load test, small: 3 students, a teacher and the garbage session for 10 s."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.run_protocol", "--sessions", "3", "--duration", "10", "--solo", "3",
         "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "errors               0" in proc.stdout
    assert "targets met" in proc.stdout


# Records every text of Streamlit's own sidebar menu the page ever shows (the app draws its own).
STREAMLIT_MENU_WATCH = """
window.__streamlitMenus = [];
new MutationObserver(function () {
  const nav = document.querySelector('[data-testid="stSidebarNav"]');
  if (nav) window.__streamlitMenus.push(nav.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_a_shared_link_on_a_fresh_server_runs_the_app(browser):
    """A teacher's link opened first on a fresh server gets the whole app (see ui.run_page), and
    Streamlit's legacy menu of raw file names ("app, baselines, confusion...") never shows."""
    sys.path.insert(0, str(ROOT))
    from loadtest.server import Server

    with Server("app.py") as srv:
        page = browser.new_page()
        page.add_init_script(STREAMLIT_MENU_WATCH)
        try:
            page.goto(srv.url + "/neighbour_vote?k=7")
            page.locator(K_SLIDER).wait_for(timeout=90_000)  # the vote page's own k slider
            assert page.locator(K_SLIDER).input_value() == "7"
            menu = page.locator(".st-key-page_menu").inner_text()  # app.py's menu: the app ran
            assert "Neighbour vote" in menu and "Draw" in menu, menu
            page.wait_for_timeout(1000)  # the run settles
            assert page.evaluate("window.__streamlitMenus") == []
        finally:
            page.close()
