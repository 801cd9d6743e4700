"""Load test at the protocol level: N students drawing at once against one `streamlit run app.py`.

    .venv/bin/python -m loadtest.run_protocol                     # 30 sessions, 2 minutes
    .venv/bin/python -m loadtest.run_protocol --sessions 3 --duration 10 --check

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

Latency is stroke -> prediction as the server delivers it: from sending the
``rerun_script`` a browser sends when a stroke ends to receiving the delta
with the Prediction metric (and, separately, to ``script_finished``: the whole
page rendered).  Errors: an exception on the page, a missing prediction, a
timeout or a closed connection in any session.  The server's memory is polled
from /proc/<pid>/status (VmRSS; VmHWM is the peak).  Every loop is bounded in
time; the run stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field

from . import payloads
from .protocol import ProtocolError, Session, canvas_value
from .server import MemoryWatch, Server, cpu_seconds, read_memory

BAD_QUERY = "k=1000000000&metric=bogus"
TARGET_P95_S = 1.0
TARGET_MEMORY_MB = 1536
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


def _answered(r) -> tuple[bool, str]:
    """Garbage must get an error or warning message, and no exception."""
    if r.exceptions:
        return False, f"exception: {r.exceptions[0][:160]}"
    shown = r.texts("error") + r.texts("warning")
    if not shown:
        return False, f"no error or warning (alerts: {r.alerts})"
    return True, shown[0][:160]


async def garbage(url: str, digits, deadline: float, think: float, stats: Stats) -> None:
    """One session that sends everything a student should not, over and over, then draws properly."""
    huge = payloads.huge_png()
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
                        ok, msg = _answered(r)
                        stats.garbage.append((case, ok, msg))
                        await s.rerun([_empty_uploader(s)])  # remove the upload again, as the ✕ does
                    else:
                        r = await s.draw(how.get("png"), value=how.get("value"))
                        ok, msg = _answered(r)
                        stats.garbage.append((case, ok, msg))
                    png, label = digits[n % len(digits)]
                    n += 1
                    r = await s.draw(png)  # and then a real drawing works again
                    ok = not r.exceptions and r.prediction is not None
                    stats.garbage.append(("drawing after " + case, ok, f"prediction {r.prediction}"))
        except (ProtocolError, OSError) as exc:
            stats.errors.append(f"garbage session: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


def _empty_uploader(s: Session):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    w = WidgetState(id=s.widget_ids["file_uploader"])
    w.file_uploader_state_value.SetInParent()
    return w


async def load(url: str, args, digits, stats: Stats) -> float:
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
    # every session stops at the deadline; a stuck one is cancelled after its timeout
    done, pending = await asyncio.wait(tasks, timeout=args.duration + 90)
    for t in pending:
        t.cancel()
        stats.errors.append("a session did not finish in time")
    for t in done:
        if t.exception() is not None:
            stats.errors.append(f"session crashed: {t.exception()!r}")
    return time.monotonic() - t0


def summary(args, solo: Stats, stats: Stats, mem: dict, elapsed: float, load_avg, cpu: dict) -> dict:
    g_ok = sum(ok for _, ok, _ in stats.garbage)
    return {
        "sessions": args.sessions, "teachers": args.teachers, "garbage_session": bool(args.garbage),
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
    growth = result["memory_mb"]["growth_from_solo"]
    if growth > max(200.0, 0.25 * result["sessions"] * result["dataset_mb"]):
        problems.append(f"RSS grew by {growth:.0f} MB from 1 to {result['sessions']} sessions: "
                        "is the dataset held per session?")
    return problems


def print_report(r: dict) -> None:
    lat, page, mem = r["latency_ms"], r["page_ms"], r["memory_mb"]
    print(f"\n{r['sessions']} students + {r['teachers']} teacher(s) + "
          f"{'1 garbage session' if r['garbage_session'] else 'no garbage session'}, "
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
    cpu = r["server_cpu_ms_per_stroke"]
    print(f"  server CPU per stroke {cpu['solo']:.0f} ms alone, {cpu['load']:.0f} ms under load "
          f"(all of the server's threads); under load the server used {cpu['cores_used_under_load']} "
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


def run(args) -> dict:
    digits = payloads.drawings(200)
    load_avg = [round(v, 2) for v in os.getloadavg()]

    def go(url: str, pid: int | None) -> dict:
        solo, stats = Stats(), Stats()
        asyncio.run(warm_up(url, digits))
        c0 = cpu_seconds(pid) if pid else float("nan")
        asyncio.run(solo_phase(url, digits, args.solo, solo))
        c1 = cpu_seconds(pid) if pid else float("nan")
        if solo.errors:
            raise SystemExit(f"the app fails with one session: {solo.errors[:3]}")
        solo_rss = read_memory(pid)["VmRSS"] if pid else float("nan")
        watch = MemoryWatch(pid) if pid else None
        if watch:
            watch.__enter__()
        try:
            elapsed = asyncio.run(load(url, args, digits, stats))
        finally:
            if watch:
                watch.__exit__(None, None, None)
        c2 = cpu_seconds(pid) if pid else float("nan")
        cpu = {"solo": round((c1 - c0) * 1000 / max(1, solo.strokes), 1),
               "load": round((c2 - c1) * 1000 / max(1, stats.strokes), 1),
               "cores_used_under_load": round((c2 - c1) / max(elapsed, 1e-9), 2)}
        mem = {"solo_rss": solo_rss, "peak": watch.peak_mb if watch else float("nan"),
               "hwm": read_memory(pid)["VmHWM"] if pid else float("nan")}
        mem["growth_from_solo"] = mem["peak"] - solo_rss
        mem = {k: round(v, 1) for k, v in mem.items()}
        return summary(args, solo, stats, mem, elapsed, load_avg, cpu)

    if args.url:
        return go(args.url, args.pid)
    with Server("app.py", log_path=args.server_log) as srv:
        result = go(srv.url, srv.pid)
        log = srv.log_text()
        result["server_log_tracebacks"] = log.count("Traceback")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=30, help="students drawing at once (default %(default)s)")
    p.add_argument("--duration", type=float, default=120, help="seconds of load (default %(default)s)")
    p.add_argument("--think", type=float, default=2.0,
                   help="mean seconds between a prediction and the next stroke (default %(default)s)")
    p.add_argument("--teachers", type=int, default=1, help="sessions on the Neighbour vote page (default 1)")
    p.add_argument("--no-garbage", dest="garbage", action="store_false", help="leave out the garbage session")
    p.add_argument("--solo", type=float, default=10, help="seconds of the one-session phase (default 10)")
    p.add_argument("--ramp", type=float, default=5, help="seconds over which the students arrive (default 5)")
    p.add_argument("--url", help="a running local server (default: start one)")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    p.add_argument("--server-log", default=None, help="where the started server logs")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--check", action="store_true", help="exit 1 unless the issue's targets are met")
    args = p.parse_args(argv)
    if not (1 <= args.sessions <= 200 and 1 <= args.duration <= 1800):
        p.error("--sessions must be 1..200 and --duration 1..1800 s")

    result = run(args)
    print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    problems = check(result)
    for line in problems:
        print(f"  TARGET MISSED: {line}")
    if not problems:
        print(f"  targets met: no errors, p95 <= {TARGET_P95_S * 1000:.0f} ms, peak RSS <= {TARGET_MEMORY_MB} MB, "
              "garbage answered, memory flat in sessions")
    return 1 if (args.check and problems) else 0


if __name__ == "__main__":
    sys.exit(main())
