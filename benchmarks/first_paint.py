"""A fresh server's first page in headless Chromium: how long it stays blank, and whether presentation
mode first shows in small type (#18 item 6).

    .venv/bin/python benchmarks/first_paint.py --port 8612                      # `streamlit run app.py`
    .venv/bin/python benchmarks/first_paint.py --port 8612 --start run_app      # scripts/run_app.sh
    .venv/bin/python benchmarks/first_paint.py --port 8612 --path "/neighbour_vote?present=1"

Each run starts a server of its own on --port, waits until it answers /_stcore/health (with
``--start run_app``, until scripts/run_app.sh says it is ready: its warm-up page has loaded, unless
--no-wait), opens the page in a new Chromium and records, in the page, from its request (navigation
start): the first element Streamlit draws, the page's title (its h1: the first content of the page
itself), when presentation mode's large type (html font-size 24px) arrived, whether the title was
ever there in small type, and whether Streamlit's own menu of raw file names ever showed.  Median of
--runs servers.  The disk cache is whatever $KNN_DIGIT_LAB_CACHE holds (the fit is in it after a
first run, as on a server started before).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.browser import CHROMIUM_ARGS, chromium_path, idle  # noqa: E402

# Records, from the first byte of the page on, what it shows when (performance.now(): ms since the request).
WATCH = """
window.__fp = {menus: []};
new MutationObserver(function () {
  const f = window.__fp, now = performance.now();
  const big = getComputedStyle(document.documentElement).fontSize === '24px';
  if (f.element === undefined && document.querySelector('[data-testid="stElementContainer"]')) f.element = now;
  const title = document.querySelector('[data-testid="stMain"] h1');
  if (title && f.title === undefined) f.title = now;
  if (title && !big) f.small_title = true;
  if (big && f.big === undefined) f.big = now;
  const nav = document.querySelector('[data-testid="stSidebarNav"]');
  if (nav) f.menus.push(nav.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start(kind: str, port: int, wait_ready: bool, log) -> tuple[subprocess.Popen, float]:
    """A server of its own; returns it and the seconds until it was there to open (healthy or ready)."""
    options = ["--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    cmd = ([sys.executable, "-m", "streamlit", "run", "app.py"] if kind == "streamlit"
           else ["bash", "scripts/run_app.sh"]) + options
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while not healthy(url):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        time.sleep(0.1)
    if kind == "run_app" and wait_ready:
        for line in proc.stderr:  # deploy/warm.py's line
            log.write(line)
            if "is ready" in line or "did not load" in line:
                break
    threading.Thread(target=lambda: log.writelines(proc.stderr), daemon=True).start()  # the pipe never fills
    return proc, time.monotonic() - t0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_run(browser, kind: str, port: int, path: str, wait_ready: bool, log) -> dict:
    proc, up = start(kind, port, wait_ready, log)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.add_init_script(WATCH)
        page.goto(f"http://127.0.0.1:{port}{path}")
        page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=180_000)
        idle(page, 180_000)
        found = page.evaluate("window.__fp")
        context.close()
    finally:
        stop(proc)
    out = {"server_up_s": round(up, 2), "first_element_ms": round(found.get("element", -1)),
           "title_ms": round(found.get("title", -1)), "raw_menu_seen": bool(found["menus"])}
    if "present=1" in path:
        out["large_type_ms"] = round(found.get("big", -1))
        out["title_in_small_type"] = bool(found.get("small_title"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8612)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--start", choices=["streamlit", "run_app"], default="streamlit")
    p.add_argument("--no-wait", action="store_true", help="run_app: open the page as soon as the server answers")
    p.add_argument("--path", default="/")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    runs = []
    with open(f"/tmp/first-paint-{args.port}.log", "w") as log, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            runs.append(one_run(browser, args.start, args.port, args.path, not args.no_wait, log))
            print(json.dumps(runs[-1]), flush=True)
        browser.close()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))
           and not isinstance(runs[0][k], bool)}
    print(f"{args.start}{' (opened at once)' if args.no_wait else ''} {args.path}: median of {len(runs)} "
          f"fresh servers: {json.dumps(med)}; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
