"""The attacker in a real browser: one Chromium with three tabs doing what a curious student can do with it.

Issue #16's second run ("a 6-browser run with one attacking browser").  The protocol-level attacker
(loadtest/attacker.py) speaks Streamlit's WebSocket protocol itself; this one has only what a browser
gives a student, in three tabs of its own Chromium, as attacker.py's three streams:

- **files** (the Draw page): uploads the crafted PNGs through the file uploader (the 3000 x 3000
  alpha frame, which must be refused with a message, and the 2000 x 2000 one, which is answered),
  draws a stroke while the upload is there, removes the upload and draws a digit;
- **searches**: opens the analysis pages with slow settings (``attacker.search_targets``), presses a
  "Start the search" button wherever one shows, watches for a few seconds and leaves by typing the
  next link (a new session each time);
- **urls**: opens the Draw page with every setting (``attacker.all_settings``) and draws on each.

Forged canvas values (a canvas of 1400 x 1400 or a 400 x 10,000 strip) take more than a browser:
only the protocol-level attacker sends them.  Every answer is checked as there: an exception
element on the page, no answer within ``ANSWER_S`` or a crashed tab is a failure.  The attacker's
Chromium runs at nice 19 (a wrapper script): in a classroom it runs on the attacker's own device,
here it shares the two cores with the students' browsers and the server.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import stat
import tempfile
import time
import urllib.parse

from .attacker import AttackLog, all_settings, file_rounds, search_targets
from .browser import CANVAS, CHROMIUM_ARGS, METRIC, ONE, SEVEN, STATUS
from .run_browsers import stroke

EXCEPTION = '[data-testid="stException"]'
MESSAGE = '[data-testid="stAlertContentError"], [data-testid="stAlertContentWarning"]'
UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'
REMOVE_UPLOAD = '[data-testid="stFileUploaderDeleteBtn"] button'
START = '[class*="_start"] button'  # the "Start the search" buttons (keys ending in _start: .st-key-..._start)
ANSWER_S = 60.0  # an answer (prediction, message) must come within this
SETTLE_S = 0.6  # the running indicator must stay away this long for a run to count as over


def nice_chromium() -> str:
    """A wrapper script that runs Debian's chromium at nice 19 (the attacker's own device)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found on PATH (Debian: apt-get install chromium)")
    fd, path = tempfile.mkstemp(prefix="knn-nice-chromium-", suffix=".sh")
    with os.fdopen(fd, "w") as f:
        f.write(f'#!/bin/sh\nexec nice -n 19 {chromium} "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


async def settled(page, timeout: float = ANSWER_S) -> None:
    """Wait until the page's script run is over: the running indicator gone for SETTLE_S seconds."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = await page.locator(STATUS).count() > 0
        now = time.monotonic()
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= SETTLE_S:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the page still ran after {timeout:.0f} s")


async def _exception(page) -> str | None:
    shown = page.locator(EXCEPTION)
    return (await shown.first.inner_text())[:160] if await shown.count() else None


async def check(page, log: AttackLog, stream: str, case: str, t0: float, *, want: str) -> None:
    """Record how the page answered an action started at `t0`, once its run is over: want "message"
    (refused with an error or warning), "prediction", "answer" (a prediction or an error or warning) or
    "nothing" (no exception)."""
    sel = {"message": MESSAGE, "prediction": METRIC, "answer": f"{METRIC}, {MESSAGE}"}.get(want)
    shown = page.locator(sel).first if sel else None
    try:
        if shown is not None:
            await shown.wait_for(timeout=ANSWER_S * 1000)
        await asyncio.sleep(0.3)
        await settled(page)  # and the run is over
        exc = await _exception(page)
        if exc is not None:
            ok, msg = False, f"exception: {exc}"
        elif shown is not None and not await shown.count():
            ok, msg = False, f"no {want} on the page"
        else:
            ok, msg = True, (await shown.inner_text())[:160] if shown is not None else "no exception"
    except Exception as exc:  # noqa: BLE001 - no answer in time, a crashed tab: a failure
        ok, msg = False, f"{type(exc).__name__}: {str(exc)[:160]}"
    log.add(stream, case, ok, msg, time.monotonic() - t0)


async def draw(page, points) -> None:
    """One mouse stroke through canvas points (280 x 280), then the pointer off the canvas."""
    await stroke(page, page.locator(CANVAS), None, points)
    await page.mouse.move(5, 5)


async def _open_draw(page, url: str) -> None:
    await page.goto(url)
    await page.locator(CANVAS).wait_for(timeout=ANSWER_S * 1000)


async def _files(ctx, url: str, deadline: float, log: AttackLog) -> None:
    page = await ctx.new_page()
    variants = file_rounds()
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        files = variants[n % len(variants)]
        try:
            await _open_draw(page, url)
            for case, want in (("upload 3000x3000 alpha frame", "message"), ("upload 2000x2000 alpha frame", "answer")):
                t0 = time.monotonic()
                await page.locator(UPLOAD).set_input_files(
                    files=[{"name": f"frame{n}.png", "mimeType": "image/png", "buffer": files[case]}])
                await check(page, log, "files", case, t0, want=want)
                if want == "answer":
                    t0 = time.monotonic()
                    await draw(page, ONE)
                    await check(page, log, "files", "stroke with the 2000x2000 upload there", t0, want="answer")
                await page.locator(REMOVE_UPLOAD).first.click()
                await settled(page)
            t0 = time.monotonic()
            await draw(page, SEVEN)
            await check(page, log, "files", "drawing after the files", t0, want="prediction")
        except Exception as exc:  # noqa: BLE001
            log.errors.append(f"attacking browser files: {type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(1)


async def _searches(ctx, url: str, deadline: float, log: AttackLog, press_wait: float, seed: int) -> None:
    page = await ctx.new_page()
    targets = search_targets(seed)
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        name, query = targets[n % len(targets)]
        case = f"{name}?{urllib.parse.unquote(query)}"
        log.targets_opened += 1
        try:
            t0 = time.monotonic()
            await page.goto(f"{url}/{name}?{query}")  # typed into the address bar: a new session
            await page.locator(".st-key-page_menu").wait_for(timeout=ANSWER_S * 1000)
            await asyncio.sleep(min(3.0, max(0.0, deadline - time.monotonic())))  # it loads; a short search starts
            exc = await _exception(page)
            log.add("searches", "open " + case, exc is None, f"exception: {exc}" if exc else "no exception",
                    time.monotonic() - t0)
            buttons = page.locator(START)
            if await buttons.count() and time.monotonic() < deadline:
                t0 = time.monotonic()
                await buttons.nth(n % await buttons.count()).click()
                log.searches_pressed += 1
                await asyncio.sleep(min(press_wait, max(0.0, deadline - time.monotonic())))
                exc = await _exception(page)
                log.add("searches", "press start on " + case, exc is None,
                        f"exception: {exc}" if exc else "no exception", time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001
            log.errors.append(f"attacking browser searches ({case}): {type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(1)


async def _urls(ctx, url: str, deadline: float, log: AttackLog, seed: int) -> None:
    page = await ctx.new_page()
    links = all_settings(seed)
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        query = links[(log.url_start + n) % len(links)]
        log.links_opened += 1
        try:
            t0 = time.monotonic()
            await _open_draw(page, f"{url}/?{query}")
            await draw(page, (ONE, SEVEN)[n % 2])
            await check(page, log, "urls", "draw on ?" + urllib.parse.unquote(query), t0, want="prediction")
            log.urls_visited += 1
        except Exception as exc:  # noqa: BLE001
            log.errors.append(f"attacking browser urls (?{query}): {type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(1)


async def attacking_browser(pw, url: str, deadline: float, log: AttackLog, *, press_wait: float = 5.0,
                            seed: int = 0) -> None:
    """The three tabs in a Chromium of their own (at nice 19) until `deadline`; then the browser closes."""
    wrapper = nice_chromium()
    browser = await pw.chromium.launch(executable_path=wrapper, args=CHROMIUM_ARGS)
    try:
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(ANSWER_S * 1000)
        tabs = [_files(ctx, url, deadline, log), _searches(ctx, url, deadline, log, press_wait, seed),
                _urls(ctx, url, deadline, log, seed)]
        try:
            await asyncio.wait_for(asyncio.gather(*tabs), timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass
    finally:
        await browser.close()
        log.t_left = time.monotonic()
        os.unlink(wrapper)
