"""The Draw page in a real browser: draw with the mouse, read the prediction, undo, links, uploads.

The stroke -> prediction latency is measured by benchmarks/browser_latency.py, not here.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from loadtest.browser import (
    CLEAR,
    METRIC,
    NEIGHBOURS,
    ONE,
    SEVEN,
    UNDO,
    ZERO,
    clear,
    images_loaded,
    open_draw_page,
    prediction,
    stroke,
    wait_for_prediction,
)

pytestmark = pytest.mark.e2e

ERROR = '[data-testid="stAlertContentError"]'
UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'


def expect_neighbours(page, k: int) -> None:
    expect(page.locator(NEIGHBOURS)).to_have_count(k)
    images_loaded(page, NEIGHBOURS)


def test_drawn_digits_are_predicted_and_cleared(page, app_url):
    open_draw_page(page, app_url)
    for points, digit in [(ONE, "1"), (ZERO, "0"), (SEVEN, "7")]:
        stroke(page, points)
        assert prediction(page) == digit
        expect_neighbours(page, 5)  # k pictures, each loaded
        # the toolbar (undo, clear) is shown without hovering over the canvas
        assert page.locator(CLEAR).evaluate("b => getComputedStyle(b.closest('.dc-toolbar')).opacity") == "1"
        clear(page)  # the prediction goes, and the page asks for a drawing again
        page.get_by_text("Draw a digit in the box").wait_for()


def test_undo_goes_back_to_the_previous_drawing(page, app_url):
    open_draw_page(page, app_url)
    stroke(page, ONE)
    assert prediction(page) == "1"
    stroke(page, [(60, 45), (140, 45)])  # a bar to the left of the top: now a 7
    changed = wait_for_prediction(page, "text !== '1'")
    assert changed == "7"
    page.locator(UNDO).click()
    assert wait_for_prediction(page, "text === '1'") == "1"  # the bar is gone, and so is the 7


def test_link_settings_and_bad_values(page, app_url):
    open_draw_page(page, app_url + "/?k=3&metric=bogus&weights=distance")
    warning = page.locator('[data-testid="stAlertContentWarning"]')
    warning.wait_for()
    assert "metric" in warning.inner_text()
    stroke(page, ONE)
    assert prediction(page) == "1"
    expect_neighbours(page, 3)
    assert "k=3" in page.url and "metric=euclidean" in page.url and "weights=distance" in page.url
    expect(page.locator(".vote-bars")).to_contain_text("each neighbour weighs 1/distance")  # the vote's bars


def test_non_image_upload_shows_an_error(page, app_url):
    open_draw_page(page, app_url)
    page.locator(UPLOAD).set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture at all"}])
    error = page.locator(ERROR)
    error.wait_for()
    assert "not a PNG or JPEG" in error.inner_text()
    assert page.locator(METRIC).count() == 0


def test_a_file_over_5_mb_is_refused_with_a_message(page, app_url):
    """The README's limit (.streamlit/config.toml server.maxUploadSize = 5): the uploader says so."""
    open_draw_page(page, app_url)
    page.get_by_text("Pen width · or classify a photo instead").click()  # the upload is folded, as a user opens it
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024 + 1)
    page.locator(UPLOAD).set_input_files(files=[{"name": "huge.png", "mimeType": "image/png", "buffer": big}])
    expect(page.get_by_text(re.compile(r"File must be 5(\.0)? ?MB or smaller"))).to_be_visible()
    assert page.locator(METRIC).count() == 0 and page.locator(ERROR).count() == 0  # never reached the page
    # a drawing still works afterwards
    stroke(page, SEVEN)
    assert prediction(page) == "7"
