"""The analysis pages in a real browser: each draws its main chart, the sidebar's page links switch
between them with the settings kept, and a confusion cell can be clicked.

The pages run on 1,000 training digits (`size=1000` in the link): what the browser adds (Plotly,
links, clicks) does not depend on the size, and the full data set's numbers are checked under
AppTest (tests/test_app_analysis.py).  Page-switch times are measured by
benchmarks/browser_latency.py, the README's screenshots made by scripts/screenshots.py.
"""
from __future__ import annotations

import pytest

from loadtest.browser import idle

pytestmark = pytest.mark.e2e

SIZE = "size=1000"
# Each page: the element that shows it has rendered (its main chart, drawn).
PAGES = {
    "confusion": ".st-key-confusion_chart .main-svg",
    "k_sweep": ".st-key-compare_chart .main-svg",  # the last of its four charts
    "misclassified": ".st-key-wrong_vote .main-svg",
    "suspicious": ".digit-with-neighbours img",
}
FIRST_LOAD_MS = 5 * 60_000  # the first visit searches (1,000 training digits: seconds; a busy machine: more)
# Searches estimated beyond ui.jobs.CONFIRM_SECONDS wait for this button (k_sweep's comparison adds cosine).
START = ".st-key-compare_start button"


def drawn(page, path: str) -> None:
    """Wait until the page's main element is drawn (pressing its start button if it asks) and the run is over."""
    main = page.locator(PAGES[path]).first
    main.or_(page.locator(START)).first.wait_for(timeout=FIRST_LOAD_MS)
    if not main.is_visible() and page.locator(START).count():
        page.locator(START).click()
    main.wait_for(timeout=FIRST_LOAD_MS)
    idle(page, FIRST_LOAD_MS)


def open_page(page, app_url: str, path: str) -> None:
    page.goto(f"{app_url}/?{SIZE}")  # the entry point first: app.py's navigation, then the page's own link
    page.locator(".st-key-page_menu").wait_for()
    page.goto(f"{app_url}/{path}?{SIZE}")
    drawn(page, path)


def switch(page, path: str) -> None:
    """Click the page's link in the app's menu; wait until its main element is drawn and the run is over."""
    page.locator(f'.st-key-page_menu a[href="{path}"]').click()
    page.wait_for_url(f"**/{path}?**")
    drawn(page, path)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_every_page_draws_and_the_sidebar_links_switch_between_them(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_page(page, app_url, "confusion")  # by its own link
    no_errors(page)
    for path in ["k_sweep", "misclassified", "suspicious", "confusion"]:  # then each by the sidebar's links
        switch(page, path)
        assert SIZE in page.url, (path, page.url)  # the settings went along
        no_errors(page)


def test_clicking_a_confusion_cell_shows_its_digits(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_page(page, app_url, "confusion")
    plot = page.locator(".st-key-confusion_chart .nsewdrag").first.bounding_box()  # the plotting area
    true, predicted = 4, 9
    page.mouse.click(plot["x"] + plot["width"] * (predicted + 0.5) / 10,
                     plot["y"] + plot["height"] * (true + 0.5) / 10)
    page.get_by_text(f"labelled {true} were classified as {predicted}").wait_for()
    idle(page)
    # the select boxes followed the click: the command line under them (folded in its expander) names the cell
    assert f"--true {true} --predicted {predicted}" in page.locator('[data-testid="stCode"]').all_text_contents()[-1]
    assert page.locator(".digit-with-neighbours").count() >= 1


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
