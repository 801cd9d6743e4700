"""A method chosen in the sidebar (here by link), in a real browser: the Draw page shows its neighbours."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from loadtest.browser import NEIGHBOURS, SEVEN, open_draw_page, prediction, stroke

pytestmark = pytest.mark.e2e


def test_idm_by_link_draws_and_shows_its_neighbours_and_distance(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 1000})
    open_draw_page(page, app_url + "/?method=idm&k=4&weights=distance&size=1000")
    # the sidebar took the method from the link: its validated vote (k=4, 1/distance) is the current one
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(
        "k=4 with distance weights: this method's vote chosen on validation")
    stroke(page, SEVEN)
    assert prediction(page) == "7"  # the first stroke also prepares the training digits
    expect(page.locator(NEIGHBOURS)).to_have_count(4)
    expect(page.get_by_text("Nearest first, by IDM distance")).to_be_visible()
    expect(page.locator("figcaption", has_text="As the method compares it")).to_have_count(1)
    assert "method=idm" in page.url
