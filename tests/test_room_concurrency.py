"""Thirty students at once, killed servers and a restarted database: nothing acknowledged is lost.

Runs on SQLite and PostgreSQL (room_fixtures.database_url). The separate processes are
tests/room_sender.py, a student's browser that prints each drawing's id once `send` returned.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from room_fixtures import database_url, postgres  # noqa: F401

from knn_core.room import StoreUnavailable, open_store
from knn_core.room.migrations import LATEST, schema_version

ROOT = Path(__file__).resolve().parent.parent
SENDER = ROOT / "tests" / "room_sender.py"


def sender(url: str, code: str, n: int, name: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(SENDER), url, code, str(n), name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def acks(lines: str) -> dict[int, str]:
    """{drawing id: send_id} of the 'ack <id> <send_id>' lines."""
    return {int(p[1]): p[2] for p in (line.split() for line in lines.splitlines()) if p and p[0] == "ack"}


def stored(store, code: str) -> dict[int, str]:
    return {d.id: d.send_id for d in store.drawings(code, wall=False)}


def test_thirty_threads_send_twenty_drawings_each_while_the_wall_reads(database_url):  # noqa: F811
    with open_store(database_url) as store:
        room = store.create_room()
        stop = threading.Event()
        wall_reads = []

        def wall():
            last, finished = 0, False
            while not finished:
                finished = stop.is_set()  # one more read after the last send
                new = store.drawings(room.code, after_id=last)
                last = new[-1].id if new else last
                wall_reads.append(len(new))

        def student(s: int) -> list[int]:
            pixels = np.full((28, 28), s + 1, np.uint8)
            return [
                store.send(room.code, pixels, label=i % 10, student=f"s{s}", send_id=f"s{s}-{i}").id for i in range(20)
            ]

        reader = threading.Thread(target=wall)
        reader.start()
        try:
            with ThreadPoolExecutor(30) as pool:
                ids = [i for batch in pool.map(student, range(30)) for i in batch]  # re-raises any error
        finally:
            stop.set()
            reader.join()
        assert len(ids) == len(set(ids)) == 600
        assert set(stored(store, room.code)) == set(ids)
        assert store.count(room.code) == 600 and sum(wall_reads) == 600  # the wall saw each drawing once


@pytest.mark.slow  # four Python processes importing knn_core: 10-60 s on a busy machine
def test_four_processes_start_together_migrate_once_and_lose_no_acknowledged_send(database_url):  # noqa: F811
    procs = [sender(database_url, "-", 50, f"p{i}") for i in range(4)]  # on an empty database
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate()[1]
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:  # migrated once, whoever came first
            assert schema_version(conn) == LATEST
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM schema_version").scalar() == 1
    finally:
        engine.dispose()
    with open_store(database_url) as store:
        room = store.create_room()
    outputs = [p.communicate(room.code + "\n", timeout=300) for p in procs]  # now all four send at once
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "locked" not in err
    acked = {k: v for out, _ in outputs for k, v in acks(out).items()}
    assert len(acked) == 200
    with open_store(database_url) as store:
        assert stored(store, room.code) == acked


@pytest.mark.slow
def test_a_sender_killed_mid_run_loses_no_acknowledged_drawing(database_url):  # noqa: F811
    with open_store(database_url) as store:
        room = store.create_room()
    proc = sender(database_url, room.code, 100_000, "victim")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if len(seen) >= 40:
            break
    proc.send_signal(signal.SIGKILL)  # mid-run: it was sending as fast as it could
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    acked = acks("".join(seen) + rest)
    assert len(acked) >= 40
    with open_store(database_url) as store:  # reopen, as a restarted server does
        kept = stored(store, room.code)
    assert all(kept.get(i) == send_id for i, send_id in acked.items())
    assert len(kept) - len(acked) in (0, 1)  # at most the one committed while its ack was being printed


def test_sends_fail_clearly_while_postgres_restarts_and_work_again_after(postgres):  # noqa: F811
    url = postgres.create_database()
    pixels = np.full((28, 28), 9, np.uint8)
    try:
        with open_store(url) as store:
            room = store.create_room()
            store.send(room.code, pixels, label=1, send_id="before")
            postgres.stop()
            try:
                with pytest.raises(StoreUnavailable, match=r"database cannot be reached right now .*try again"):
                    store.send(room.code, pixels, label=2, send_id="during")
                with pytest.raises(StoreUnavailable):
                    store.drawings(room.code)
            finally:
                postgres.start()
            # the pool's connections died with the server: pre-ping replaces them
            store.send(room.code, pixels, label=3, send_id="after")
            assert [d.send_id for d in store.drawings(room.code)] == ["before", "after"]
            # a connection that dies between two sends (server-side kill): the next send still works
            with sa.create_engine(postgres.url).connect() as admin:
                admin.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": url.rsplit("/", 1)[1]},
                )
            store.send(room.code, pixels, label=4, send_id="after-kill")
            assert store.count(room.code) == 3
    finally:
        postgres.drop_database(url)


def test_a_connection_lost_inside_a_transaction_is_retried_once_on_a_fresh_one(postgres):  # noqa: F811
    url = postgres.create_database()
    try:
        with open_store(url) as store:
            calls = []

            def work(conn):
                calls.append(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
                if len(calls) == 1:  # the server drops this connection mid-transaction
                    conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
                return "done"

            assert store._run(work, write=True) == "done"
            assert len(calls) == 2 and calls[0] != calls[1]

            def always_lost(conn):
                conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

            with pytest.raises(StoreUnavailable, match="cannot be reached right now"):
                store._run(always_lost, write=True)  # once more, then a clear message
    finally:
        postgres.drop_database(url)


def test_a_sqlite_file_locked_too_long_says_busy_and_saves_nothing(tmp_path, monkeypatch):
    from knn_core.room import engine

    monkeypatch.setattr(engine, "BUSY_TIMEOUT_S", 0.3)
    url = f"sqlite:///{tmp_path / 'classroom.sqlite3'}"
    pixels = np.full((28, 28), 5, np.uint8)
    with open_store(url) as store:
        room = store.create_room()
        blocker = sqlite3.connect(tmp_path / "classroom.sqlite3", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            with pytest.raises(StoreUnavailable, match=r"database is busy right now .*nothing was saved"):
                store.send(room.code, pixels, label=1)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        store.send(room.code, pixels, label=2)
        assert [d.label for d in store.drawings(room.code)] == [2]
