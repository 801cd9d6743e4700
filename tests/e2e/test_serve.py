"""Several app processes behind nginx (scripts/serve.sh, deploy/serve.py) in a real browser.

Two Streamlit processes and nginx on free local ports: a drawing through nginx is predicted and
all of the browser's requests reach one process (the route cookie); SIGKILL that process and the
browser reconnects through nginx to the other one and goes on drawing, and the supervisor brings
the dead one back.  Skipped when nginx is missing (a failure with KNN_REQUIRE_BROWSER=1, as in CI).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from loadtest.browser import ONE, SEVEN, ZERO, clear, open_draw_page, prediction, stroke, wait_for_prediction

pytestmark = pytest.mark.e2e

LOG_LINE = re.compile(
    r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) route=(?P<route>\S+) '
    r"upstream=(?P<upstream>.*) (?P<seconds>[\d.]+)$"
)


@pytest.fixture(scope="module")
def stack(nginx_path, chromium_path, tmp_path_factory):
    from deploy.serve import Stack, free_port

    run_dir = tmp_path_factory.mktemp("serve")
    with Stack(workers_n=2, port=free_port(), worker_ports=[free_port(), free_port()], run_dir=run_dir) as s:
        yield s


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


def test_healthz_reports_every_process(stack):
    report = stack.health()
    assert report["status"] == "ok" and report["healthy"] == report["total"] == 2
    assert {w["address"] for w in report["workers"].values()} == {w.address for w in stack.workers}


def test_a_browser_draws_through_nginx_and_stays_on_one_process(stack, context):
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_draw_page(page, stack.url)
    stroke(page, ONE)
    assert prediction(page) == "1"
    pinned = route(context)
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


def test_killing_the_session_s_process_moves_the_browser_to_the_other(stack, context):
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_draw_page(page, stack.url)
    stroke(page, ONE)
    assert prediction(page) == "1"
    pinned = route(context)
    victim = stack.worker(pinned)
    survivor = next(w for w in stack.workers if w is not victim)
    old_pid = victim.pid

    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    # Streamlit's page reconnects by itself; nginx sends it to the backup and re-pins the cookie
    wait_until(lambda: route(context) == survivor.group, 60, "the route cookie to name the live process")
    reconnected = time.monotonic() - killed
    clear(page)
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
