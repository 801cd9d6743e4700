"""#18, what a teacher meets in the first hour, where only a browser shows it: captions readable on a
projector, a confusion-matrix cell's digits brought into view."""
from __future__ import annotations

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
