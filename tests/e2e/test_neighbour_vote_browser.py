"""The Neighbour vote page in a real browser, and a known link problem on a fresh server."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from loadtest.browser import CANVAS, METRIC, ONE, SEVEN, canvas_ink, idle, stroke
from loadtest.server import Server

pytestmark = pytest.mark.e2e

RADAR_PICTURES = ".st-key-radial svg image"
K_SLIDER = 'input[type="range"][aria-label="k: how many neighbours vote"]'  # the page's own k slider
SIDEBAR_K = 'input[type="range"][aria-label="k (neighbours)"]'


def open_vote_page(page, app_url: str, query: str = ""):
    # A student's tab on the Draw page first, then the teacher's link
    page.goto(app_url + "/")
    page.locator(CANVAS).wait_for()
    page.goto(f"{app_url}/neighbour_vote{query}")
    page.locator(CANVAS).wait_for()
    page.get_by_text("Draw a digit in the box").first.wait_for()


def test_draw_vote_change_k_and_present(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1100})
    open_vote_page(page, app_url, "?k=5")
    # the map is there before anything is drawn
    expect(page.locator(".st-key-map .js-plotly-plot")).to_have_count(1)

    stroke(page, SEVEN)
    expect(page.locator(METRIC)).to_have_text("7")
    expect(page.locator(RADAR_PICTURES)).to_have_count(5 + 5 + 1)  # k + 5 faded + the drawing
    expect(page.locator('[data-testid="stCaptionContainer"]', has_text="5 neighbours vote")).to_have_count(1)
    expect(page.locator(".st-key-map").get_by_text("your digit")).to_be_visible()  # the star on the map

    # the page's k slider: the radar, the tally and the link follow.  One key at a time, each
    # press waited for (the link shows the new k): a rerun can redraw the slider and drop the focus.
    thumb = page.locator(K_SLIDER)
    for want in (6, 7):
        thumb.focus()
        thumb.press("ArrowRight")
        page.wait_for_function(f"() => new URLSearchParams(location.search).get('k') === '{want}'")
        idle(page)
    assert thumb.input_value() == "7"
    expect(page.locator(RADAR_PICTURES)).to_have_count(7 + 5 + 1)
    expect(page.get_by_text("7 neighbours vote", exact=False)).to_be_visible()
    expect(page.locator(SIDEBAR_K)).to_have_value("7")

    # presentation mode: in the link, everything larger, and the sidebar folded away
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_have_attribute("data-collapsed", "false")
    page.get_by_text("Presentation mode").click()
    page.wait_for_url("**present=1**")
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '24px'")
    expect(sidebar).to_have_attribute("data-collapsed", "true")
    # the same link opens the same view in another tab
    other = page.context.new_page()
    other.set_default_timeout(60_000)  # as the fixture's page: 30 s was short on a busy machine
    other.goto(page.url)
    other.locator(CANVAS).wait_for()
    other.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '24px'")
    assert other.locator(K_SLIDER).input_value() == "7"
    expect(other.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "true")
    other.close()
    # turned off again: the sidebar comes back
    page.get_by_text("Presentation mode").click()
    page.wait_for_url("**present=0**")
    expect(sidebar).to_have_attribute("data-collapsed", "false")


def test_presentation_mode_keeps_the_drawing_and_its_result(page, app_url):
    """The classroom sequence of #18: draw, then switch presentation mode on. The canvas keeps the
    drawing that the result belongs to, and the next stroke adds to it (it used to go blank while the
    old result stayed, and the next stroke alone, a bar, was classified)."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_vote_page(page, app_url, "?k=5&metric=bogus")  # a bad link's warning too: it must not move the canvas
    stroke(page, SEVEN)
    expect(page.locator(METRIC)).to_have_text("7")
    idle(page)
    drawn = canvas_ink(page)
    assert drawn > 1000
    for switch_to in ("1", "0"):
        page.get_by_text("Presentation mode").click()
        page.wait_for_url(f"**present={switch_to}**")
        idle(page)
        assert canvas_ink(page) == drawn, f"the canvas changed when presentation mode became {switch_to}"
        expect(page.locator(METRIC)).to_have_text("7")
    page.locator(SIDEBAR_K).focus()  # a setting from the sidebar: the same
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('k') === '6'")
    idle(page)
    assert canvas_ink(page) == drawn
    seen = page.locator('[data-testid="stImage"]', has_text="What the model sees").locator("img")
    before = seen.get_attribute("src")
    stroke(page, ONE)  # a bar through the 7: alone it reads as 1, with the 7 it is still a 7
    expect(seen).not_to_have_attribute("src", before)  # the server has the new drawing
    idle(page)
    assert canvas_ink(page) > drawn
    expect(page.locator(METRIC)).to_have_text("7")


def test_a_ready_made_example_flips_with_k(page, app_url):
    """One click shows test digit #412 (a 5; tests/test_k_flips.py): 3 for k up to 4, 5 from k=5."""
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_vote_page(page, app_url, "?k=4")
    find = page.get_by_role("button", name="Find them")
    page.get_by_role("button", name="Show it").or_(find).first.wait_for()
    if find.count():  # the test lists are not on disk yet: a search of the test digits, slow on a busy machine
        find.click()
    page.get_by_role("button", name="Show it").first.click(timeout=300_000)
    expect(page.get_by_text("Showing the example: test digit #412, labelled 5")).to_be_visible()
    expect(page.locator(METRIC)).to_have_text("3")
    thumb = page.locator(K_SLIDER)
    thumb.focus()
    thumb.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('k') === '5'")
    expect(page.locator(METRIC)).to_have_text("5")
    # the radar and its side legend fit a 1080-pixel screen
    box = page.locator(".st-key-radial .js-plotly-plot").first.bounding_box()
    assert box["y"] + box["height"] <= 1080


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
    with Server("app.py") as srv:  # its own server: the first request it ever gets is this link
        page = browser.new_page()
        page.add_init_script(STREAMLIT_MENU_WATCH)
        try:
            page.goto(srv.url + "/neighbour_vote?k=7")
            page.locator(K_SLIDER).wait_for(timeout=90_000)  # the vote page's own k slider
            assert page.locator(K_SLIDER).input_value() == "7"
            menu = page.locator(".st-key-page_menu")  # app.py's menu: the app ran (its text may come a moment later)
            expect(menu).to_contain_text("Neighbour vote", timeout=30_000)
            expect(menu).to_contain_text("Draw")
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")  # the run is over
            assert page.evaluate("window.__streamlitMenus") == []
        finally:
            page.close()
