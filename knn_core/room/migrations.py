"""The schema's history as numbered steps; `migrate` applies the missing ones in one transaction.

Each step is frozen once released: it describes the tables as they were at that version, never
imports schema.py (which is the latest shape), so an old database always walks the same path.
The whole upgrade runs in one transaction under a lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
advisory lock), so app processes that start together migrate once, and a failed step leaves the
database at its old version. Both databases have transactional DDL.

v1: rooms and drawings.  v2: "review first" moderation (rooms.review_first, drawings.approved, true
for what was already sent) and an index for a student's own drawings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from .errors import StoreUnavailable

_ADVISORY_LOCK_ID = 0x6B6E6E  # any constant shared by every process of this app ("knn")


@dataclass(frozen=True)
class Step:
    version: int
    what: str
    apply: Callable[[sa.Connection], None]


def _v1(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "rooms",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(7), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.SmallInteger, nullable=True),
        sa.Index("ix_rooms_expires_at", "expires_at"),
    )
    sa.Table(
        "drawings",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("send_id", sa.String(64), nullable=False),
        sa.Column("pixels", sa.LargeBinary, nullable=False),
        sa.Column("label", sa.SmallInteger, nullable=True),
        sa.Column("predicted", sa.SmallInteger, nullable=True),
        sa.Column("nickname", sa.String(30), nullable=True),
        sa.Column("student", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Index("ix_drawings_room_id_id", "room_id", "id"),
        sa.UniqueConstraint("room_id", "send_id", name="uq_drawings_room_send"),
    )
    md.create_all(conn)


def _v2(conn: sa.Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE rooms ADD COLUMN review_first BOOLEAN NOT NULL DEFAULT FALSE")
    conn.exec_driver_sql("ALTER TABLE drawings ADD COLUMN approved BOOLEAN NOT NULL DEFAULT TRUE")
    conn.exec_driver_sql("CREATE INDEX ix_drawings_room_student ON drawings (room_id, student, id)")


STEPS = [Step(1, "rooms and drawings", _v1), Step(2, "review-first moderation; a student's drawings", _v2)]
LATEST = STEPS[-1].version


def schema_version(conn: sa.Connection) -> int:
    """The database's version: 0 for an empty database (no schema_version table, or no row)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.exec_driver_sql("SELECT MAX(version) FROM schema_version").scalar() or 0)


def migrate(engine: sa.Engine, target: int = LATEST) -> tuple[int, int]:
    """Bring the database to `target` (default: the latest); returns (version before, version after)."""
    with engine.connect().execution_options(knn_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        before = schema_version(conn)
        if before > LATEST:
            raise StoreUnavailable(
                f"The class-room database has schema version {before}, newer than this app knows ({LATEST}): "
                "update the app on this machine"
            )
        for step in STEPS:
            if before < step.version <= target:
                step.apply(conn)
        after = max(before, min(target, LATEST))
        if after != before:
            conn.exec_driver_sql("DELETE FROM schema_version")
            conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": after})
        return before, after
