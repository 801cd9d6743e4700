"""A method chosen in the sidebar (here by link), in a real browser: the Draw page shows its neighbours."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_draw_browser import NEIGHBOURS, SEVEN, _save_small_png, open_app, prediction, stroke

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "draw_idm.png"


def test_idm_by_link_draws_and_shows_its_neighbours_and_distance(page, app_url):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 1000})
    canvas = open_app(page, app_url + "/?method=idm&k=4&weights=distance")
    # the sidebar took the method from the link: its validated vote (k=4, 1/distance) is the current one
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(
        "k=4 with distance weights: this method's vote chosen on validation")
    stroke(page, canvas, SEVEN)
    assert prediction(page) == "7"  # the first stroke also prepares the training digits (seconds)
    expect(page.locator(NEIGHBOURS)).to_have_count(4)
    expect(page.get_by_text("Nearest first, by IDM distance")).to_be_visible()
    expect(page.locator("figcaption", has_text="As the method compares it")).to_have_count(1)
    assert "method=idm" in page.url
    page.mouse.move(5, 5)
    page.wait_for_timeout(800)  # images and chart settle
    _save_small_png(page.screenshot(), SCREENSHOT)
