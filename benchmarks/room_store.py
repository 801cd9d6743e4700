"""The class room's store under a class's load: sends per second from 1 and 30 threads, SQLite vs PostgreSQL.

    .venv/bin/python benchmarks/room_store.py [--sends 20] [--threads 1,30] [--repeats 3] [--pg-port 8700]

Each thread is a student sending --sends drawings (one transaction each, committed before the
next; SQLite with synchronous=FULL, PostgreSQL with its durable defaults), while one more thread
reads the wall (drawings after the last id seen) as fast as it can. Printed per database and thread
count: sends/second (median of --repeats runs, each in a fresh room), the median and p95 time of one
send, and the wall reads done meanwhile. PostgreSQL is a throwaway cluster (scripts/postgres.sh) in a
temp folder, or --postgres URL for a server you have; without PostgreSQL only SQLite is measured.
Timings depend on what else the machine runs: compare the rows of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knn_core.room import open_store  # noqa: E402


def one_run(url: str, threads: int, sends: int) -> dict:
    with open_store(url) as store:
        room = store.create_room()
        stop = threading.Event()
        reads = [0]

        def wall():
            last = 0
            while not stop.is_set():
                new = store.drawings(room.code, after_id=last)
                last = new[-1].id if new else last
                reads[0] += 1

        def student(s: int) -> list[float]:
            pixels = np.random.default_rng(s).integers(1, 256, (28, 28), dtype=np.uint8)
            times = []
            for i in range(sends):
                t = time.perf_counter()
                store.send(room.code, pixels, label=i % 10, predicted=i % 10, student=f"s{s}", send_id=f"{s}-{i}")
                times.append(time.perf_counter() - t)
            return times

        reader = threading.Thread(target=wall)
        reader.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            times = [t for batch in pool.map(student, range(threads)) for t in batch]
        elapsed = time.perf_counter() - t0
        stop.set()
        reader.join()
        assert store.count(room.code) == threads * sends, "a send went missing"
    return {"rate": len(times) / elapsed, "median": statistics.median(times),
            "p95": float(np.percentile(times, 95)), "reads": reads[0] / elapsed}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sends", type=int, default=20, help="drawings per thread (default 20)")
    ap.add_argument("--threads", default="1,30", help="thread counts, e.g. 1,30 (default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--postgres", metavar="URL", help="an existing PostgreSQL database instead of a throwaway cluster")
    ap.add_argument("--pg-port", type=int, help="port of the throwaway cluster (default: a free one)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="knn-room-bench-"))
    urls = {"SQLite (WAL, synchronous=FULL)": f"sqlite:///{tmp / 'classroom.sqlite3'}"}
    cluster = None
    if args.postgres:
        urls["PostgreSQL"] = args.postgres
    else:
        cluster = Path(tempfile.mkdtemp(prefix="knn-room-bench-postgres-"))  # its own: reachable by its user
        start = ["bash", str(ROOT / "scripts/postgres.sh"), "start", str(cluster)]
        done = subprocess.run(start + ([str(args.pg_port)] if args.pg_port else []), capture_output=True, text=True)
        if done.returncode == 0:
            urls["PostgreSQL 15 (local, defaults)"] = done.stdout.split()[-1]
        else:
            print(f"PostgreSQL not measured: {done.stderr.strip()}", file=sys.stderr)
            shutil.rmtree(cluster, ignore_errors=True)
            cluster = None
    try:
        print(f"{args.sends} sends per thread, median of {args.repeats} runs; one wall reader thread alongside\n")
        print("| database | threads | sends/s | send median ms | send p95 ms | wall reads/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, url in urls.items():
            for threads in (int(t) for t in args.threads.split(",")):
                runs = [one_run(url, threads, args.sends) for _ in range(args.repeats)]
                mid = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
                print(f"| {name} | {threads} | {mid['rate']:.0f} | {1000 * mid['median']:.1f} | "
                      f"{1000 * mid['p95']:.1f} | {mid['reads']:.0f} |", flush=True)  # fmt: skip
    finally:
        if cluster is not None:
            subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), "stop", str(cluster)], capture_output=True)
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
