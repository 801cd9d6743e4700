"""A class in Chromium: a teacher starts a class; three students (two laptops, one phone drawing with a
finger) join by the link, draw and send; the wall shows the three drawings with kNN's answers; a hidden
drawing leaves the wall; the export reads back with load_mnist.

The session's server (tests/conftest.py) keeps its class rooms in the session's temporary data folder
($KNN_LAB_DATA_DIR).  Uses the ``browser`` and ``app_url`` fixtures of tests/e2e/conftest.py.
"""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import expect

from loadtest.browser import CANVAS, METRIC, ONE, SEVEN, ZERO, stroke, touch_stroke
from loadtest.run_browsers import PIXEL_7

pytestmark = pytest.mark.e2e

WALL = ".room-wall figure.room-drawing"
STUDENTS = [("laptop", ONE, "1"), ("phone", ZERO, "0"), ("laptop", SEVEN, "7")]


def _student_sends(browser, join: str, device: str, points, digit: str) -> int:
    """Open the join link, draw `points` (mouse, or finger on the phone), say which digit it is, send;
    the drawing's number from "Sent ✓ (#n)"."""
    context = browser.new_context(**(PIXEL_7 if device == "phone" else {"viewport": {"width": 1280, "height": 900}}))
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(join)
        canvas = page.locator(CANVAS)
        canvas.wait_for()
        if device == "phone":
            touch_stroke(page, context.new_cdp_session(page), canvas, points)
        else:
            stroke(page, points)
        expect(page.locator(METRIC)).to_have_text(digit)
        page.locator(".st-key-room_meant button").filter(has_text=re.compile(f"^{digit}$")).click()
        send = page.get_by_role("button", name="Send to the class")
        expect(send).to_be_enabled()
        send.click()
        sent = page.get_by_text(re.compile(r"Sent ✓ \(#\d+\)"))
        sent.wait_for()
        return int(re.search(r"#(\d+)", sent.inner_text()).group(1))
    finally:
        context.close()


def _wall(teacher) -> dict[int, str]:
    return {int(f.get_attribute("data-id")): f.get_attribute("data-answer") for f in teacher.locator(WALL).all()}


def test_a_class_draws_on_the_projector(browser, app_url, tmp_path):
    from knn_core import load_mnist

    teacher = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
    teacher.set_default_timeout(60_000)
    teacher.goto(f"{app_url}/class_room")
    teacher.get_by_role("button", name="Start a class").click()
    teacher.locator(".room-code").wait_for()
    assert "teacher=" in teacher.url
    join = teacher.locator(".join-link b").inner_text()
    code = teacher.locator(".room-code").inner_text()
    assert join.endswith(f"/class_room?room={code}") and join.startswith(app_url)
    assert teacher.locator("img.join-qr").is_visible()

    sent = {
        _student_sends(teacher.context.browser, join, device, points, digit): digit
        for device, points, digit in STUDENTS
    }
    assert len(sent) == 3
    # the wall refreshes by itself: no reload, no click
    expect(teacher.locator(WALL)).to_have_count(3)
    assert _wall(teacher) == sent
    expect(teacher.locator('[data-testid="stMetricValue"]').first).to_have_text("3")

    # hide the newest (the moderation's drawing picker starts on it, once it has the latest): it leaves the wall
    newest = max(sent)
    teacher.get_by_role("button", name="↻ Latest drawings").filter(visible=True).click()
    teacher.get_by_role("button", name="Hide from the wall").click()
    expect(teacher.locator(WALL)).to_have_count(2)
    assert newest not in _wall(teacher)

    # export: the two drawings left on the wall, read back as MNIST's test split
    teacher.get_by_role("tab", name="Export · delete").click()
    teacher.get_by_role("button", name="↻ Latest drawings").filter(visible=True).click()
    expect(teacher.get_by_text("Export the class's 2 labelled drawings")).to_be_visible()
    with teacher.expect_download() as download:
        teacher.get_by_role("button", name="MNIST IDX files (zip)").click()
    path = tmp_path / "class.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "idx")
    ds = load_mnist(tmp_path / "idx", train_from="bundled")
    assert sorted(ds.test_labels.tolist()) == sorted(int(d) for i, d in sent.items() if i != newest)
    teacher.context.close()
