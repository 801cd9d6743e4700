"""Load test at the protocol level: N students drawing at once against one `streamlit run app.py`.

    .venv/bin/python -m loadtest.run_protocol                     # 30 sessions, 2 minutes
    .venv/bin/python -m loadtest.run_protocol --sessions 3 --duration 10 --check
    .venv/bin/python -m loadtest.run_protocol --compare-attacker  # issue #16: 2 x (60 s without, 60 s with)

Starts the app on a free port of 127.0.0.1 (or uses --url, which must be
local), then:

1. solo phase (--solo s): one student draws; the server's RSS afterwards is
   the one-session baseline (dataset loaded, classifier fitted, warm);
2. load phase (--duration s): --sessions students, each in its own WebSocket
   session on the Draw page, draw a real MNIST test digit (blown up to canvas
   size, varied in size and position), wait for the Prediction, read it and
   draw the next stroke for --think seconds (default 2; uniform 0.5x..1.5x), and again, until
   the time is up; plus --teachers sessions on the Neighbour vote page
   (presentation mode, drawing and moving k) and one garbage session (unless
   --no-garbage) that sends a bad link (k=10^9, metric=bogus), a canvas
   value that is not an image, an enormous image (12,000 x 12,000 PNG) and a
   malformed drawing, and uploads a text file and a PNG claiming
   100,000 x 100,000 pixels; each must be answered by an error or warning
   message, and a real drawing right after must be predicted again.

With --attacker, one more student attacks the server while the others draw
(loadtest/attacker.py: hostile uploads and canvas values, slow-search
buttons, links cycling through every setting; issue #16).  With
--compare-attacker, one invocation measures the class on one server
without the attacker and then with it (--duration seconds each, default
60), then watches the server's CPU after the attacker and the class left
(idle within --idle seconds?), and does that --rounds times (default 2),
so that both kinds of phase meet the machine's busy and quiet spells; the
report compares the students' strokes of all rounds together (p95 ratio,
errors, peak RSS, idle).

Latency is stroke -> prediction as the server delivers it: from sending the
``rerun_script`` a browser sends when a stroke ends to receiving the delta
with the Prediction metric (and, separately, to ``script_finished``: the whole
page rendered).  Errors: an exception on the page, a missing prediction, a
timeout or a closed connection in any session.  The server's memory is polled
from /proc/<pid>/status (VmRSS of the server and its worker processes together,
knn_core.worker; VmHWM is the server's own peak), and its CPU is theirs too.  Every loop is bounded in
time; the run stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

from knn_core.cache import CACHE_ENV  # where the server keeps neighbour lists

from . import attacker as attack
from . import payloads
from .protocol import ProtocolError, Session, canvas_value
from .server import MemoryWatch, Server, read_memory, tree_cpu_seconds, tree_rss_mb

BAD_QUERY = "k=1000000000&metric=bogus"
TARGET_P95_S = 1.0
TARGET_MEMORY_MB = 1536
TARGET_P95_RATIO = 1.5  # students' p95 with the attacker / without (issue #16)
IDLE_CORES = 0.05  # "idle": the server's CPU, averaged over the last IDLE_TAIL_S s of the idle window
IDLE_TAIL_S = 10
IDLE_MORE_S = 90  # if not idle by then, watch this much longer to say when it was
# Bytes of MNIST (train + test images and labels): what each session would add if it held its own copy.
DATASET_MB = (60000 * 785 + 10000 * 785) / 2**20


@dataclass
class Stats:
    latencies: list = field(default_factory=list)  # s, stroke -> Prediction
    when: list = field(default_factory=list)  # time.monotonic() at each latency's stroke
    page_times: list = field(default_factory=list)  # s, stroke -> script_finished
    strokes: int = 0
    correct: int = 0
    errors: list = field(default_factory=list)
    garbage: list = field(default_factory=list)  # (case, ok, message)


def _pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]


def _record(stats: Stats, who: str, r, label: int | None) -> None:
    stats.strokes += 1
    if r.exceptions:
        stats.errors.append(f"{who}: exception on the page: {r.exceptions[0][:200]}")
    elif r.prediction is None or r.t_metric is None:
        stats.errors.append(f"{who}: no prediction (alerts: {r.alerts[:2]})")
    else:
        stats.latencies.append(r.t_metric)
        stats.when.append(time.monotonic() - r.t_done)
        stats.page_times.append(r.t_done)
        stats.correct += str(label) == r.prediction


async def student(url: str, who: str, digits, deadline: float, think: float, stats: Stats, seed: int,
                  page: str = "", query: str = "", teacher: bool = False) -> None:
    rng = random.Random(seed)
    try:
        async with Session(url, page=page, query=query) as s:
            while time.monotonic() < deadline:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
                if time.monotonic() >= deadline:
                    break
                png, label = digits[rng.randrange(len(digits))]
                r = await s.draw(png)
                _record(stats, who, r, label)
                if teacher and rng.random() < 0.3:  # the teacher moves k
                    r2 = await s.set_widget("vote_k", double_array_value=[rng.randint(1, 25)])
                    if r2.exceptions or r2.prediction is None:
                        stats.errors.append(f"{who}: k slider: {r2.exceptions[:1] or 'no prediction'}")
    except (ProtocolError, OSError) as exc:
        stats.errors.append(f"{who}: {type(exc).__name__}: {exc}")


@functools.lru_cache(maxsize=None)
def huge_png() -> bytes:
    """The garbage session's 12000 x 12000 PNG, built once (0.9 s: built as a phase started, it stalled
    the load generator's event loop and every stroke it was timing)."""
    return payloads.huge_png()


async def garbage(url: str, digits, deadline: float, think: float, stats: Stats) -> None:
    """One session that sends everything a student should not, over and over, then draws properly."""
    huge = huge_png()
    cases = [
        ("canvas: not an image", dict(value=canvas_value(payloads.NOT_AN_IMAGE))),
        ("canvas: 12000x12000 PNG", dict(png=huge)),
        ("canvas: malformed drawing", dict(value=json.dumps({"drawing": {"raw": 7, "data": 5}}))),
        ("upload: not an image", dict(upload=(payloads.NOT_AN_IMAGE, "notes.png"))),
        ("upload: 100000x100000 PNG header", dict(upload=(payloads.png_header_only(100_000, 100_000), "big.png"))),
    ]
    n = 0
    while time.monotonic() < deadline:
        try:
            s = Session(url, query=BAD_QUERY)
            r = await s.connect()  # a link with k=10^9 and metric=bogus
            warned = r.texts("warning")
            ok = (not r.exceptions and any("**k**" in w for w in warned) and any("**metric**" in w for w in warned))
            stats.garbage.append(("link: k=10^9&metric=bogus", ok, warned[0][:160] if warned else str(r.alerts)))
            async with s:
                for case, how in cases:
                    if time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(think)
                    if "upload" in how:
                        r = await s.upload(*how["upload"])
                        ok, msg = attack.answered_by_message(r)  # garbage: a message, no exception
                        stats.garbage.append((case, ok, msg))
                        await s.remove_upload()  # remove the upload again, as the ✕ does
                    else:
                        r = await s.draw(how.get("png"), value=how.get("value"))
                        ok, msg = attack.answered_by_message(r)  # garbage: a message, no exception
                        stats.garbage.append((case, ok, msg))
                    png, label = digits[n % len(digits)]
                    n += 1
                    r = await s.draw(png)  # and then a real drawing works again
                    ok = not r.exceptions and r.prediction is not None
                    stats.garbage.append(("drawing after " + case, ok, f"prediction {r.prediction}"))
        except (ProtocolError, OSError) as exc:
            stats.errors.append(f"garbage session: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def load(url: str, args, digits, stats: Stats, log: attack.AttackLog | None = None) -> float:
    t0 = time.monotonic()
    deadline = t0 + args.duration
    tasks = []
    for i in range(args.sessions):
        tasks.append(asyncio.create_task(student(url, f"student {i + 1}", digits, deadline, args.think, stats,
                                                 seed=1000 + i)))
        await asyncio.sleep(args.ramp / max(1, args.sessions))  # students arrive over --ramp seconds
    for i in range(args.teachers):
        tasks.append(asyncio.create_task(student(url, f"teacher {i + 1}", digits, deadline, args.think, stats,
                                                 seed=9000 + i, page="neighbour_vote", query="present=1",
                                                 teacher=True)))
    if args.garbage:
        tasks.append(asyncio.create_task(garbage(url, digits, deadline, args.think, stats)))
    if log is not None:
        tasks.append(asyncio.create_task(attack.attacker(url, digits, deadline, log, streams=args.attacks,
                                                         press_wait=args.press_wait)))
    # every session stops at the deadline; a stuck one is cancelled after its timeout
    done, pending = await asyncio.wait(tasks, timeout=args.duration + 90)
    for t in pending:
        t.cancel()
        stats.errors.append("a session did not finish in time")
    for t in done:
        if t.exception() is not None:
            stats.errors.append(f"session crashed: {t.exception()!r}")
    return time.monotonic() - t0


def summary(args, solo: Stats, stats: Stats, mem: dict, elapsed: float, load_avg, cpu: dict,
            log: attack.AttackLog | None = None) -> dict:
    g_ok = sum(ok for _, ok, _ in stats.garbage)
    return {
        "sessions": args.sessions, "teachers": args.teachers, "garbage_session": bool(args.garbage),
        "attacker": attack.summary(log) if log is not None else None,
        "duration_s": round(elapsed, 1), "think_s": args.think,
        "strokes": stats.strokes, "strokes_per_s": round(stats.strokes / max(elapsed, 1e-9), 2),
        "errors": len(stats.errors), "error_samples": stats.errors[:10],
        "correct_fraction": round(stats.correct / max(1, len(stats.latencies)), 3),
        "latency_ms": {q: round(_pct(stats.latencies, q) * 1000) for q in (50, 95, 99)}
        | {"max": round(max(stats.latencies, default=float("nan")) * 1000)},
        "page_ms": {q: round(_pct(stats.page_times, q) * 1000) for q in (50, 95)},
        "solo_latency_ms_p50": round(_pct(solo.latencies, 50) * 1000),
        "p95_ms_per_10s": _windows(stats),
        "garbage_checks": len(stats.garbage), "garbage_answered": g_ok,
        "garbage_failures": [f"{c}: {m}" for c, ok, m in stats.garbage if not ok][:10],
        "garbage_cases": sorted({c for c, _, _ in stats.garbage if not c.startswith("drawing after")}),
        "memory_mb": mem, "dataset_mb": round(DATASET_MB, 1),
        "load_average_before": load_avg,
        "server_cpu_ms_per_stroke": cpu,
    }


def _windows(stats: Stats, width: float = 10.0) -> list:
    """p95 of the strokes sent in each `width`-second window: when the slow ones happened."""
    if not stats.when:
        return []
    t0 = min(stats.when)
    buckets: dict = {}
    for t, lat in zip(stats.when, stats.latencies):
        buckets.setdefault(int((t - t0) // width), []).append(lat)
    return [round(_pct(buckets.get(i, []), 95) * 1000) if i in buckets else None for i in range(max(buckets) + 1)]


def check(result: dict) -> list[str]:
    problems = []
    if result["errors"]:
        problems.append(f"{result['errors']} errors, e.g. {result['error_samples'][:3]}")
    if result["latency_ms"][95] > TARGET_P95_S * 1000:
        problems.append(f"p95 {result['latency_ms'][95]} ms > {TARGET_P95_S * 1000:.0f} ms")
    if result["memory_mb"]["peak"] > TARGET_MEMORY_MB:
        problems.append(f"peak RSS {result['memory_mb']['peak']:.0f} MB > {TARGET_MEMORY_MB} MB")
    if result["garbage_session"] and result["garbage_answered"] < result["garbage_checks"]:
        problems.append(f"garbage not answered: {result['garbage_failures'][:3]}")
    if result["garbage_session"] and not result["garbage_checks"]:
        problems.append("the garbage session checked nothing")
    a = result.get("attacker")
    if a is not None:
        if a["failures"] or a["session_errors"]:
            problems.append(f"the attacker was not answered properly {a['failures'] + len(a['session_errors'])} "
                            f"times, e.g. {(a['failure_samples'] + a['session_errors'])[:3]}")
        if not a["checks"]:
            problems.append("the attacker checked nothing")
    growth = result["memory_mb"]["growth_from_solo"]
    if a is None and growth > max(200.0, 0.25 * result["sessions"] * result["dataset_mb"]):
        problems.append(f"RSS grew by {growth:.0f} MB from 1 to {result['sessions']} sessions: "
                        "is the dataset held per session?")
    return problems


def print_report(r: dict) -> None:
    lat, page, mem = r["latency_ms"], r["page_ms"], r["memory_mb"]
    print(f"\n{r['sessions']} students + {r['teachers']} teacher(s) + "
          f"{'1 garbage session' if r['garbage_session'] else 'no garbage session'}"
          f"{' + the attacker' if r.get('attacker') else ''}, "
          f"{r['duration_s']:.0f} s, think {r['think_s']} s between strokes")
    print(f"  strokes              {r['strokes']} ({r['strokes_per_s']}/s), predicted = true label: "
          f"{r['correct_fraction']:.1%}")
    print(f"  errors               {r['errors']}" + (f"  e.g. {r['error_samples'][:3]}" if r["errors"] else ""))
    print(f"  stroke -> prediction p50 {lat[50]} ms, p95 {lat[95]} ms, p99 {lat[99]} ms, max {lat['max']} ms"
          f"  (one session alone: p50 {r['solo_latency_ms_p50']} ms)")
    print(f"  stroke -> whole page p50 {page[50]} ms, p95 {page[95]} ms")
    print(f"  p95 per 10 s window  {r['p95_ms_per_10s']} ms")
    print(f"  garbage              {r['garbage_answered']}/{r['garbage_checks']} answered with a message"
          + (f"; failures: {r['garbage_failures'][:3]}" if r["garbage_failures"] else ""))
    print(f"  server memory        1 session {mem['solo_rss']:.0f} MB; with all sessions peak RSS "
          f"{mem['peak']:.0f} MB (VmHWM {mem['hwm']:.0f} MB), +{mem['growth_from_solo']:.0f} MB "
          f"(a copy of MNIST per session would add {r['dataset_mb'] * r['sessions']:.0f} MB)")
    if r.get("attacker"):
        print_attacker(r["attacker"])
    cpu = r["server_cpu_ms_per_stroke"]
    print(f"  server CPU per stroke {cpu['solo']:.0f} ms alone, {cpu['load']:.0f} ms under load "
          f"(all of the server's threads and worker processes); under load the server used {cpu['cores_used_under_load']} "
          f"of the {os.cpu_count()} cores")
    print(f"  load average before  {r['load_average_before']} (other processes on the machine slow everything)")


async def warm_up(url: str, digits) -> None:
    """Load the data, fit, render each page once (not measured)."""
    async with Session(url) as s:
        for png, _ in digits[:3]:
            await s.draw(png)
    async with Session(url, page="neighbour_vote") as s:
        await s.draw(digits[0][0])


async def solo_phase(url: str, digits, seconds: float, stats: Stats) -> None:
    """One student alone: the baseline latency, memory and CPU per stroke."""
    async with Session(url) as s:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            png, label = digits[i % len(digits)]
            i += 1
            _record(stats, "solo", await s.draw(png), label)
            await asyncio.sleep(0.2)


def _phase(url: str, pid: int | None, args, digits, solo: Stats, solo_cpu: float, solo_rss: float,
           with_attacker: bool, after: attack.AttackLog | None = None) -> tuple[dict, attack.AttackLog | None, Stats]:
    """One load phase (the class, and the attacker if asked) on a warm server: its summary.

    `after`: the attacker's log of an earlier phase, whose links and searches this one goes on from."""
    stats = Stats()
    log = None
    if with_attacker:
        log = attack.AttackLog()
        if after is not None:
            log.url_start = after.url_start + after.links_opened
            log.target_start = after.target_start + after.targets_opened
    load_avg = [round(v, 2) for v in os.getloadavg()]
    c1 = tree_cpu_seconds(pid) if pid else float("nan")
    watch = MemoryWatch(pid) if pid else None
    if watch:
        watch.__enter__()
    try:
        elapsed = asyncio.run(load(url, args, digits, stats, log))
    finally:
        if watch:
            watch.__exit__(None, None, None)
    c2 = tree_cpu_seconds(pid) if pid else float("nan")
    cpu = {"solo": solo_cpu,
           "load": round((c2 - c1) * 1000 / max(1, stats.strokes), 1),
           "cores_used_under_load": round((c2 - c1) / max(elapsed, 1e-9), 2)}
    mem = {"solo_rss": solo_rss, "peak": watch.peak_mb if watch else float("nan"),
           "hwm": read_memory(pid)["VmHWM"] if pid else float("nan")}
    mem["growth_from_solo"] = mem["peak"] - solo_rss
    mem = {k: round(v, 1) for k, v in mem.items()}
    return summary(args, solo, stats, mem, elapsed, load_avg, cpu, log), log, stats


def pooled(args, solo: Stats, phases: list[dict], stats: list[Stats]) -> dict:
    """The phases of one kind taken together (every stroke of every round)."""
    all_stats = Stats()
    for st in stats:
        for name in ("latencies", "page_times", "errors", "garbage"):
            getattr(all_stats, name).extend(getattr(st, name))
        all_stats.strokes += st.strokes
        all_stats.correct += st.correct
    elapsed = sum(p["duration_s"] for p in phases)
    mem = {k: max(p["memory_mb"][k] for p in phases) for k in phases[0]["memory_mb"]}
    cpu = {"solo": phases[0]["server_cpu_ms_per_stroke"]["solo"],
           "load": round(sum(p["server_cpu_ms_per_stroke"]["load"] * p["strokes"] for p in phases)
                         / max(1, all_stats.strokes), 1),
           "cores_used_under_load": round(sum(p["server_cpu_ms_per_stroke"]["cores_used_under_load"] * p["duration_s"]
                                              for p in phases) / max(elapsed, 1e-9), 2)}
    r = summary(args, solo, all_stats, mem, elapsed, [p["load_average_before"] for p in phases], cpu)
    r["p95_ms_per_10s"] = [p["p95_ms_per_10s"] for p in phases]
    attackers = [p["attacker"] for p in phases if p.get("attacker")]
    if attackers:
        r["attacker"] = {"checks": sum(a["checks"] for a in attackers),
                         "failures": sum(a["failures"] for a in attackers),
                         "failure_samples": sum((a["failure_samples"] for a in attackers), [])[:10],
                         "session_errors": sum((a["session_errors"] for a in attackers), [])[:10],
                         "urls_visited": sum(a["urls_visited"] for a in attackers),
                         "searches_pressed": sum(a["searches_pressed"] for a in attackers),
                         "cases": attackers[-1]["cases"]}
    return r


def watch_idle(pid: int, t_left: float, window: float, longest: float) -> dict:
    """The server's CPU, second by second, after the attacker and the class left at `t_left`.

    Samples for `window` seconds, and on for up to `longest` seconds until it is idle (average
    below IDLE_CORES over IDLE_TAIL_S seconds), to say when it was.
    """
    points = [(time.monotonic() - t_left, tree_cpu_seconds(pid))]
    rss = tree_rss_mb(pid)

    def cores(a: float, b: float) -> float:
        """Average cores used between a and b seconds after leaving (the nearest samples)."""
        (ta, ca) = min(points, key=lambda p: abs(p[0] - a))
        (tb, cb) = min(points, key=lambda p: abs(p[0] - b))
        return (cb - ca) / (tb - ta) if tb > ta else float("nan")

    idle_at = None
    while True:
        time.sleep(1.0)
        t = time.monotonic() - t_left
        points.append((t, tree_cpu_seconds(pid)))
        rss = max(rss, tree_rss_mb(pid))
        if idle_at is None and t - points[0][0] >= IDLE_TAIL_S and cores(t - IDLE_TAIL_S, t) < IDLE_CORES:
            idle_at = t
        if t >= longest or (t >= window and idle_at is not None):
            break
    per_5s = [round(cores(a, a + 5), 2) for a in range(int(points[0][0]) + 1, int(min(t, window)) - 4, 5)]
    return {"window_s": window, "started_s": round(points[0][0], 1),
            "tail_cores": round(cores(window - IDLE_TAIL_S, window), 3),
            "idle_after_s": None if idle_at is None else round(idle_at, 1),
            "cores_per_5s": per_5s, "watched_s": round(t, 1), "peak_rss_mb": round(rss, 1)}


def run(args) -> dict:
    digits = payloads.drawings(200)
    huge_png()  # every payload built before anything is timed: not in the event loop that times the strokes
    if args.attacker or args.compare_attacker:
        attack.prepare()

    def go(url: str, pid: int | None) -> dict:
        solo = Stats()
        asyncio.run(warm_up(url, digits))
        c0 = tree_cpu_seconds(pid) if pid else float("nan")
        asyncio.run(solo_phase(url, digits, args.solo, solo))
        c1 = tree_cpu_seconds(pid) if pid else float("nan")
        if solo.errors:
            raise SystemExit(f"the app fails with one session: {solo.errors[:3]}")
        solo_rss = tree_rss_mb(pid) if pid else float("nan")
        solo_cpu = round((c1 - c0) * 1000 / max(1, solo.strokes), 1)
        if not args.compare_attacker:
            result, log, _ = _phase(url, pid, args, digits, solo, solo_cpu, solo_rss, args.attacker)
            if log is not None and pid and args.idle:
                result["idle"] = watch_idle(pid, log.t_left, args.idle, args.idle + IDLE_MORE_S)
            return result
        rounds, kept, last = [], {"without": [], "with": []}, None
        for _ in range(args.rounds):
            one = {}
            for name, with_attacker in (("without", False), ("with", True)):
                one[name], log, stats = _phase(url, pid, args, digits, solo, solo_cpu, solo_rss, with_attacker,
                                               after=last)
                kept[name].append(stats)
            last = log
            # the attacker and the class have left: how long until the server is idle (and ready for the next)
            one["idle"] = (watch_idle(pid, log.t_left, args.idle, args.idle + IDLE_MORE_S)
                           if pid and args.idle else None)
            rounds.append(one)
        return {"compare_attacker": True, "rounds": rounds,
                "pooled": {name: pooled(args, solo, [r[name] for r in rounds], kept[name])
                           for name in ("without", "with")}}

    if args.url:
        return go(args.url, args.pid)
    env = dict(args.server_env)
    if not args.shared_cache:  # every run starts with no neighbour lists on disk: the searches are all to do
        env[CACHE_ENV] = tempfile.mkdtemp(prefix="knn-loadtest-cache-")
    try:
        with Server("app.py", log_path=args.server_log, env=env) as srv:
            result = go(srv.url, srv.pid)
            result["server_log_tracebacks"] = srv.log_text().count("Traceback")
            result["server_log"] = str(srv.log_path)
        return result
    finally:
        if not args.shared_cache:
            shutil.rmtree(env[CACHE_ENV], ignore_errors=True)


def compare_check(r: dict) -> list[str]:
    """Issue #16's targets for --compare-attacker."""
    without, with_ = r["pooled"]["without"], r["pooled"]["with"]
    # The memory-growth check only before any attack: the attacker's classifiers stay (up to 3) in later rounds.
    # Peak RSS: once, over the whole run (below).
    problems = [f"without the attacker: {p}" for p in check(without) if not p.startswith(("RSS grew", "peak RSS"))]
    problems += [f"without the attacker: {p}" for p in check(r["rounds"][0]["without"]) if p.startswith("RSS grew")]
    problems += [f"with the attacker: {p}" for p in check(with_) if not p.startswith(("p95 ", "peak RSS"))]
    ratio = p95_ratio(r)
    if not ratio <= TARGET_P95_RATIO:
        problems.append(f"students' p95 with the attacker {with_['latency_ms'][95]} ms = {ratio:.2f} x without "
                        f"({without['latency_ms'][95]} ms) > {TARGET_P95_RATIO}")
    peak = peak_rss(r)
    if peak > TARGET_MEMORY_MB:
        problems.append(f"peak RSS {peak:.0f} MB > {TARGET_MEMORY_MB} MB")
    for i, one in enumerate(r["rounds"], 1):
        idle = one["idle"]
        if idle and not idle["tail_cores"] < IDLE_CORES:
            problems.append(f"round {i}: not idle {idle['window_s']:.0f} s after the attacker left: "
                            f"{idle['tail_cores']:.2f} cores over the last {IDLE_TAIL_S} s (idle after "
                            f"{_idle_after(idle)} s)")
    if r.get("server_log_tracebacks"):
        problems.append(f"{r['server_log_tracebacks']} tracebacks in the server's log ({r.get('server_log')})")
    return problems


def p95_ratio(r: dict) -> float:
    return r["pooled"]["with"]["latency_ms"][95] / max(1, r["pooled"]["without"]["latency_ms"][95])


def peak_rss(r: dict) -> float:
    return max([r["pooled"][k]["memory_mb"]["peak"] for k in ("without", "with")]
               + [one["idle"]["peak_rss_mb"] for one in r["rounds"] if one["idle"]])


def _idle_after(idle: dict) -> str:
    return str(idle["idle_after_s"]) if idle["idle_after_s"] is not None else f"> {idle['watched_s']}"


def errors_of(phase: dict) -> int:
    """Everything that went wrong in a phase: the class's errors, garbage or attacks not answered."""
    a = phase.get("attacker") or {"failures": 0, "session_errors": []}
    return (phase["errors"] + phase["garbage_checks"] - phase["garbage_answered"] + a["failures"]
            + len(a["session_errors"]))


def print_attacker(a: dict) -> None:
    print(f"  attacker             {a['checks'] - a['failures']}/{a['checks']} answers right, "
          f"{len(a['session_errors'])} session errors; {a['urls_visited']} links drawn on, "
          f"{a['searches_pressed']} search buttons pressed")
    for case, c in sorted(a["cases"].items()):
        print(f"    {case:<44} {c['n']:>4} x, {c['failed']} failed, slowest answer {c['max_s']:5.2f} s  "
              f"e.g. {c['sample'][:60]}")
    for line in (a["failure_samples"] + a["session_errors"])[:5]:
        print(f"    FAILED: {line[:200]}")


def print_compare(r: dict) -> None:
    for i, one in enumerate(r["rounds"], 1):
        for name in ("without", "with"):
            print(f"\n=== round {i}, {name} the attacker ===", end="")
            print_report(one[name])
    w, a = r["pooled"]["without"], r["pooled"]["with"]
    print(f"\n{a['sessions']} students + {a['teachers']} teacher + garbage session, {len(r['rounds'])} round(s) of "
          f"{w['duration_s'] / len(r['rounds']):.0f} s without the attacker, then {a['duration_s'] / len(r['rounds']):.0f} s "
          "with it (the students' strokes of all rounds together):")
    print("\n| phase | load avg before (each round) | strokes | errors | stroke -> prediction p50 / p95 / p99 | "
          "server peak RSS | server cores used |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, ph in (("without the attacker", w), ("with the attacker", a)):
        lat = ph["latency_ms"]
        loads = ", ".join(str(la[0]) for la in ph["load_average_before"])
        print(f"| {name} | {loads} | {ph['strokes']:,} | {errors_of(ph)} | "
              f"{lat[50]} / **{lat[95]}** / {lat[99]} ms | {ph['memory_mb']['peak']:.0f} MB | "
              f"{ph['server_cpu_ms_per_stroke']['cores_used_under_load']} |")
    ratio, peak = p95_ratio(r), peak_rss(r)
    rounds = ", ".join(f"{one['with']['latency_ms'][95] / max(1, one['without']['latency_ms'][95]):.2f}"
                       for one in r["rounds"])
    print("\n| target | measured | met |")
    print("| --- | --- | --- |")
    print(f"| students' p95 with / without the attacker <= {TARGET_P95_RATIO} | **{ratio:.2f}** "
          f"({a['latency_ms'][95]} / {w['latency_ms'][95]} ms; each round {rounds}) | "
          f"{'yes' if ratio <= TARGET_P95_RATIO else 'NO'} |")
    n_err = errors_of(w) + errors_of(a)
    print(f"| 0 errors (class, garbage, attacker's answers) | {n_err} | {'yes' if not n_err else 'NO'} |")
    print(f"| server peak RSS <= {TARGET_MEMORY_MB} MB | {peak:.0f} MB | {'yes' if peak <= TARGET_MEMORY_MB else 'NO'} |")
    idles = [one["idle"] for one in r["rounds"] if one["idle"]]
    if idles:
        tails = ", ".join(f"{i['tail_cores']:.3f}" for i in idles)
        after = ", ".join(_idle_after(i) for i in idles)
        ok = all(i["tail_cores"] < IDLE_CORES for i in idles)
        print(f"| idle {idles[0]['window_s']:.0f} s after the attacker left (< {IDLE_CORES} cores over the last "
              f"{IDLE_TAIL_S} s) | {tails} cores; idle after {after} s | {'yes' if ok else 'NO'} |")
        for i, idle in enumerate(idles, 1):
            print(f"\n  round {i}: server cores per 5 s after the attacker left: {idle['cores_per_5s']}")
    print(f"  server log: {r.get('server_log_tracebacks', '?')} tracebacks ({r.get('server_log')})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=30, help="students drawing at once (default %(default)s)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of load (default 120; with --compare-attacker, of each phase: default 60)")
    p.add_argument("--think", type=float, default=2.0,
                   help="mean seconds between a prediction and the next stroke (default %(default)s)")
    p.add_argument("--teachers", type=int, default=1, help="sessions on the Neighbour vote page (default 1)")
    p.add_argument("--no-garbage", dest="garbage", action="store_false", help="leave out the garbage session")
    p.add_argument("--attacker", action="store_true", help="one more student attacks (loadtest/attacker.py)")
    p.add_argument("--compare-attacker", action="store_true",
                   help="a phase without the attacker, one with it, then watch the server go idle (issue #16)")
    p.add_argument("--attacks", default=",".join(attack.STREAMS),
                   help="the attacker's tabs, comma-separated (default %(default)s)")
    p.add_argument("--press-wait", type=float, default=attack.PRESS_WAIT_S,
                   help="seconds the attacker watches a search it started before leaving (default %(default)s)")
    p.add_argument("--rounds", type=int, default=2,
                   help="with --compare-attacker: rounds of (without, with, idle), so that both kinds of phase "
                        "meet the machine's busy and quiet spells (default %(default)s)")
    p.add_argument("--idle", type=float, default=30,
                   help="seconds after the attacker left by which the server must be idle (default %(default)s; "
                        "0: not watched)")
    p.add_argument("--shared-cache", action="store_true",
                   help="let the server use the usual disk cache (default: an empty one of its own, removed "
                        "after, so that every search the attacker starts is work)")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for the started server, e.g. the operator's "
                        "KNN_LAB_SEARCH_WORKERS=1 (repeatable)")
    p.add_argument("--solo", type=float, default=10, help="seconds of the one-session phase (default 10)")
    p.add_argument("--ramp", type=float, default=5, help="seconds over which the students arrive (default 5)")
    p.add_argument("--url", help="a running local server (default: start one)")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    p.add_argument("--server-log", default=None, help="where the started server logs")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--check", action="store_true", help="exit 1 unless the issue's targets are met")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 60.0 if args.compare_attacker else 120.0
    if not 1 <= args.rounds <= 10:
        p.error("--rounds must be 1..10")
    if not (1 <= args.sessions <= 200 and 1 <= args.duration <= 1800):
        p.error("--sessions must be 1..200 and --duration 1..1800 s")
    if not (args.idle == 0 or 10 <= args.idle <= 600):
        p.error("--idle must be 10..600 s (or 0: not watched)")
    if any("=" not in e for e in args.server_env):
        p.error("--server-env takes NAME=VALUE")
    args.server_env = [tuple(e.split("=", 1)) for e in args.server_env]
    args.attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
    if set(args.attacks) - set(attack.STREAMS) or not args.attacks:
        p.error(f"--attacks: choose from {', '.join(attack.STREAMS)}")

    result = run(args)
    if args.compare_attacker:
        print_compare(result)
        problems = compare_check(result)
    else:
        print_report(result)
        problems = check(result)
        if result.get("idle"):
            i = result["idle"]
            print(f"  after the attacker left: {i['tail_cores']:.3f} cores over the last {IDLE_TAIL_S} s of "
                  f"{i['window_s']:.0f} s; per 5 s {i['cores_per_5s']}")
            if not i["tail_cores"] < IDLE_CORES:
                problems.append(f"not idle {i['window_s']:.0f} s after the attacker left")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    for line in problems:
        print(f"  TARGET MISSED: {line}")
    if not problems:
        if args.compare_attacker:
            print(f"  targets met: p95 with the attacker <= {TARGET_P95_RATIO} x without, no errors, peak RSS <= "
                  f"{TARGET_MEMORY_MB} MB, idle {args.idle:.0f} s after the attacker left")
        else:
            print(f"  targets met: no errors, p95 <= {TARGET_P95_S * 1000:.0f} ms, peak RSS <= {TARGET_MEMORY_MB} "
                  "MB, garbage answered" + ("" if args.attacker else ", memory flat in sessions"))
    return 1 if (args.check and problems) else 0


if __name__ == "__main__":
    sys.exit(main())
