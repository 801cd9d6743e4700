"""Latency in a real browser: stroke -> prediction on the Draw page, and page switches between the
analysis pages once their results are cached.

    .venv/bin/python benchmarks/browser_latency.py                     # both, on a server of its own
    .venv/bin/python benchmarks/browser_latency.py --strokes 20 --skip-pages
    .venv/bin/python benchmarks/browser_latency.py --url http://127.0.0.1:8501

Stroke: headless Chromium draws a "1" with the mouse, the clock runs in the
page from `pointerup` to the Prediction metric appearing (and, for
information, until all k neighbour pictures have loaded); k=5 euclidean on
60,000 digits.  Pages: a click on a page's link in the sidebar until its main
chart is drawn, after a first visit has searched (all 60,000 training digits
by default: minutes on an empty cache) — each page 3 times.  The tests check
that these work; this prints how fast they are (budgets in the README:
stroke median 300 ms, page switch median 1.5 s).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.browser import NEIGHBOURS, ONE, chromium_on_app, clear, idle, open_draw_page, prediction, stroke  # noqa: E402

SLOW_MS = 60 * 60_000
PAGES = {
    "confusion": ".st-key-confusion_chart .main-svg",
    "k_sweep": ".st-key-compare_chart .main-svg",
    "misclassified": ".st-key-wrong_vote .main-svg",
    "suspicious": ".digit-with-neighbours img",
}
OTHER = {"confusion": "misclassified", "k_sweep": "confusion", "misclassified": "confusion",
         "suspicious": "confusion"}

# Records, in the page, when the pointer goes up, when a prediction appears, and when
# all k neighbour pictures have loaded.
TIMER_JS = r"""(k) => {
  window.__lat = {up: null, shown: null, grid: null};
  window.addEventListener('pointerup', () => { window.__lat = {up: performance.now(), shown: null, grid: null}; });
  const check = () => {
    const L = window.__lat;
    if (L.up === null) return;
    if (L.shown === null) {
      const m = document.querySelector('[data-testid="stMetricValue"]');
      if (m && m.textContent.trim() !== '') L.shown = performance.now();
    }
    if (L.shown !== null && L.grid === null) {
      const imgs = [...document.querySelectorAll('.st-key-neighbours .neighbour-digits img')];
      if (imgs.length === k && imgs.every(i => i.complete && i.naturalWidth > 0)) L.grid = performance.now();
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
  document.addEventListener('load', check, true);
}"""


def stroke_latency(page, url: str, n: int) -> None:
    open_draw_page(page, url)
    stroke(page, ONE)  # warm-up: the first render of the chart and pictures
    assert prediction(page) == "1"
    clear(page)
    page.evaluate(TIMER_JS, 5)
    shown, grid = [], []
    for i in range(n):
        x = 110 + 6 * (i % 10)
        stroke(page, [(x, 45), (x, 235)])
        page.wait_for_function("() => window.__lat.grid !== null")
        lat = page.evaluate("() => window.__lat")
        shown.append(lat["shown"] - lat["up"])
        grid.append(lat["grid"] - lat["up"])
        assert prediction(page) == "1" and page.locator(NEIGHBOURS).count() == 5
        clear(page)
    print(f"stroke end -> prediction shown (ms): median {statistics.median(shown):.0f}, "
          f"all {[round(v) for v in shown]}")
    print(f"stroke end -> all 5 neighbour pictures loaded (ms): median {statistics.median(grid):.0f}, "
          f"all {[round(v) for v in grid]}", flush=True)


def switch(page, path: str) -> float:
    """Click the page's link in the sidebar; seconds until its main element is drawn."""
    t0 = time.perf_counter()
    page.locator(f'.st-key-page_menu a[href="{path}"]').click()
    page.locator(PAGES[path]).first.wait_for(timeout=SLOW_MS)
    seconds = time.perf_counter() - t0
    idle(page, SLOW_MS)
    return seconds


def page_switches(page, url: str, query: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    for path in PAGES:
        page.goto(f"{url}/?{query}")
        page.locator(".st-key-page_menu").wait_for()
        page.goto(f"{url}/{path}?{query}")
        page.locator(PAGES[path]).first.wait_for(timeout=SLOW_MS)  # the first visit may search
        idle(page, SLOW_MS)
        switch(page, OTHER[path])  # warm both pages in this session
        times = []
        for _ in range(3):
            times.append(switch(page, path))
            switch(page, OTHER[path])
        print(f"{path}: page switch -> main chart drawn (s, cached results): median {statistics.median(times):.2f}, "
              f"all {[round(t, 2) for t in times]}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running local server (default: start one)")
    p.add_argument("--strokes", type=int, default=10, help="timed strokes (default %(default)s)")
    p.add_argument("--size", type=int, default=60000, help="training digits on the analysis pages")
    p.add_argument("--skip-pages", action="store_true", help="only the strokes")
    args = p.parse_args(argv)
    with chromium_on_app(args.url) as (url, browser):
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        stroke_latency(page, url, args.strokes)
        if not args.skip_pages:
            page_switches(page, url, f"size={args.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
