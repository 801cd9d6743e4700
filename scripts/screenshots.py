"""Make the README's screenshots (docs/screenshots/*.png) in headless Chromium.

    .venv/bin/python scripts/screenshots.py                 # all of them, on a server of its own
    .venv/bin/python scripts/screenshots.py draw confusion  # just these
    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8501 --out /tmp/shots

Starts `streamlit run app.py` on a free local port (or uses --url), draws on
the pages the way a person would (loadtest/browser.py) and saves each view as
a palette PNG.  The analysis pages use all 60,000 training digits: on an empty
cache their first searches take minutes.  Debian's Chromium needs
fonts-noto-color-emoji for the page icons (scripts/test.sh installs it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtest.browser import (  # noqa: E402
    FOUR,
    METRIC,
    NEIGHBOURS,
    SEVEN,
    chromium_on_app,
    idle,
    images_loaded,
    open_draw_page,
    prediction,
    save_small_png,
    stroke,
)

SHOTS = ROOT / "docs" / "screenshots"
SLOW_MS = 60 * 60_000  # a first full-data search on a busy machine
ANALYSIS = {  # page -> the element that shows it has rendered
    "confusion": ".st-key-confusion_chart .main-svg",
    "k_sweep": ".st-key-compare_chart .main-svg",
    "misclassified": ".st-key-wrong_vote .main-svg",
    "suspicious": ".digit-with-neighbours img",
}


def settled(page) -> None:
    """The run is over, every picture has loaded, the fonts are in and no element still waits for its
    code (Streamlit draws a grey stSkeleton until a lazily loaded element, a table say, is ready):
    ready to photograph."""
    idle(page, SLOW_MS)
    page.mouse.move(5, 5)
    page.wait_for_function("() => [...document.images].every(i => i.complete) && document.fonts.status === 'loaded'"
                           " && !document.querySelector('[data-testid=\"stSkeleton\"]')")


def draw(name: str, link: str = "/"):
    """The Draw page opened by this link, with a 7 drawn on it."""

    def shoot(page, url: str, out: Path) -> None:
        page.set_viewport_size({"width": 1280, "height": 1000})
        open_draw_page(page, url + link)
        stroke(page, SEVEN)
        assert prediction(page) == "7"
        images_loaded(page, NEIGHBOURS)
        settled(page)
        save_small_png(page.screenshot(), out / f"{name}.png")

    return shoot


def neighbour_vote(page, url: str, out: Path) -> None:
    page.set_viewport_size({"width": 1400, "height": 1800})
    open_draw_page(page, url + "/")  # the Draw page first, as a student's tab would be
    open_draw_page(page, url + "/neighbour_vote?k=7&present=0")
    stroke(page, FOUR)
    page.locator(METRIC).wait_for()
    page.locator(".st-key-radial svg image").nth(7).wait_for()
    page.locator(".st-key-map").get_by_text("your digit").wait_for()  # the map's legend, once it has the star
    settled(page)
    save_small_png(page.screenshot(full_page=True), out / "neighbour_vote.png", colours=96)


def analysis(name: str):
    def shoot(page, url: str, out: Path) -> None:
        page.set_viewport_size({"width": 1280, "height": 1150})
        page.goto(url)
        page.locator(".st-key-page_menu").wait_for()
        page.goto(f"{url}/{name}")
        page.locator(ANALYSIS[name]).first.wait_for(timeout=SLOW_MS)
        settled(page)
        save_small_png(page.screenshot(), out / f"{name}.png")

    return shoot


SCREENSHOTS = {"draw": draw("draw"), "draw_idm": draw("draw_idm", "/?method=idm&k=4&weights=distance"),
               "neighbour_vote": neighbour_vote,
               **{name: analysis(name) for name in ANALYSIS}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"which screenshots (default: all): {', '.join(SCREENSHOTS)}")
    p.add_argument("--url", help="a running local server (default: start one)")
    p.add_argument("--out", type=Path, default=SHOTS, help="folder for the PNGs (default %(default)s)")
    args = p.parse_args(argv)
    names = args.names or list(SCREENSHOTS)
    unknown = [n for n in names if n not in SCREENSHOTS]
    if unknown:
        p.error(f"unknown screenshot {', '.join(unknown)}; choose from {', '.join(SCREENSHOTS)}")
    with chromium_on_app(args.url) as (url, browser):
        for name in names:
            t0 = time.perf_counter()
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(120_000)
            SCREENSHOTS[name](page, url, args.out)
            context.close()
            print(f"{args.out / name}.png ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
