"""#18, what a teacher meets in the first hour, where only a browser shows it: captions readable on a
projector, a confusion-matrix cell's digits brought into view, a misclassified digit's thumbnail that
opens it."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from loadtest.browser import CANVAS, idle

pytestmark = pytest.mark.e2e

def test_presentation_mode_captions_are_readable_on_a_projector(page, app_url):
    page.goto(app_url + "/neighbour_vote?present=1")
    page.locator(CANVAS).wait_for()
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '24px'")
    caption = page.locator('[data-testid="stCaptionContainer"]').first
    colour = caption.evaluate("e => getComputedStyle(e).color")
    assert colour == "rgba(27, 31, 28, 0.85)", colour  # not Streamlit's 60% grey


# From the page's first byte: was the title ever there in small type (before presentation mode's large
# type), and did Streamlit's own menu of raw file names ("app, baselines, confusion...") ever show?
FIRST_PAINT_WATCH = """
window.__firstPaint = {title: false, smallTitle: false, menus: []};
new MutationObserver(function () {
  const f = window.__firstPaint;
  if (document.querySelector('[data-testid="stMain"] h1')) {
    f.title = true;
    if (getComputedStyle(document.documentElement).fontSize !== '24px') f.smallTitle = true;
  }
  const nav = document.querySelector('[data-testid="stSidebarNav"]');
  if (nav) f.menus.push(nav.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_presentation_mode_is_large_from_the_first_content_on(page, app_url):
    """A fresh browser (nothing cached) opening a present=1 link: the large type is there before the
    title is (it used to come ~1 s after it: st.markdown draws its HTML later); no raw file-name menu."""
    page.add_init_script(FIRST_PAINT_WATCH)
    page.goto(app_url + "/neighbour_vote?present=1")
    page.locator(CANVAS).wait_for()
    idle(page)
    seen = page.evaluate("window.__firstPaint")
    assert seen["title"] and not seen["smallTitle"], seen
    assert seen["menus"] == []
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "24px"


def test_a_clicked_confusion_cell_brings_its_digits_into_view(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(app_url + "/confusion?size=1000")
    plot = page.locator(".st-key-confusion_chart .nsewdrag").first
    plot.wait_for(timeout=300_000)  # a first search of the test digits on a busy machine
    idle(page)
    heading = page.get_by_role("heading", name="The digits of one cell")
    box = plot.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 9.5 / 10, box["y"] + box["height"] * 4.5 / 10)  # true 4, said 9
    expect(page.get_by_role("combobox", name="True label")).to_have_value("4")
    expect(page.get_by_role("combobox", name="Predicted")).to_have_value("9")
    idle(page)
    expect(heading).to_be_in_viewport()


# Each thumbnail's place on the page, from the gallery's own plotly figure: (test digit, x, y) in pixels.
THUMBNAILS = """() => {
  const g = document.querySelector('.st-key-wrong_gallery .js-plotly-plot');
  const d = g.data[0], xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, box = g.getBoundingClientRect();
  return d.customdata.map((q, i) => [q, box.x + xa._offset + xa.l2p(d.x[i]), box.y + ya._offset + ya.l2p(d.y[i])]);
}"""


def test_a_clicked_thumbnail_opens_its_digit_in_view(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(app_url + "/misclassified?size=1000")
    gallery = page.locator(".st-key-wrong_gallery .js-plotly-plot")
    gallery.wait_for(timeout=300_000)  # a first search of the test digits on a busy machine
    idle(page)
    gallery.scroll_into_view_if_needed()
    opened = page.get_by_role("combobox", name="Open test digit")
    first = opened.input_value()
    thumbnails = page.evaluate(THUMBNAILS)
    q, x, y = thumbnails[20]  # the 21st: second row
    assert not first.startswith(f"#{q}:")
    page.mouse.click(x + 12, y - 12)  # off the centre, still on the picture
    expect(opened).to_have_value(re.compile(rf"^#{q}: a \d taken for a \d$"))
    expect(page.get_by_text(re.compile(rf"^Test digit #{q} is labelled"))).to_be_visible()
    idle(page)
    expect(opened).to_be_in_viewport()
    # clicking the first thumbnail (the one open at first) opens it again
    page.locator(".st-key-wrong_gallery").scroll_into_view_if_needed()
    _, x0, y0 = page.evaluate(THUMBNAILS)[0]
    page.mouse.click(x0, y0)
    expect(opened).to_have_value(first)
