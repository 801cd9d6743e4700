"""The analysis pages in a real browser: each loads, its main chart is drawn, a confusion cell can be
clicked; page switches are timed once the results are cached; screenshots for the README.

The first visit of a page may search (the full data set: seconds to a few minutes on a fresh
cache); the timing starts after that.  Run with `pytest tests/e2e -s` to see the measured times.
"""
from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
FIRST_LOAD_MS = 30 * 60_000  # a first search of the full data set on a busy machine
SWITCH_BUDGET_S = 1.5  # median page switch -> main chart drawn, results cached (server render <= 1 s)

# Each page: its URL path, and the element that shows it has rendered (its main chart, drawn).
PAGES = {
    "confusion": ".st-key-confusion_chart .main-svg",
    "k_sweep": ".st-key-compare_chart .main-svg",  # the last of its four charts
    "misclassified": ".st-key-wrong_vote .main-svg",
    "suspicious": ".digit-with-neighbours img",
}
OTHER = {"confusion": "misclassified", "k_sweep": "confusion", "misclassified": "confusion",
         "suspicious": "confusion"}


def open_page(page, app_url: str, path: str) -> None:
    page.goto(app_url)  # the entry point first: app.py's navigation, then the page's own link
    page.locator(".st-key-page_menu").wait_for()
    page.goto(f"{app_url}/{path}")
    page.locator(PAGES[path]).first.wait_for(timeout=FIRST_LOAD_MS)
    idle(page)


def idle(page) -> None:
    """Wait until the script run has finished (Streamlit's running indicator is gone)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=FIRST_LOAD_MS)


def switch(page, path: str) -> float:
    """Click the page's link in the sidebar; seconds until its main element is drawn."""
    t0 = time.perf_counter()
    page.locator(f'.st-key-page_menu a[href="{path}"]').click()
    page.locator(PAGES[path]).first.wait_for()
    return time.perf_counter() - t0


@pytest.mark.parametrize("path", list(PAGES))
def test_page_loads_renders_fast_from_the_cache_and_screenshot(page, app_url, path):
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_page(page, app_url, path)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    switch(page, OTHER[path])  # warm both pages in this session
    idle(page)
    times = []
    for _ in range(3):
        times.append(switch(page, path))
        idle(page)
        switch(page, OTHER[path])
        idle(page)
    median = statistics.median(times)
    print(f"\n{path}: page switch -> main chart drawn (s, cached results): median {median:.2f}, "
          f"all {[round(t, 2) for t in times]}")
    assert median <= SWITCH_BUDGET_S

    switch(page, path)
    idle(page)
    page.set_viewport_size({"width": 1280, "height": 1150})
    page.mouse.move(5, 5)
    page.wait_for_timeout(800)  # charts and pictures settle
    _save_small_png(page.screenshot(), SHOTS / f"{path}.png")


def test_clicking_a_confusion_cell_shows_its_digits(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_page(page, app_url, "confusion")
    plot = page.locator(".st-key-confusion_chart .nsewdrag").first.bounding_box()  # the plotting area
    true, predicted = 7, 1
    page.mouse.click(plot["x"] + plot["width"] * (predicted + 0.5) / 10,
                     plot["y"] + plot["height"] * (true + 0.5) / 10)
    page.get_by_text(f"labelled {true} were classified as {predicted}").wait_for()
    idle(page)
    # the select boxes followed the click: the command line under them names the cell
    assert f"--true {true} --predicted {predicted}" in page.locator('[data-testid="stCode"]').all_inner_texts()[-1]
    assert page.locator(".digit-with-neighbours").count() >= 1


def _save_small_png(png: bytes, path: Path) -> None:
    """The screenshot as a 64-colour palette PNG (a fraction of the size, still sharp)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_choosing_a_page_on_a_phone_folds_the_sidebar_away(browser, app_url):
    """On a phone the open sidebar covers the page: choosing a page in the menu folds it away
    (ui.page_menu), as Streamlit's own menu does."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 412, "height": 839}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(app_url)
        sidebar = page.locator('[data-testid="stSidebar"]')
        page.locator(".st-key-page_menu").wait_for(state="attached")
        expect(sidebar).to_have_attribute("data-collapsed", "true")  # a phone starts with it folded
        page.locator('[data-testid="stExpandSidebarButton"]').tap()
        expect(sidebar).to_have_attribute("data-collapsed", "false")
        page.locator('.st-key-page_menu a[href="dataset"]').tap()
        page.wait_for_url("**/dataset?**")
        expect(sidebar).to_have_attribute("data-collapsed", "true")
    finally:
        context.close()
