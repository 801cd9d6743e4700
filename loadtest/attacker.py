"""The attacker: one student who does everything a class server must survive, in three tabs at once.

Issue #16 ("one student can't hurt the class"). While the class draws, the
attacker keeps three browser tabs busy, each a :class:`~loadtest.protocol.Session`
doing what a tab would do, over and over until the deadline:

- **files** (the Draw page): uploads the crafted PNGs (a 1-px frame drawn in
  a varying alpha channel, 3000 x 3000, which must be refused, and
  2000 x 2000, which is accepted and classified; then a stroke while it is
  still uploaded, and the box cleared, which hands back to the photo), then
  sends forged canvas values: 1400 x 1400, a
  400 x 10,000 strip (refused: not canvas-sized) and a 1000 x 1000 frame
  (accepted), and a real drawing after them.  The frame's inset changes every
  round, so no two rounds send the same bytes.
- **searches** (the analysis pages): opens Confusion, Choosing k,
  Misclassified, Suspicious labels and Baselines with slow settings
  (e.g. ``?metric=minkowski&size=60000``, manhattan, cosine, L3, the shift
  methods), presses a "Start the search" button (``*_start``) wherever one
  appears, watches the progress for a few seconds and leaves for the next
  link (a new tab: a new session, so the per-session limit of the job
  queue is no limit to it).
- **urls** (the Draw page): cycles the link through every setting, every
  method preset x training size, and every metric x size for classic kNN
  (k, weights and tie rule varied too), and draws on each: every new
  (method, size) is a classifier to fit, so this is what could pin memory.

Every answer is checked: an exception element on the page, a missing answer
(neither a message nor a prediction where one is due), a timeout or a closed
connection is a failure.  Each check is an :class:`Attack` record with the
time the server took.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import random
import time
import urllib.parse
from dataclasses import dataclass, field

from . import payloads
from .protocol import ProtocolError, RunResult, Session, canvas_value

STREAMS = ("files", "searches", "urls")
PRESS_WAIT_S = 5.0  # how long the attacker watches a search it started before leaving for the next link
LOAD_WAIT_S = 8.0  # how long it watches an analysis page's first load (a short search starts by itself)


@dataclass
class Attack:
    stream: str
    case: str
    ok: bool
    message: str
    seconds: float


@dataclass
class AttackLog:
    attacks: list = field(default_factory=list)  # Attack
    errors: list = field(default_factory=list)  # failures of the session itself (timeouts, closed)
    url_start: int = 0  # where in all_settings() the link cycling starts (a later phase goes on from there)
    target_start: int = 0  # and where in search_targets() the searches start
    urls_visited: int = 0  # links drawn on (answered)
    links_opened: int = 0
    targets_opened: int = 0
    searches_pressed: int = 0
    t_left: float | None = None  # time.monotonic() when the last tab closed

    def add(self, stream: str, case: str, ok: bool, message: str, seconds: float) -> None:
        self.attacks.append(Attack(stream, case, ok, message[:200], round(seconds, 3)))

    @property
    def failures(self) -> list[str]:
        return [f"{a.stream}: {a.case}: {a.message}" for a in self.attacks if not a.ok]


def _shown(r: RunResult) -> str:
    alerts = r.texts("error") + r.texts("warning") + r.texts("info")
    return alerts[0][:160] if alerts else ""


def answered_by_message(r: RunResult) -> tuple[bool, str]:
    """Refused input: an error or warning message in the page, and no exception."""
    if r.exceptions:
        return False, f"exception: {r.exceptions[0][:160]}"
    shown = r.texts("error") + r.texts("warning")
    if not shown:
        return False, f"no error or warning (alerts: {r.alerts[:2]}, prediction {r.prediction})"
    return True, shown[0][:160]


def answered(r: RunResult) -> tuple[bool, str]:
    """Accepted input: a prediction or a message (e.g. 'no ink found'), and no exception."""
    if r.exceptions:
        return False, f"exception: {r.exceptions[0][:160]}"
    if r.prediction is None and not r.alerts:
        return False, "neither a prediction nor a message"
    return True, f"prediction {r.prediction}" if r.prediction is not None else _shown(r)


def no_exception(r: RunResult) -> tuple[bool, str]:
    """A page that is still working (a search under way): whatever arrived holds no exception."""
    if r.exceptions:
        return False, f"exception: {r.exceptions[0][:160]}"
    return True, _shown(r) or ("finished" if r.finish is not None else f"{r.n_messages} messages, still running")


# ------------------------------------------------------------------------------------- payloads


# Built once per process (2.5 s for the files): in the load generator's event loop, building them when a
# phase starts stalled every student's session there and added up to that much to the strokes it timed.
@functools.lru_cache(maxsize=None)
def file_rounds(n: int = 4) -> tuple[dict, ...]:
    """n variants (frame insets 1..n) of the hostile files and canvas values, built once (do not change them)."""
    from knn_core.testing import encode_png, frame_picture

    def frame(height: int, width: int, inset: int) -> bytes:
        return encode_png(frame_picture(height, width, inset=inset, in_alpha=True))

    return tuple({"upload 3000x3000 alpha frame": frame(3000, 3000, inset),
             "upload 2000x2000 alpha frame": frame(2000, 2000, inset),
             "canvas 1400x1400": frame(1400, 1400, inset),
             "canvas 400x10000 strip": frame(10_000, 400, inset),
             "canvas 1000x1000 frame": frame(1000, 1000, inset)}
                 for inset in range(1, n + 1))


@functools.lru_cache(maxsize=None)
def all_settings(seed: int = 0) -> tuple[str, ...]:
    """A link's query string for every setting that makes a different classifier: every method preset
    x training size, every metric x size for classic kNN (biggest sizes first: the most memory soonest),
    with k, weights and tie rule varied too."""
    from knn_core.search import METRICS
    from knn_core.vote import TIE_BREAKS, WEIGHTS
    from ui.settings import CLASSIC, METHODS, TRAIN_SIZES

    rng = random.Random(seed)
    out = []
    for size in sorted(TRAIN_SIZES, reverse=True):
        for method in METHODS:
            for metric in (METRICS if method == CLASSIC else (rng.choice(METRICS),)):
                q = {"method": method, "metric": metric, "size": size, "k": rng.randint(1, 50),
                     "weights": rng.choice(tuple(WEIGHTS)), "tie": rng.choice(tuple(TIE_BREAKS))}
                out.append(urllib.parse.urlencode(q))
    return tuple(out)


SLOW_LINKS = (  # analysis pages with slow settings: a button, an automatic short search, or "too long"
    "metric=minkowski&size=60000",
    "metric=manhattan&size=10000",
    "metric=cosine&size=60000",
    "method=L3&size=60000",
    "method=deskew%2Bblur%2BL3%2Bshift1&size=5000",
    "metric=manhattan&size=5000",
    "method=deskew%2Bblur%2BL3%2Bshift1&size=20000",
    "method=deskew&size=60000",
    "method=deskew%2Bblur%2BL3%2Bshift2&size=500",
    "metric=minkowski&size=500",
    "method=deskew%2Bblur%2BL3%2Bshift1&size=10000",
    "method=idm&size=60000",
    "metric=cosine&size=20000",
    "method=downsample&size=60000",
)
ANALYSIS_PAGES = ("confusion", "k_sweep", "misclassified", "suspicious")


@functools.lru_cache(maxsize=None)
def search_targets(seed: int = 0) -> tuple[tuple[str, str], ...]:
    """(page, query) for every analysis page x slow link, and the Baselines table at small sizes, shuffled."""
    rng = random.Random(seed)
    out = [(p, q) for p in ANALYSIS_PAGES for q in SLOW_LINKS]
    out += [("baselines", f"size={n}") for n in (2000, 5000, 10000)]
    rng.shuffle(out)
    return tuple(out)


# -------------------------------------------------------------------------------------- streams


async def _files(url: str, digits, deadline: float, log: AttackLog) -> None:
    variants = file_rounds()
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        files = variants[n % len(variants)]
        png, _ = digits[n % len(digits)]
        try:
            async with Session(url) as s:
                for case, refused in (("upload 3000x3000 alpha frame", True),
                                      ("upload 2000x2000 alpha frame", False)):
                    t = time.perf_counter()
                    r = await s.upload(files[case], "frame.png")
                    ok, msg = answered_by_message(r) if refused else answered(r)
                    log.add("files", case, ok, msg, time.perf_counter() - t)
                    if not refused:  # a stroke while the upload is there, then the box cleared: the photo again
                        for step, drawing in (("stroke with the 2000x2000 upload there", png),
                                              ("box cleared: the 2000x2000 upload again", payloads.BLANK_CANVAS)):
                            r = await s.draw(drawing)
                            ok, msg = answered(r)
                            log.add("files", step, ok, msg, r.t_done or 0.0)
                    await s.remove_upload()  # the ✕ next to the file
                    if time.monotonic() >= deadline:
                        return
                for case, refused in (("canvas 1400x1400", True), ("canvas 400x10000 strip", True),
                                      ("canvas 1000x1000 frame", False)):
                    r = await s.draw(value=canvas_value(files[case]))
                    ok, msg = answered_by_message(r) if refused else answered(r)
                    log.add("files", case, ok, msg, r.t_done or 0.0)
                r = await s.draw(png)
                ok = not r.exceptions and r.prediction is not None
                log.add("files", "drawing after the files", ok, f"prediction {r.prediction}", r.t_done or 0.0)
        except (ProtocolError, OSError) as exc:
            log.errors.append(f"attacker files: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def _searches(url: str, deadline: float, log: AttackLog, press_wait: float, seed: int) -> None:
    targets = search_targets(seed)
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        page, query = targets[(log.target_start + n) % len(targets)]
        log.targets_opened += 1
        case = f"{page}?{urllib.parse.unquote(query)}"
        try:
            s = Session(url, page=page, query=query)
            try:
                t = time.perf_counter()
                r = await s.connect(wait=min(LOAD_WAIT_S, max(0.1, deadline - time.monotonic())))
                ok, msg = no_exception(r)
                log.add("searches", "open " + case, ok, msg, time.perf_counter() - t)
                buttons = [w for w in r.widgets if w.endswith("_start")]
                if r.finish is not None and buttons and time.monotonic() < deadline:
                    key = buttons[n % len(buttons)]
                    t = time.perf_counter()
                    r = await s.press(key, wait=min(press_wait, max(0.1, deadline - time.monotonic())))
                    ok, msg = no_exception(r)
                    log.add("searches", f"press {key} on {case}", ok, msg, time.perf_counter() - t)
                    log.searches_pressed += 1
            finally:
                await s.close()  # leave: the search is abandoned (the page stops waiting for it)
        except (ProtocolError, OSError) as exc:
            log.errors.append(f"attacker searches ({case}): {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def _urls(url: str, digits, deadline: float, log: AttackLog, seed: int) -> None:
    links = all_settings(seed)
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        query = links[(log.url_start + n) % len(links)]
        log.links_opened += 1
        png, _ = digits[(7 * n) % len(digits)]
        try:
            t = time.perf_counter()
            async with Session(url, query=query) as s:
                r = await s.draw(png)
                ok = not r.exceptions and r.prediction is not None
                msg = f"prediction {r.prediction}" if ok else (r.exceptions or [f"no prediction: {r.alerts[:2]}"])[0]
                log.add("urls", "draw on ?" + urllib.parse.unquote(query), ok, msg, time.perf_counter() - t)
                log.urls_visited += 1
        except (ProtocolError, OSError) as exc:
            log.errors.append(f"attacker urls (?{query}): {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


def prepare(seed: int = 0) -> None:
    """Build every payload now, before a phase is timed (each builder keeps what it built)."""
    file_rounds()
    all_settings(seed)
    search_targets(seed)


async def attacker(url: str, digits, deadline: float, log: AttackLog, *, streams=STREAMS,
                   press_wait: float = PRESS_WAIT_S, seed: int = 0) -> None:
    """Run the attacker's tabs (`streams`, see the module docstring) until `deadline`, then leave."""
    unknown = set(streams) - set(STREAMS)
    if unknown:
        raise ValueError(f"unknown attacker streams {sorted(unknown)}; choose from {STREAMS}")
    tabs = []
    if "files" in streams:
        tabs.append(_files(url, digits, deadline, log))
    if "searches" in streams:
        tabs.append(_searches(url, deadline, log, press_wait, seed))
    if "urls" in streams:
        tabs.append(_urls(url, digits, deadline, log, seed))
    try:  # at the deadline the tabs close, whatever they are waiting for (a fit, a search)
        await asyncio.wait_for(asyncio.gather(*tabs), timeout=max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    finally:
        log.t_left = time.monotonic()


def summary(log: AttackLog) -> dict:
    """Checks per case (how many, failures, the server's slowest answer) for the report."""
    cases: dict = {}
    for a in log.attacks:
        key = a.case.split(" on ")[0].split("?")[0] if a.stream != "files" else a.case
        key = f"{a.stream}: {key}"
        c = cases.setdefault(key, {"n": 0, "failed": 0, "max_s": 0.0, "sample": a.message})
        c["n"] += 1
        c["failed"] += not a.ok
        c["max_s"] = round(max(c["max_s"], a.seconds), 2)
    return {"checks": len(log.attacks), "failures": len(log.failures), "failure_samples": log.failures[:10],
            "session_errors": log.errors[:10], "urls_visited": log.urls_visited,
            "first_link": log.url_start % max(1, len(all_settings())),
            "searches_pressed": log.searches_pressed, "cases": cases}
