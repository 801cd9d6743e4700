"""Load test of the class room (#19): students send drawings while each room's wall refreshes.

    python -m loadtest.run_room                              # 1 room, 30 students, 120 s
    python -m loadtest.run_room --rooms 3                    # three rooms at once, 30 students each
    python -m loadtest.run_room --kill-at 60                 # SIGKILL the server after 60 s, restart it
    python -m loadtest.run_room --rooms 3 --workers 2        # the same through nginx, 2 processes, one SQLite file

Each student is a WebSocket session on the Class page's student view (loadtest/protocol.py: what a
browser sends, without the browser): it draws a MNIST test digit (a canvas PNG, as the canvas sends it),
then presses "Send to the class" and waits for "Sent ✓ (#n)", the acknowledgement (sent only after the
store committed), every --every seconds or so.  Each room has a wall: a teacher session whose wall
fragment reruns on its own timer (st.fragment(run_every=...), which a browser runs from the auto_rerun
message), and the time a drawing first shows on it is recorded.

Reported and checked (--check exits 1 when one fails): errors (0; with --kill-at, errors while the
server is down and restarting are counted apart), every acknowledged drawing in the database (and, with
no kill, as many rows as acknowledgements), p95 from pressing "send" to the drawing on the wall <= 3 s,
every acknowledged drawing seen on the wall, the server's peak RSS <= 1.5 GB.

The server is started here (`streamlit run app.py` on a free port, or --port) with its class-room
database in a fresh temporary folder (KNN_LAB_DATA_DIR); rooms are created and finally counted through
knn_core.room on the same SQLite file.  Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
from streamlit.proto.WidgetStates_pb2 import WidgetState

from .protocol import ProtocolError, RunResult, Session, canvas_value
from .server import MemoryWatch, Server, cpu_seconds

PAGE = "class_room"
SENT = re.compile(r"Sent ✓ \(#(\d+)\)")
ON_WALL = re.compile(r'class="room-drawing" data-id="(\d+)"')
WALL_P95_S = 3.0
RSS_MB = 1536.0
WALL_TAIL_S = (
    30.0  # after the students stop, the walls refresh until they show every acknowledged drawing, or this long
)


@dataclass
class Stats:
    sends: list = field(default_factory=list)  # (room, drawing id, t pressed, t acknowledged)
    draws: list = field(default_factory=list)  # s from the stroke to the Prediction
    seen: dict = field(default_factory=dict)  # (room, drawing id) -> t first on the wall
    errors: list = field(default_factory=list)  # (t, who, message)
    wall_runs: list = field(default_factory=list)  # s per wall refresh
    down: list = field(default_factory=list)  # (t killed, t healthy again)
    students_sending: int = 0  # students whose loop still runs (a send pressed before the end may be in flight)


def _problems(r: RunResult) -> list[str]:
    return r.exceptions + [f"{kind}: {body}" for kind, body in r.alerts if kind == "error"]


def _now(t0: float) -> float:
    return time.perf_counter() - t0


async def student(
    url: str,
    code: str,
    who: str,
    pngs: list[bytes],
    offset: int,
    deadline: float,
    every: float,
    stats: Stats,
    t0: float,
    rng: random.Random,
) -> None:
    """One student: connect, then draw and send a new digit every ~`every` s until the deadline;
    reconnect (a new session, as a reloaded tab) whenever the server goes away."""
    stats.students_sending += 1
    try:
        await _send_until(url, code, who, pngs, offset, deadline, every, stats, t0, rng)
    finally:
        stats.students_sending -= 1


async def _send_until(url, code, who, pngs, offset, deadline, every, stats: Stats, t0: float, rng) -> None:
    session: Session | None = None
    n = 0
    while _now(t0) < deadline:
        started = _now(t0)
        try:
            if session is None:
                session = Session(url, PAGE, query=f"room={code}", timeout=60)
                r = await session.connect()
                if _problems(r):
                    raise ProtocolError(f"on opening: {_problems(r)}")
            png = pngs[(offset + n) % len(pngs)]  # a digit this student has not sent yet
            n += 1
            r = await session.draw(png)
            if r.prediction is None or _problems(r):
                raise ProtocolError(f"no prediction for a drawing: {_problems(r) or r.metrics}")
            stats.draws.append(r.t_done)
            # the press, with the canvas' value as a browser sends every widget's state on each rerun
            canvas = WidgetState(id=session.widget_ids["canvas"])
            canvas.json_value = canvas_value(png)
            press = WidgetState(id=session.widget_ids["room_send"])
            press.trigger_value = True
            t_press = _now(t0)
            r = await session.rerun([canvas, press], session.widget_fragments.get("room_send", ""))
            t_ack = _now(t0)
            sent = [m for kind, body in r.alerts if kind == "success" for m in SENT.findall(body)]
            if len(sent) != 1 or _problems(r):
                raise ProtocolError(f"no acknowledgement: {_problems(r) or r.alerts}")
            stats.sends.append((code, int(sent[0]), t_press, t_ack))
        except (ProtocolError, OSError, asyncio.TimeoutError, KeyError) as exc:
            stats.errors.append((_now(t0), who, f"{type(exc).__name__}: {exc}"))
            if session is not None:
                try:
                    await session.close()
                except Exception:  # noqa: BLE001 (the connection is gone anyway)
                    pass
                session = None
            await asyncio.sleep(1.0)
            continue
        except Exception as exc:  # noqa: BLE001 (websockets' handshake errors and the like: count, go on)
            stats.errors.append((_now(t0), who, f"{type(exc).__name__}: {exc}"))
            session = None
            await asyncio.sleep(1.0)
            continue
        await asyncio.sleep(max(0.0, every * rng.uniform(0.7, 1.3) - (_now(t0) - started)))
    if session is not None:
        await session.close()


async def wall(url: str, code: str, token: str, deadline: float, stats: Stats, t0: float) -> None:
    """The teacher's projector: the page once, then the wall fragment on its timer, as a browser runs it."""
    session: Session | None = None
    fragment, interval = "", 1.5

    def all_shown() -> bool:
        return all((c, i) in stats.seen for c, i, _, _ in stats.sends if c == code)

    def done() -> bool:  # no student can still be acknowledged a drawing, and every acknowledged one was shown
        return stats.students_sending == 0 and all_shown()

    while _now(t0) < deadline - WALL_TAIL_S or (_now(t0) < deadline and not done()):
        try:
            if session is None:
                session = Session(url, PAGE, query=f"teacher={token}", timeout=60)
                r = await session.connect()
                if _problems(r) or not session.auto_reruns:
                    raise ProtocolError(f"no wall: {_problems(r) or 'no auto_rerun'}")
                ((fragment, interval),) = session.auto_reruns.items()
                _saw(r, code, stats, t0)
            due = _now(t0) + interval
            await asyncio.sleep(max(0.0, due - _now(t0)))
            r = await session.rerun([], fragment)
            if _problems(r):
                raise ProtocolError(f"wall refresh: {_problems(r)}")
            stats.wall_runs.append(r.t_done)
            _saw(r, code, stats, t0)
        except Exception as exc:  # noqa: BLE001 (count it and reconnect, as a browser would)
            stats.errors.append((_now(t0), f"wall {code}", f"{type(exc).__name__}: {exc}"))
            session = None
            await asyncio.sleep(1.0)
    if session is not None:
        await session.close()


def _saw(r: RunResult, code: str, stats: Stats, t0: float) -> None:
    t = _now(t0)
    for body in r.html:
        for i in ON_WALL.findall(body):
            stats.seen.setdefault((code, int(i)), t)


def _pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


class Killer:
    """SIGKILLs the server at `at` s and starts a new one on the same port and database."""

    def __init__(self, server: Server, at: float | None, stats: Stats, t0: float, watches: list):
        self.server, self.at, self.stats, self.t0, self.watches = server, at, stats, t0, watches

    async def run(self) -> None:
        if self.at is None:
            return
        await asyncio.sleep(max(0.0, self.at - _now(self.t0)))
        killed = _now(self.t0)
        os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait()
        self.watches[-1].__exit__(None, None, None)
        new = Server(
            "app.py", port=self.server.port, env=self.server.env, log_path=str(self.server.log_path) + ".restarted"
        )
        await asyncio.to_thread(new.__enter__)
        self.server = new
        self.watches.append(MemoryWatch(new.pid).__enter__())
        self.stats.down.append((killed, _now(self.t0)))


async def _run(args, url: str, rooms: list, pngs: list[bytes], stats: Stats, killer: Killer, t0: float) -> None:
    deadline = args.seconds
    tasks = [asyncio.create_task(wall(url, code, token, deadline + WALL_TAIL_S, stats, t0)) for code, token in rooms]
    rng = random.Random(0)
    for r_i, (code, _token) in enumerate(rooms):
        for s_i in range(args.students):
            who = f"{code}/s{s_i}"
            start = args.ramp * rng.random()
            offset = (r_i * args.students + s_i) * 37  # each student its own run of digits
            tasks.append(
                asyncio.create_task(
                    _later(
                        start,
                        student(
                            url, code, who, pngs, offset, deadline, args.every, stats, t0, random.Random(hash(who))
                        ),
                    )
                )
            )
    tasks.append(asyncio.create_task(killer.run()))
    await asyncio.gather(*tasks)


async def _later(delay: float, coro):
    await asyncio.sleep(delay)
    return await coro


async def _warm_up(url: str, png: bytes, code: str) -> None:
    """One drawing before the clock starts: the server has fitted its classifier (as before a lesson)."""
    async with Session(url, PAGE, query=f"room={code}", timeout=300) as s:
        await s.draw(png)


def run(args) -> dict:
    from knn_core.room import open_store

    from .payloads import drawings

    data = tempfile.mkdtemp(prefix="knn-room-load-")
    env = {"KNN_LAB_DATA_DIR": data, "KNN_LAB_DATABASE_URL": ""}
    store = open_store(f"sqlite:///{data}/classroom.sqlite3")
    rooms = []
    for i in range(args.rooms):
        room = store.create_room()
        store.set_prompt(room.teacher_token, i % 10)  # the label every drawing carries
        rooms.append((room.code, room.teacher_token))
    pngs = [png for png, _label in drawings(400, seed=1)]
    if args.workers:
        return _run_behind_nginx(args, env, data, store, rooms, pngs)
    server = Server("app.py", port=args.port, env=env, log_path=args.server_log).__enter__()
    watches = [MemoryWatch(server.pid).__enter__()]
    stats = Stats()
    try:
        asyncio.run(_warm_up(server.url, pngs[-1], rooms[0][0]))
        t0 = time.perf_counter()
        killer = Killer(server, args.kill_at, stats, t0, watches)
        load0, cpu0 = os.getloadavg(), cpu_seconds(server.pid)
        asyncio.run(_run(args, server.url, rooms, pngs, stats, killer, t0))
        load1, elapsed = os.getloadavg(), _now(t0)
        cpu = None if killer.server is not server else (cpu_seconds(server.pid) - cpu0, elapsed)
        server = killer.server
        log = server.log_text()
    finally:
        for w in watches:
            w.__exit__(None, None, None)
        server.__exit__(None, None, None)
    return _result(args, store, rooms, stats, watches, log, data, (load0, load1), cpu)


def _run_behind_nginx(args, env: dict, data: str, rooms_store, rooms: list, pngs: list[bytes]) -> dict:
    """The same class through nginx in front of --workers processes on the one SQLite file (scripts/serve.sh):
    each student's and each wall's session is pinned to a process by nginx's route cookie, which
    protocol.Session keeps as a browser does; a student and their room's wall may be on different processes."""
    from deploy.serve import Stack, free_port

    ports = [free_port() for _ in range(args.workers)]
    db = f"sqlite:///{data}/classroom.sqlite3"
    stats = Stats()
    with Stack(workers_n=args.workers, port=args.port or free_port(), worker_ports=ports, database_url=db, env=env) as stack:
        pids = [w.pid for w in stack.workers]
        watches = [MemoryWatch(pid).__enter__() for pid in pids]
        try:
            t0 = time.perf_counter()
            load0, cpu0 = os.getloadavg(), sum(cpu_seconds(pid) for pid in pids)
            asyncio.run(_run(args, stack.url, rooms, pngs, stats, Killer(None, None, stats, t0, watches), t0))
            load1, elapsed = os.getloadavg(), _now(t0)
            cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu0, elapsed)
            log = "".join(w.log_path.read_text(errors="replace") for w in stack.workers if w.log_path)
        finally:
            for w in watches:
                w.__exit__(None, None, None)
    result = _result(args, rooms_store, rooms, stats, watches, log, data, (load0, load1), cpu)
    result["peak_rss_mb_per_process"] = [round(w.peak_mb) for w in watches]
    return result


def _result(args, store, rooms, stats: Stats, watches, log: str, data: str, load, cpu) -> dict:
    acked = {(code, i) for code, i, _, _ in stats.sends}
    rows = {(code, d.id) for code, _ in rooms for d in store.drawings(code, wall=False)}
    missing = sorted(acked - rows)
    down = stats.down[0] if stats.down else None
    grace = 10.0  # s after the restart in which reconnecting sessions may still fail once

    def outage(t: float) -> bool:
        return down is not None and down[0] - 1.0 <= t <= down[1] + grace

    errors = [e for e in stats.errors if not outage(e[0])]
    outage_errors = [e for e in stats.errors if outage(e[0])]
    to_wall = [
        stats.seen[(c, i)] - t
        for c, i, t, _ in stats.sends
        if (c, i) in stats.seen and not outage(t) and not (down and t < down[0] < stats.seen[(c, i)])
    ]
    never_on_wall = sorted(k for k in acked if k not in stats.seen)
    # what the wall reads from the store at the end: every acknowledged drawing must be there (the screen shows
    # the latest ui.WALL_SHOWN; after a restart, drawings the wall had not shown yet may have scrolled past)
    on_wall = {(code, d.id) for code, _ in rooms for d in store.drawings(code, wall=True)}
    off_wall = sorted(acked - on_wall)
    ack = [ta - tp for _, _, tp, ta in stats.sends]
    peak = max(w.peak_mb for w in watches)
    return {
        "command": "python -m loadtest.run_room " + " ".join(sys.argv[1:]),
        "rooms": args.rooms,
        "processes": args.workers or 1,
        "students_per_room": args.students,
        "seconds": args.seconds,
        "every_s": args.every,
        "kill_at": args.kill_at,
        "restart": [round(v, 1) for v in down] if down else None,
        "acknowledged": len(acked),
        "rows": len(rows),
        "acknowledged_missing_from_db": len(missing),
        "errors": len(errors),
        "error_samples": [e[1:] for e in errors[:5]],
        "errors_during_restart": len(outage_errors),
        "send_to_ack_p50_s": _pct(ack, 50),
        "send_to_ack_p95_s": _pct(ack, 95),
        "send_to_wall_p50_s": _pct(to_wall, 50),
        "send_to_wall_p95_s": _pct(to_wall, 95),
        "send_to_wall_max_s": max(to_wall, default=float("nan")),
        "never_on_wall": len(never_on_wall),
        "acknowledged_not_in_wall_data": len(off_wall),
        "stroke_to_prediction_p95_s": _pct(stats.draws, 95),
        "wall_refresh_p95_s": _pct(stats.wall_runs, 95),
        "wall_refreshes": len(stats.wall_runs),
        "peak_rss_mb": peak,
        # the server's CPU: cores it used on average, and ms per acknowledged drawing (its draw and its send)
        "server_cores": cpu[0] / cpu[1] if cpu else None,
        "server_cpu_ms_per_drawing": 1000 * cpu[0] / max(1, len(acked)) if cpu else None,
        "server_tracebacks": log.count("Traceback"),
        "load_avg_1min": [round(v[0], 1) for v in load],
        "database": data,
    }


def check(r: dict) -> list[str]:
    fails = []
    if r["errors"]:
        fails.append(f"{r['errors']} errors (e.g. {r['error_samples'][:2]})")
    if r["acknowledged_missing_from_db"]:
        fails.append(f"{r['acknowledged_missing_from_db']} acknowledged drawings are not in the database")
    if r["kill_at"] is None and r["rows"] != r["acknowledged"]:
        fails.append(f"{r['rows']} rows for {r['acknowledged']} acknowledged sends")
    if not r["send_to_wall_p95_s"] <= WALL_P95_S:
        fails.append(f"p95 send -> wall {r['send_to_wall_p95_s']:.2f} s > {WALL_P95_S} s")
    if r["acknowledged_not_in_wall_data"]:
        fails.append(f"{r['acknowledged_not_in_wall_data']} acknowledged drawings are not among the wall's drawings")
    if r["never_on_wall"] and r["kill_at"] is None:
        fails.append(f"{r['never_on_wall']} acknowledged drawings never showed on the wall")
    if not r["peak_rss_mb"] <= RSS_MB:
        fails.append(f"peak RSS {r['peak_rss_mb']:.0f} MB > {RSS_MB:.0f} MB")
    if r["server_tracebacks"]:
        fails.append(f"{r['server_tracebacks']} tracebacks in the server log")
    return fails


def print_report(r: dict) -> None:
    kill = f", SIGKILL at {r['kill_at']:.0f} s (healthy again at {r['restart'][1]:.1f} s)" if r["kill_at"] else ""
    where = f", {r['processes']} processes behind nginx" if r.get("processes", 1) > 1 else ""
    print(
        f"{r['rooms']} room(s) x {r['students_per_room']} students, a drawing every ~{r['every_s']:.0f} s each, "
        f"{r['seconds']:.0f} s{kill}{where}; load average {r['load_avg_1min']}"
    )
    print(
        f"  acknowledged sends       {r['acknowledged']:>8}    rows in the database {r['rows']}"
        f"    acknowledged but missing {r['acknowledged_missing_from_db']}"
    )
    print(
        f"  errors                   {r['errors']:>8}    (while the server was down/restarting: "
        f"{r['errors_during_restart']})"
    )
    print(f"  send -> 'Sent ✓'  p50/p95 {r['send_to_ack_p50_s']:6.2f} / {r['send_to_ack_p95_s']:.2f} s")
    print(
        f"  send -> on the wall p50/p95/max {r['send_to_wall_p50_s']:.2f} / {r['send_to_wall_p95_s']:.2f} / "
        f"{r['send_to_wall_max_s']:.2f} s    never on the wall {r['never_on_wall']} (not among the wall's drawings in the store: "
        f"{r['acknowledged_not_in_wall_data']})"
    )
    print(
        f"  stroke -> prediction p95 {r['stroke_to_prediction_p95_s']:.2f} s    wall refresh p95 "
        f"{r['wall_refresh_p95_s']:.2f} s ({r['wall_refreshes']} refreshes)"
    )
    print(f"  server peak RSS          {r['peak_rss_mb']:8.0f} MB    tracebacks in its log {r['server_tracebacks']}")
    if r["server_cores"] is not None:
        print(
            f"  server CPU               {r['server_cores']:8.2f} cores, {r['server_cpu_ms_per_drawing']:.0f} ms per "
            "acknowledged drawing (its stroke, its send, the walls' refreshes)"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rooms", type=int, default=1, help="rooms at once (default %(default)s)")
    p.add_argument("--students", type=int, default=30, help="students per room (default %(default)s)")
    p.add_argument("--seconds", type=float, default=120, help="how long the students send (default %(default)s)")
    p.add_argument(
        "--every", type=float, default=5.0, help="seconds between one student's sends, +-30%% (default %(default)s)"
    )
    p.add_argument("--ramp", type=float, default=5.0, help="seconds over which the students arrive")
    p.add_argument(
        "--kill-at",
        type=float,
        default=None,
        metavar="SECONDS",
        help="SIGKILL the server this many seconds in, restart it, check nothing acknowledged is lost",
    )
    p.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="N processes behind nginx on the one SQLite database (deploy.serve.Stack, as scripts/serve.sh), "
        "instead of one server; not with --kill-at (loadtest.run_serve --kill-at kills one of several)",
    )
    p.add_argument("--server-log", default=None, help="where the server logs")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--check", action="store_true", help="exit 1 unless the issue's targets are met")
    args = p.parse_args(argv)
    if args.workers and args.kill_at is not None:
        p.error("--kill-at restarts the one server: use it without --workers (or loadtest.run_serve --kill-at)")
    r = run(args)
    print_report(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    fails = check(r)
    for f in fails:
        print("FAIL:", f)
    return 1 if (args.check and fails) else 0


if __name__ == "__main__":
    sys.exit(main())
