"""Several app processes behind nginx (scripts/serve.sh, deploy/serve.py) in a real browser.

Two Streamlit processes and nginx on free local ports: a drawing through nginx is predicted and
all of the browser's requests reach one process (the route cookie); SIGKILL that process and the
browser reconnects through nginx to the other one and goes on drawing, and the supervisor brings
the dead one back; a student on one process and the teacher's wall on the other see one class room
(the processes share PostgreSQL: tests/room_fixtures.py's throwaway cluster, or, where PostgreSQL is
not installed, one SQLite file).  Skipped when nginx is missing (a failure with KNN_REQUIRE_BROWSER=1,
as in CI).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from room_fixtures import postgres  # noqa: F401  (the session's PostgreSQL cluster)

from loadtest.browser import (
    CLEAR,
    METRIC,
    ONE,
    SEVEN,
    ZERO,
    clear,
    idle,
    open_draw_page,
    prediction,
    stroke,
    wait_for_prediction,
)

pytestmark = pytest.mark.e2e

LOG_LINE = re.compile(
    r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) route=(?P<route>\S+) '
    r"upstream=(?P<upstream>.*) (?P<seconds>[\d.]+)$"
)


@pytest.fixture(scope="module")
def shared_database(request, tmp_path_factory):
    """The class room database of both processes: a fresh PostgreSQL database, or a SQLite file."""
    try:
        server = request.getfixturevalue("postgres")
    except pytest.skip.Exception:
        yield f"sqlite:///{tmp_path_factory.mktemp('room') / 'classroom.sqlite3'}"
        return
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture(scope="module")
def stack(nginx_path, chromium_path, shared_database, tmp_path_factory):
    from deploy.serve import Stack, free_port

    run_dir = tmp_path_factory.mktemp("serve")
    ports = [free_port(), free_port()]
    with Stack(workers_n=2, port=free_port(), worker_ports=ports, run_dir=run_dir, database_url=shared_database) as s:
        yield s


def pinned_page(browser, stack, group: str):
    """A new browser (context) whose route cookie sends it to process `group`, and its page."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_cookies([{"name": "route", "value": group, "url": stack.url}])
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    return ctx, page


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def route(context) -> str | None:
    return {c["name"]: c["value"] for c in context.cookies()}.get("route")


def access_log(stack) -> list[dict]:
    """nginx's access log (deploy/nginx.conf.template's `knn` format), one dict per request."""
    lines = Path(stack.run_dir, "access.log").read_text().splitlines()
    return [m.groupdict() for m in map(LOG_LINE.search, lines) if m]


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return value


def draw_a_one(stack, context):
    """Open the Draw page through nginx in this browser and draw a 1; (the page, its route cookie)."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_draw_page(page, stack.url)
    stroke(page, ONE)
    assert prediction(page) == "1"
    return page, route(context)


def test_healthz_reports_every_process(stack):
    report = stack.health()
    assert report["status"] == "ok" and report["healthy"] == report["total"] == 2
    assert {w["address"] for w in report["workers"].values()} == {w.address for w in stack.workers}


def test_a_browser_draws_through_nginx_and_stays_on_one_process(stack, context):
    _, pinned = draw_a_one(stack, context)
    assert pinned in {"w1", "w2"}
    address = stack.worker(pinned).address
    context.close()  # nginx logs the WebSocket when it closes

    def stream_logged():
        return [r for r in access_log(stack) if r["path"] == "/_stcore/stream" and r["route"] == pinned]

    streams = wait_until(stream_logged, 30, "the WebSocket in nginx's log")
    assert all(r["status"] == "101" and r["upstream"] == address for r in streams)
    # every request that carried the cookie (assets, health, host config, the WebSocket) went to that process
    mine = [r for r in access_log(stack) if r["route"] == pinned]
    assert len(mine) > 10
    assert {r["upstream"] for r in mine} == {address}


def test_a_student_on_one_process_and_the_wall_on_the_other_see_one_class(stack, browser, shared_database):
    from knn_core.room import open_store

    store = open_store(shared_database)
    room = store.create_room()
    store.set_prompt(room.teacher_token, 1)  # "Everyone draw a 1": a send needs no "which digit" answer
    teacher_ctx, wall = pinned_page(browser, stack, "w1")
    student_ctx, student = pinned_page(browser, stack, "w2")
    try:
        wall.goto(f"{stack.url}/class_room?teacher={room.teacher_token}")
        count = wall.locator('[data-testid="stMetric"]').filter(has_text="Drawings").locator(METRIC)
        expect(count).to_have_text("0", timeout=60_000)

        open_draw_page(student, f"{stack.url}/class_room?room={room.code}")
        stroke(student, ONE)
        assert prediction(student) == "1"
        student.get_by_role("button", name="Send to the class").click()
        expect(student.get_by_text("Sent ✓")).to_be_visible(timeout=60_000)

        expect(count).to_have_text("1", timeout=30_000)  # the wall, on the other process, refreshes by itself
        (sent,) = store.drawings(room.code, wall=False)
        assert (sent.label, sent.predicted) == (1, 1)
        # each browser stayed on its own process throughout
        assert route(teacher_ctx) == "w1" and route(student_ctx) == "w2"
    finally:
        teacher_ctx.close()
        student_ctx.close()
    streams = [r for r in access_log(stack) if r["path"] == "/_stcore/stream"]
    for group in ("w1", "w2"):
        mine = [r for r in streams if r["route"] == group]
        assert {r["upstream"] for r in mine} <= {stack.worker(group).address}


def clear_again_if_lost(page, presses: int = 3) -> None:
    """Clear the canvas; a press that fell in the reconnect (the old result stays) is pressed again, as a
    student would: the canvas clears in the browser, but the rerun it asks for can be lost on the way."""
    for _ in range(presses):
        page.locator(CLEAR).click()
        try:
            page.locator(METRIC).wait_for(state="detached", timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the prediction stayed after {presses} presses of the canvas' clear button")


def test_killing_the_session_s_process_moves_the_browser_to_the_other(stack, context):
    page, pinned = draw_a_one(stack, context)
    victim = stack.worker(pinned)
    survivor = next(w for w in stack.workers if w is not victim)
    old_pid = victim.pid

    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    # Streamlit's page reconnects by itself; nginx sends it to the backup and re-pins the cookie
    wait_until(lambda: route(context) == survivor.group, 60, "the route cookie to name the live process")
    reconnected = time.monotonic() - killed
    idle(page)  # connected again (Streamlit's status shows while it reconnects)
    clear_again_if_lost(page)
    stroke(page, SEVEN)
    assert wait_for_prediction(page, "text === '7'") == "7"
    recovered = time.monotonic() - killed
    print(f"\nSIGKILL -> reconnected through nginx: {reconnected:.2f} s; -> next drawing predicted: {recovered:.2f} s")

    # the supervisor restarts the dead process; the browser stays where its WebSocket is
    report = stack.wait_status("ok", timeout=180)
    assert report["status"] == "ok", report
    assert report["workers"][victim.group]["restarts"] == 1 and report["workers"][victim.group]["pid"] != old_pid
    clear(page)
    stroke(page, ZERO)
    assert wait_for_prediction(page, "text === '0'") == "0"
    assert route(context) == survivor.group

    # its WebSocket stayed on the survivor (nginx logs it when it closes)
    def streams():
        return [r for r in access_log(stack) if r["path"] == "/_stcore/stream" and r["route"] == survivor.group]

    before = len(streams())
    context.close()
    wait_until(lambda: len(streams()) > before, 30, "the WebSocket in nginx's log")
    assert {r["upstream"].split(", ")[-1] for r in streams()} == {survivor.address}


def test_a_drawing_not_yet_sent_when_its_process_dies_is_sent_from_the_live_one(stack, browser, shared_database):
    """What a student sees: the page reconnects by itself, the drawing stays on the canvas, and pressing
    "Send to the class" sends it (the browser's rerun carries the canvas) through the live process."""
    from knn_core.room import open_store

    assert stack.wait_status("ok", timeout=180)["status"] == "ok"  # after the previous test's restart
    store = open_store(shared_database)
    room = store.create_room()
    store.set_prompt(room.teacher_token, 7)
    ctx, student = pinned_page(browser, stack, "w2")
    try:
        open_draw_page(student, f"{stack.url}/class_room?room={room.code}")
        stroke(student, SEVEN)
        assert prediction(student) == "7"
        os.kill(stack.worker("w2").pid, signal.SIGKILL)
        wait_until(lambda: route(ctx) == "w1", 60, "the page to reconnect to the live process")
        idle(student)  # connected again (Streamlit's status shows while it reconnects)
        send = student.get_by_role("button", name="Send to the class")
        send.click()
        try:
            expect(student.get_by_text("Sent ✓")).to_be_visible(timeout=20_000)
        except AssertionError:  # pressed while the page was still reconnecting: a student presses again
            send.click()
            expect(student.get_by_text("Sent ✓")).to_be_visible(timeout=60_000)
        assert prediction(student) == "7"
        (sent,) = store.drawings(room.code, wall=False)
        assert (sent.label, sent.predicted) == (7, 7)
    finally:
        ctx.close()
