"""One SQLAlchemy engine per store, set up for many short transactions from many students.

SQLite: WAL (the wall reads while students write), a 10 s busy timeout, and writes that start
with BEGIN IMMEDIATE: a write transaction takes the write lock first and waits for it in the busy
handler, instead of starting as a reader and failing with "database is locked" when it tries to
upgrade (the busy timeout cannot help a deferred transaction whose snapshot went stale).

synchronous=FULL, not NORMAL: in WAL mode NORMAL survives the process being killed (SIGKILL) but
may lose the last commits on power loss or an OS crash, and a drawing counts as sent only when it
is durable. FULL costs one fsync per commit, a few milliseconds against a class's dozens of sends
a second.

PostgreSQL (postgresql+psycopg://...): pool_pre_ping replaces connections that died with a server
restart; the store retries a failed operation once on a fresh connection.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from .errors import StoreUnavailable

BUSY_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 5


def make_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreUnavailable(
            f"Not a database URL: {url!r} (expected sqlite:///path or postgresql+psycopg://...)"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        try:
            return sa.create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                pool_timeout=BUSY_TIMEOUT_S,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            )
        except ImportError as exc:
            raise StoreUnavailable(
                f"The PostgreSQL driver is missing ({exc}): pip install 'knn-digit-lab[postgres]'"
            ) from exc
    raise StoreUnavailable(
        f"Unsupported database {backend!r} in {describe(url)}: use sqlite:/// or postgresql+psycopg://"
    )


def describe(url: str | sa.URL) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a database URL)"


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # the driver leaves transactions to us (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")  # why FULL: see the module docstring
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("knn_write") else "BEGIN")

    return engine
