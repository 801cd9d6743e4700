"""The store's tables as they are after the last migration (SQLAlchemy Core), used by every query.

A drawing's pixels are its 784 bytes (28x28 uint8, row by row): a BLOB in SQLite, bytea in
PostgreSQL. The index on (room_id, id) serves the wall ("this room's drawings after id N, oldest
first"); the unique (room_id, send_id) makes a retried send find its first copy instead of adding
a second. migrations.py builds exactly this; tests/test_room_store.py checks that it does.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

rooms = sa.Table(
    "rooms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(7), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("prompt", sa.SmallInteger, nullable=True),
    sa.Column("review_first", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_rooms_expires_at", "expires_at"),
)

drawings = sa.Table(
    "drawings",
    metadata,
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
    sa.Column("approved", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_drawings_room_id_id", "room_id", "id"),
    sa.Index("ix_drawings_room_student", "room_id", "student", "id"),
    sa.UniqueConstraint("room_id", "send_id", name="uq_drawings_room_send"),
)
