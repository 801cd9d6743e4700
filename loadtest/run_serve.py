"""Load through nginx in front of several app processes (scripts/serve.sh; issue #20).

    .venv/bin/python -m loadtest.run_serve --postgres                      # 100 students, 3 rooms, 2 processes, 2 min
    .venv/bin/python -m loadtest.run_serve --postgres --kill-at 60         # the same, SIGKILL one process at 60 s
    .venv/bin/python -m loadtest.run_serve --capacity --workers 1 2        # strokes/s at p95 <= 1 s, 1 and 2 processes

The class (default): deploy.serve.Stack starts --workers processes and nginx on free local ports,
sharing one class room database (--postgres: a throwaway PostgreSQL cluster from scripts/postgres.sh;
--database-url; default one SQLite file).  --rooms rooms are created in it, each with a prompt, and
--students students join them round-robin, each its own WebSocket session through nginx (its route
cookie pins it to a process, as a browser's does) on the Class page's student view (?room=CODE):
think, draw a real MNIST test digit of the prompt's kind, wait for its Prediction (timed: stroke ->
prediction), think a little, press "Send to the class" and wait for "Sent ✓ (#id)" (timed: the
acknowledgement), and again until the time is up.  One teacher's wall per room (?teacher=TOKEN) reruns
its refreshing fragment on its own timer, as the projector's browser does, and reads the "Drawings"
count: send -> wall is from a drawing's acknowledgement to the first wall refresh whose count covers
it (the k-th acknowledged drawing of a room is on the wall once the count is >= k).  At the end every
acknowledged drawing id is looked up in the database: lost = acknowledged but not there.

--kill-at S sends SIGKILL to the first process (w1) S seconds in.  Its sessions
reconnect through nginx the way Streamlit's page does (the route cookie moves to the process that
answered) and go on; reported: how many sessions were cut, the time from the cut to each one's next
prediction, sends left without an acknowledgement (a student sees no "Sent ✓" and presses again:
the send id makes a retry count once), and lost drawings.

--capacity: for each --workers count, steps of --capacity-steps students on the Draw page (the
strokes only, loadtest.run_protocol's student) for --step-seconds each: strokes/s and p95; the
capacity is the highest strokes/s of a step with p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.serve import Stack, free_port

from . import payloads
from .protocol import ProtocolError, Session, canvas_value
from .run_protocol import TARGET_P95_S, Stats, _pct, student
from .server import MemoryWatch

ROOT = Path(__file__).resolve().parent.parent
SENT = re.compile(r"Sent ✓ \(#(\d+)\)")
PROMPTS = (3, 7, 4, 1, 0, 2)  # the rooms' "Everyone draw a ..."
RECONNECT_EVERY_S = 0.5  # how often a cut session tries again (Streamlit's page starts near that)


@dataclass
class ClassStats:
    strokes: Stats = field(default_factory=Stats)
    send_s: list = field(default_factory=list)  # press -> "Sent ✓"
    acked: dict = field(default_factory=dict)  # room code -> [(drawing id, monotonic time of the ack)]
    unacked: list = field(default_factory=list)  # (who, why): sends without an acknowledgement
    wall_s: list = field(default_factory=list)  # ack -> on the wall
    wall_refreshes: int = 0
    cuts: list = field(default_factory=list)  # (who, monotonic time the connection dropped)
    recoveries: list = field(default_factory=list)  # s from a cut to that session's next prediction


def _ms(values, q) -> int | None:
    """The q-th percentile in ms (None when there is nothing to take it of)."""
    return round(_pct(values, q) * 1000) if values else None


async def connect(s: Session, deadline: float) -> None:
    """(Re)connect the way Streamlit's page does after a drop: try again until it works or time is up."""
    while True:
        try:
            await s.close()
        except Exception:  # noqa: BLE001 (a dead socket may fail to close; it is dropped anyway)
            pass
        s._ws = None
        try:
            await s.connect()
            return
        except (ProtocolError, OSError) as exc:
            if time.monotonic() > deadline:
                raise ProtocolError(f"could not reconnect: {exc}") from None
            await asyncio.sleep(RECONNECT_EVERY_S)


async def room_student(
    url: str, code: str, who: str, digits, deadline: float, think: float, st: ClassStats, seed: int
) -> None:
    rng = random.Random(seed)
    s = Session(url, page="class_room", query=f"room={code}")
    cut_at: float | None = None
    order = rng.sample(range(len(digits)), len(digits))  # no drawing twice: each send is a new one
    n = 0
    try:
        await connect(s, deadline)
        while time.monotonic() < deadline:
            if cut_at is None:  # after a cut the student draws again at once (the page reconnected by itself)
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            if time.monotonic() >= deadline:
                break
            png, label = digits[order[n % len(order)]]
            n += 1
            try:
                r = await s.draw(png)
                _stroke(st, who, r, label, cut_at)
                if r.prediction is None:
                    continue
                cut_at = None
                await asyncio.sleep(think * rng.uniform(0.1, 0.5))
                await _send(s, who, code, png, st)
            except ProtocolError as exc:
                if cut_at is None:
                    cut_at = time.monotonic()
                    st.cuts.append((who, cut_at, str(exc)))
                await connect(s, deadline + 30)
    except ProtocolError as exc:
        st.strokes.errors.append(f"{who}: {exc}")
    finally:
        await s.close()


def _stroke(st: ClassStats, who: str, r, label: int, cut_at: float | None) -> None:
    st.strokes.strokes += 1
    if r.exceptions:
        st.strokes.errors.append(f"{who}: exception on the page: {r.exceptions[0][:200]}")
    elif r.prediction is None or r.t_metric is None:
        st.strokes.errors.append(f"{who}: no prediction (alerts: {r.alerts[:2]})")
    else:
        st.strokes.latencies.append(r.t_metric)
        st.strokes.when.append(time.monotonic() - r.t_done)
        st.strokes.correct += str(label) == r.prediction
        if cut_at is not None:
            st.recoveries.append(time.monotonic() - cut_at)


async def _send(s: Session, who: str, code: str, png: bytes, st: ClassStats) -> None:
    """Press "Send to the class" (with the canvas' drawing, as the browser's rerun carries every widget)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    canvas = WidgetState(id=s.widget_ids["canvas"])
    canvas.json_value = canvas_value(png)
    press = WidgetState(id=s.widget_ids["room_send"])
    press.trigger_value = True
    t0 = time.perf_counter()
    try:
        r = await s.rerun([canvas, press], s.widget_fragments.get("room_send", ""))
    except ProtocolError as exc:
        st.unacked.append((who, f"cut while sending: {exc}"))
        raise
    ack = next((m for kind, body in r.alerts if kind == "success" and (m := SENT.search(body))), None)
    if ack is None:
        st.unacked.append((who, f"no acknowledgement: {(r.alerts or r.exceptions)[:2]}"))
        st.strokes.errors.append(f"{who}: send not acknowledged: {(r.alerts or r.exceptions)[:2]}")
        return
    st.send_s.append(time.perf_counter() - t0)
    st.acked.setdefault(code, []).append((int(ack.group(1)), time.monotonic()))


async def wall(url: str, code: str, token: str, deadline: float, st: ClassStats) -> None:
    """The projector: its refreshing fragment rerun on its timer; acknowledged drawings checked off."""
    s = Session(url, page="class_room", query=f"teacher={token}")
    seen = 0  # acknowledged drawings of this room known to be on the wall
    try:
        await connect(s, deadline)
        while time.monotonic() < deadline + 5:  # a little longer: the last sends reach the wall
            fragment, interval = next(iter(s.auto_reruns.items()))
            await asyncio.sleep(interval)
            try:
                r = await s.rerun([], fragment)
            except ProtocolError:
                await connect(s, deadline + 30)
                continue
            st.wall_refreshes += 1
            count = int(r.metrics.get("Drawings", "0").replace(",", ""))
            now = time.monotonic()
            acked = sorted(t for _, t in st.acked.get(code, []))
            while seen < min(count, len(acked)):
                st.wall_s.append(now - acked[seen])
                seen += 1
    except (ProtocolError, StopIteration) as exc:
        st.strokes.errors.append(f"wall {code}: {type(exc).__name__}: {exc}")
    finally:
        await s.close()


def start_postgres() -> tuple[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="knn-serve-postgres-"))
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1], folder


def stop_postgres(folder: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)


async def run_class(stack: Stack, store, args, digits) -> dict:
    st = ClassStats()
    rooms = []
    for i in range(args.rooms):
        room = store.create_room()
        store.set_prompt(room.teacher_token, PROMPTS[i % len(PROMPTS)])
        rooms.append(dataclasses.replace(room, prompt=PROMPTS[i % len(PROMPTS)]))  # (the token is only here)
    by_label: dict[int, list] = {}
    for png, label in digits:
        by_label.setdefault(label, []).append((png, label))
    t_start = time.monotonic()
    deadline = t_start + args.duration
    tasks = [asyncio.create_task(wall(stack.url, r.code, r.teacher_token, deadline, st)) for r in rooms]
    await asyncio.sleep(1)
    for i in range(args.students):
        room = rooms[i % len(rooms)]
        mine = by_label[room.prompt]
        tasks.append(
            asyncio.create_task(
                room_student(stack.url, room.code, f"student {i + 1}", mine, deadline, args.think, st, seed=i)
            )
        )
        await asyncio.sleep(args.ramp / max(1, args.students))
    killed = None
    if args.kill_at is not None:
        await asyncio.sleep(max(0.0, t_start + args.kill_at - time.monotonic()))
        victim = stack.workers[0]
        killed = {"process": victim.group, "pid": victim.pid, "at_s": round(time.monotonic() - t_start, 1)}
        os.kill(victim.pid, signal.SIGKILL)
        killed["t"] = time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t_start
    # every acknowledged drawing in the database?
    lost, rows = [], 0
    for room in rooms:
        ids = {d.id for d in store.drawings(room.code, wall=False)}
        rows += len(ids)
        lost += [i for i, _ in st.acked.get(room.code, []) if i not in ids]
    acked = sum(len(v) for v in st.acked.values())
    lat = st.strokes.latencies
    result = {
        "workers": len(stack.workers),
        "students": args.students,
        "rooms": args.rooms,
        "duration_s": round(elapsed),
        "think_s": args.think,
        "strokes": st.strokes.strokes,
        "strokes_per_s": round(st.strokes.strokes / elapsed, 1),
        "stroke_ms": {q: _ms(lat, q) for q in (50, 95, 99)},
        "correct": round(st.strokes.correct / max(1, len(lat)), 3),
        "errors": len(st.strokes.errors),
        "error_samples": st.strokes.errors[:8],
        "sends_acked": acked,
        "rows": rows,
        "lost": len(lost),
        "rows_not_acked": rows - (acked - len(lost)),  # committed, but the student saw no "Sent ✓"
        "unacked": len(st.unacked),
        "unacked_samples": st.unacked[:5],
        "send_ms": {q: _ms(st.send_s, q) for q in (50, 95)},
        "wall_ms": {q: _ms(st.wall_s, q) for q in (50, 95)},
        "on_wall": len(st.wall_s),
        "wall_refreshes": st.wall_refreshes,
    }
    if killed is not None:
        cut = [c for c in st.cuts if c[1] >= killed["t"] - 1]
        killed.pop("t")
        result["kill"] = killed | {
            "sessions_cut": len(cut),
            "recovery_s": {
                "median": round(_pct(st.recoveries, 50), 2) if st.recoveries else None,
                "max": round(max(st.recoveries, default=0), 2),
                "n": len(st.recoveries),
            },
            "health_after": stack.health(),
        }
    return result


async def capacity_step(url: str, n: int, seconds: float, think: float, digits) -> dict:
    stats = Stats()
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*[student(url, f"student {i + 1}", digits, deadline, think, stats, seed=i) for i in range(n)])
    elapsed = time.monotonic() - t0
    return {
        "students": n,
        "strokes_per_s": round(stats.strokes / elapsed, 1),
        "p50_ms": _ms(stats.latencies, 50),
        "p95_ms": _ms(stats.latencies, 95),
        "errors": len(stats.errors),
    }


def run_capacity(args, digits) -> dict:
    out = {}
    for n_workers in args.workers:
        ports = [free_port() for _ in range(n_workers)]
        with Stack(workers_n=n_workers, port=free_port(), worker_ports=ports) as stack:
            steps = []
            for n in args.capacity_steps:
                step = asyncio.run(capacity_step(stack.url, n, args.step_seconds, args.think, digits))
                steps.append(step)
                print(f"  {n_workers} process(es), {n} students: {step}", flush=True)
                if step["p95_ms"] > 3 * TARGET_P95_S * 1000:
                    break  # far past it: more students only queue
        ok = [s["strokes_per_s"] for s in steps if s["p95_ms"] <= TARGET_P95_S * 1000 and not s["errors"]]
        out[n_workers] = {"steps": steps, "capacity_strokes_per_s": max(ok, default=0.0)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="processes behind nginx (default 2; with --capacity, several counts: default 1 2)",
    )
    p.add_argument("--students", type=int, default=100)
    p.add_argument("--rooms", type=int, default=3)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument(
        "--think",
        type=float,
        default=None,
        help="mean seconds a student thinks before a stroke (default 2; --capacity: 1)",
    )
    p.add_argument("--ramp", type=float, default=10.0, help="seconds over which the students arrive")
    p.add_argument("--kill-at", type=float, default=None, help="SIGKILL one process this many seconds in")
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster (scripts/postgres.sh)")
    p.add_argument("--database-url", help="the class room database (default: a SQLite file in a temp folder)")
    p.add_argument("--capacity", action="store_true")
    p.add_argument("--capacity-steps", type=lambda v: [int(x) for x in v.split(",")], default=[10, 20, 40, 60, 80])
    p.add_argument("--step-seconds", type=float, default=30.0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    args.workers = args.workers or ([1, 2] if args.capacity else [2])
    args.think = args.think if args.think is not None else (1.0 if args.capacity else 2.0)
    digits = payloads.drawings(300)
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: compare ratios)", flush=True)
    if args.capacity:
        result = {"capacity": run_capacity(args, digits), "think_s": args.think}
    else:
        result = _class_run(args, digits)
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


def _class_run(args, digits) -> dict:
    from knn_core.room import open_store

    folder, pg = Path(tempfile.mkdtemp(prefix="knn-serve-load-")), None
    try:
        url = args.database_url
        if args.postgres:
            url, pg = start_postgres()
        url = url or f"sqlite:///{folder / 'classroom.sqlite3'}"
        store = open_store(url)
        ports = [free_port() for _ in range(args.workers[0])]
        with Stack(workers_n=args.workers[0], port=free_port(), worker_ports=ports, database_url=url) as stack:
            watches = [MemoryWatch(w.pid) for w in stack.workers]
            for w in watches:
                w.__enter__()
            result = asyncio.run(run_class(stack, store, args, digits))
            for w in watches:
                w.__exit__()
            result["peak_rss_mb"] = [round(w.peak_mb) for w in watches]
            result["database"] = url.split(":")[0]
        return result
    finally:
        if pg is not None:
            stop_postgres(pg)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
