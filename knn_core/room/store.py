"""The class room's store: rooms, the drawings students send, and what the teacher does with them.

Every public method is one short transaction (`_run`), so thirty students sending at once only
queue for a few milliseconds each. `send` returns only after its transaction committed: that
return is the student's acknowledgement. Input is checked before the database is touched, and any
`RoomError` rolls its transaction back, so bad input changes nothing.
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TypeVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from . import codes
from .config import database_url, days_text, retention
from .engine import describe, make_engine
from .errors import BadDrawing, NotTeacher, RoomExpired, RoomNotFound, StoreUnavailable
from .migrations import migrate
from .schema import drawings, rooms

T = TypeVar("T")
NICKNAME_MAX = 30
ID_MAX = 64  # student (a per-browser session id) and send_id
_RETRY_PAUSE_S = 0.5
_CODE_TRIES = 10


@dataclass(frozen=True)
class Room:
    """A class. `teacher_token` is set only where the teacher's link was used (create_room, teacher_room)."""

    code: str
    created_at: datetime
    expires_at: datetime
    prompt: int | None
    review_first: bool
    teacher_token: str | None = None


@dataclass(frozen=True, eq=False)
class Drawing:
    """One sent digit: `pixels` is (28, 28) uint8, ink high, as knn_core's classifiers take it.

    Compared by identity (eq=False): the pixels are an array, and `id` is what names a drawing.
    """

    id: int
    room: str
    pixels: np.ndarray
    label: int | None
    predicted: int | None
    nickname: str | None
    student: str
    created_at: datetime
    hidden: bool
    approved: bool
    send_id: str


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in the store is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def open_store(url: str | None = None, *, migrate_schema: bool = True) -> RoomStore:
    """The store at `url` (default: `database_url()`), its schema brought up to date."""
    return RoomStore(url or database_url(), migrate_schema=migrate_schema)


class RoomStore:
    def __init__(self, url: str, *, migrate_schema: bool = True, retention_period: timedelta | None = None):
        self.url = url
        self.retention = retention_period if retention_period is not None else retention()
        self._engine = make_engine(url)
        self._sqlite = self._engine.dialect.name == "sqlite"
        if migrate_schema:
            self._run(lambda _conn: None, write=False)  # a clear StoreUnavailable before any DDL
            try:
                migrate(self._engine)
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                raise self._unavailable(exc) from exc

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> RoomStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RoomStore({describe(self.url)!r})"

    # ------------------------------------------------------------------ rooms

    def create_room(self, *, now: datetime | None = None) -> Room:
        """A new class with a fresh code and teacher token (the token is shown once, here)."""
        created = now or utc_now()
        token = codes.new_teacher_token()
        for _ in range(_CODE_TRIES):
            code = codes.new_code()
            values = dict(
                code=code,
                token_hash=codes.token_hash(token),
                created_at=created,
                expires_at=created + self.retention,
                prompt=None,
                review_first=False,
            )
            try:
                self._run(partial(_insert_room, values=values), write=True)
            except sa.exc.IntegrityError:
                continue  # that code is taken: draw another
            return Room(code, created, created + self.retention, None, False, token)
        raise StoreUnavailable("Could not find a free class code: try again")

    def room(self, code: str, *, now: datetime | None = None) -> Room:
        """The class with this code (case, spaces and dashes do not matter)."""
        return self._run(lambda conn: self._room_row(conn, code, now)[1], write=False)

    def teacher_room(self, token: str, *, now: datetime | None = None) -> Room:
        """The class this teacher link belongs to; NotTeacher for anything else."""
        return self._run(lambda conn: self._teacher_row(conn, token, now)[1], write=False)

    def set_prompt(self, token: str, digit: int | None) -> Room:
        """Set the prompt, "Everyone draw a 4" (None: students say which digit they meant)."""
        prompt = _digit_or_none(digit, "The prompt")
        return self._update_room(token, prompt=prompt)

    def set_review_first(self, token: str, review_first: bool) -> Room:
        """With review first, new drawings reach the wall only once the teacher approves them."""
        return self._update_room(token, review_first=bool(review_first))

    def delete_room(self, token: str) -> int:
        """The class and all its drawings, in one transaction; returns how many drawings went."""

        def work(conn: sa.Connection) -> int:
            room_id, _ = self._teacher_row(conn, token, None, allow_expired=True, lock=True)
            gone = conn.execute(drawings.delete().where(drawings.c.room_id == room_id)).rowcount
            conn.execute(rooms.delete().where(rooms.c.id == room_id))
            return gone

        return self._run(work, write=True)

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete the classes past their retention period with their drawings; returns how many classes."""
        now = now or utc_now()
        expired = sa.or_(rooms.c.expires_at <= now, rooms.c.created_at <= now - self.retention)

        def work(conn: sa.Connection) -> int:
            ids = sa.select(rooms.c.id).where(expired).scalar_subquery()
            conn.execute(drawings.delete().where(drawings.c.room_id.in_(ids)))
            return conn.execute(rooms.delete().where(expired)).rowcount

        return self._run(work, write=True)

    # ------------------------------------------------------------------ drawings

    def send(
        self,
        code: str,
        pixels,
        *,
        label: int | None = None,
        predicted: int | None = None,
        nickname: str | None = None,
        student: str = "",
        send_id: str | None = None,
        now: datetime | None = None,
    ) -> Drawing:
        """Store a student's drawing; committed when this returns. Idempotent per (room, send_id).

        The room's row is locked until the insert commits (see `_room_row`); on PostgreSQL that is one
        statement (`_send_in_one_statement`), so the lock is held inside the server only.
        """
        blob = _pixels_blob(pixels)
        send_id = _id_text(send_id or uuid.uuid4().hex, "send_id")
        values = dict(
            send_id=send_id,
            pixels=blob,
            label=_digit_or_none(label, "The label"),
            predicted=_digit_or_none(predicted, "The predicted digit"),
            nickname=_nickname(nickname),
            student=_id_text(student, "student"),
            hidden=False,
        )

        if not self._sqlite:
            at_once = partial(self._send_in_one_statement, code=code, values=values, now=now)
            return self._run(at_once, write=True, autocommit=True)

        def work(conn: sa.Connection) -> Drawing:
            room_id, room = self._room_row(conn, code, now, lock=True)
            existing = self._drawing_by_send_id(conn, room_id, room.code, send_id)
            if existing is not None:
                return existing
            row = dict(values, room_id=room_id, created_at=now or utc_now(), approved=not room.review_first)
            new_id = conn.execute(drawings.insert().values(**row).returning(drawings.c.id)).scalar_one()
            return _drawing(dict(row, id=new_id), room.code)

        try:
            return self._run(work, write=True)
        except sa.exc.IntegrityError:
            # The same send_id arrived twice at once (PostgreSQL: two transactions raced); the first won.
            return self._run(lambda conn: self._resend(conn, code, send_id, now), write=False)

    def drawings(self, code: str, *, wall: bool = True, after_id: int = 0, limit: int | None = None) -> list[Drawing]:
        """The class's drawings oldest first: what the wall shows (wall=True) or all, for moderation."""

        def work(conn: sa.Connection) -> list[Drawing]:
            room_id, room = self._room_row(conn, code, None)
            query = sa.select(drawings).where(drawings.c.room_id == room_id, drawings.c.id > int(after_id))
            if wall:
                query = query.where(*self._on_wall(room))
            query = query.order_by(drawings.c.id)
            if limit is not None:
                query = query.limit(max(0, int(limit)))
            return [_drawing(r._mapping, room.code) for r in conn.execute(query)]

        return self._run(work, write=False)

    def count(self, code: str, *, wall: bool = True) -> int:
        def work(conn: sa.Connection) -> int:
            room_id, room = self._room_row(conn, code, None)
            query = sa.select(sa.func.count()).select_from(drawings).where(drawings.c.room_id == room_id)
            if wall:
                query = query.where(*self._on_wall(room))
            return int(conn.execute(query).scalar_one())

        return self._run(work, write=False)

    def student_drawings(self, code: str, student: str) -> list[Drawing]:
        """What this student sent (each student sees their own, not the others')."""

        def work(conn: sa.Connection) -> list[Drawing]:
            room_id, room = self._room_row(conn, code, None)
            query = (
                sa.select(drawings)
                .where(drawings.c.room_id == room_id, drawings.c.student == _id_text(student, "student"))
                .order_by(drawings.c.id)
            )
            return [_drawing(r._mapping, room.code) for r in conn.execute(query)]

        return self._run(work, write=False)

    def hide(self, token: str, drawing_id: int, hidden: bool = True) -> Drawing:
        return self._update_drawing(token, drawing_id, hidden=bool(hidden))

    def approve(self, token: str, drawing_id: int, approved: bool = True) -> Drawing:
        return self._update_drawing(token, drawing_id, approved=bool(approved))

    # ------------------------------------------------------------------ inside transactions

    def _expiry(self, created_at: datetime, expires_at: datetime) -> datetime:
        """The stored expiry, or sooner when KNN_LAB_RETENTION_DAYS was shortened since."""
        return min(_utc(expires_at), _utc(created_at) + self.retention)

    def _to_room(self, row, token: str | None = None) -> Room:
        return Room(
            row.code,
            _utc(row.created_at),
            self._expiry(row.created_at, row.expires_at),
            row.prompt,
            bool(row.review_first),
            token,
        )

    def _send_in_one_statement(self, conn: sa.Connection, *, code: str, values: dict, now: datetime | None) -> Drawing:
        """PostgreSQL's send: lock the room's row, insert unless this send_id is there or the class has
        ended, and read the room back, in one statement run in autocommit, so it commits as it ends.

        With a transaction of several statements the lock was held across round trips to this process,
        each a wait for its GIL while thirty students draw: sends to one class queued behind each other
        and held pooled connections meanwhile (loadtest/run_serve.py).  The lock still orders a room's
        drawings by id as they commit."""
        canonical = _canonical_code(code)
        at = now or utc_now()
        room = sa.select(rooms).where(rooms.c.code == canonical).with_for_update().cte("room")
        open_ = sa.and_(room.c.expires_at > at, room.c.created_at > at - self.retention)  # as in _expiry
        columns = [c for c in drawings.c if c.name != "id"]
        given = dict(values, created_at=at)
        computed = {"room_id": room.c.id, "approved": sa.not_(room.c.review_first)}
        source = sa.select(
            *[computed.get(c.name, sa.cast(sa.literal(given.get(c.name), c.type), c.type)) for c in columns]
        ).where(open_)
        inserted = (
            postgresql.insert(drawings)
            .from_select(columns, source)
            .on_conflict_do_nothing(index_elements=[drawings.c.room_id, drawings.c.send_id])
            .returning(drawings.c.id, drawings.c.approved)
            .cte("inserted")
        )
        row = conn.execute(
            sa.select(room, inserted.c.id.label("new_id"), inserted.c.approved.label("new_approved")).select_from(
                room.outerjoin(inserted, sa.true())
            )
        ).first()
        if row is None:
            raise RoomNotFound(f"No class with code {canonical}: check the code on the projector")
        found = self._open_room(row, canonical, now)
        if row.new_id is None:  # sent before (a retry): the drawing as first stored
            return self._resend(conn, code, values["send_id"], now)
        return _drawing(dict(given, id=row.new_id, approved=row.new_approved), found.code)

    def _room_row(
        self, conn: sa.Connection, code: str, now: datetime | None, *, lock: bool = False
    ) -> tuple[int, Room]:
        """The room's id and Room; with `lock`, its row stays locked until the transaction ends.

        `send` locks it so that a room's drawings commit in the order of their ids (PostgreSQL
        hands out ids at insert time, and without the lock id 6 could commit before id 5: a wall
        that had read up to 6 would never show 5). SQLite's write lock already serializes sends.
        """
        canonical = _canonical_code(code)
        query = sa.select(rooms).where(rooms.c.code == canonical)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise RoomNotFound(f"No class with code {canonical}: check the code on the projector")
        return row.id, self._open_room(row, canonical, now)

    def _open_room(self, row, canonical: str, now: datetime | None) -> Room:
        """The room of this row; RoomExpired when its class has ended."""
        room = self._to_room(row)
        if room.expires_at <= (now or utc_now()):
            raise RoomExpired(
                f"The class {canonical} has ended: classes are kept for {days_text(self.retention)} and then deleted. "
                "Ask your teacher for a new code"
            )
        return room

    def _teacher_row(
        self, conn, token: str, now: datetime | None, *, allow_expired: bool = False, lock: bool = False
    ) -> tuple[int, Room]:
        invalid = NotTeacher("This teacher link is not valid (or the class was deleted): start a new class")
        if not isinstance(token, str) or not 8 <= len(token) <= 200:
            raise invalid
        wanted = codes.token_hash(token)
        query = sa.select(rooms).where(rooms.c.token_hash == wanted)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None or not codes.same_hash(row.token_hash, wanted):
            raise invalid
        room = self._to_room(row, token)
        if not allow_expired and room.expires_at <= (now or utc_now()):
            raise NotTeacher(
                f"This teacher link has expired: the class {room.code} was kept for {days_text(self.retention)} "
                "and is being deleted. Start a new class"
            )
        return row.id, room

    def _update_room(self, token: str, **changes) -> Room:
        def work(conn: sa.Connection) -> Room:
            room_id, room = self._teacher_row(conn, token, None)
            conn.execute(rooms.update().where(rooms.c.id == room_id).values(**changes))
            return Room(**{**room.__dict__, **changes})

        return self._run(work, write=True)

    def _update_drawing(self, token: str, drawing_id: int, **changes) -> Drawing:
        def work(conn: sa.Connection) -> Drawing:
            room_id, room = self._teacher_row(conn, token, None)
            where = (drawings.c.room_id == room_id, drawings.c.id == _drawing_id(drawing_id))
            if conn.execute(drawings.update().where(*where).values(**changes)).rowcount != 1:
                raise RoomNotFound(f"No drawing {drawing_id} in the class {room.code}")
            return _drawing(conn.execute(sa.select(drawings).where(*where)).one()._mapping, room.code)

        return self._run(work, write=True)

    @staticmethod
    def _on_wall(room: Room) -> list:
        shown = [drawings.c.hidden == sa.false()]
        if room.review_first:
            shown.append(drawings.c.approved == sa.true())
        return shown

    @staticmethod
    def _drawing_by_send_id(conn, room_id: int, code: str, send_id: str) -> Drawing | None:
        row = conn.execute(
            sa.select(drawings).where(drawings.c.room_id == room_id, drawings.c.send_id == send_id)
        ).first()
        return None if row is None else _drawing(row._mapping, code)

    def _resend(self, conn, code: str, send_id: str, now: datetime | None) -> Drawing:
        room_id, room = self._room_row(conn, code, now)
        found = self._drawing_by_send_id(conn, room_id, room.code, send_id)
        if found is None:  # the IntegrityError was not a duplicate send: a bug, say so
            raise StoreUnavailable(f"The drawing could not be stored in the class {room.code}: try again")
        return found

    # ------------------------------------------------------------------ transactions and failures

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool, autocommit: bool = False) -> T:
        """`work` in one transaction (autocommit: each statement its own); on a lost connection, once more
        on a fresh one, then StoreUnavailable.

        Retrying is safe: a send whose commit did happen is found again by its send_id.
        """
        options = {"knn_write": write} | ({"isolation_level": "AUTOCOMMIT"} if autocommit else {})
        for attempt in (1, 2):
            try:
                with self._engine.connect().execution_options(**options) as conn, conn.begin():
                    return work(conn)
            except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
                lost = getattr(exc, "connection_invalidated", False) or not self._sqlite
                if attempt == 1 and lost:
                    time.sleep(_RETRY_PAUSE_S)
                    continue
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        busy = self._sqlite and "locked" in str(exc)
        why = "is busy" if busy else "cannot be reached"
        return StoreUnavailable(
            f"The class-room database {why} right now ({describe(self.url)}); nothing was saved: try again in a moment"
        )


def _insert_room(conn: sa.Connection, values: dict) -> None:
    conn.execute(rooms.insert().values(**values))


# ---------------------------------------------------------------------- input checks


def _canonical_code(code) -> str:
    """The class code as stored; RoomNotFound for anything that cannot be one."""
    canonical = codes.normalize_code(code)
    if canonical is None:
        shown = str(code).strip()[:20] if isinstance(code, str) else repr(code)[:20]
        raise RoomNotFound(
            f"No class with code {shown}: a class code looks like K7M-4QX; check the code on the projector"
        )
    return canonical


def _pixels_blob(pixels) -> bytes:
    if not isinstance(pixels, np.ndarray):
        raise BadDrawing(f"A drawing must be a 28x28 array of bytes, got {type(pixels).__name__}")
    if pixels.shape != (28, 28):
        raise BadDrawing(f"A drawing must be 28x28 pixels, got shape {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise BadDrawing(f"A drawing's pixels must be uint8 (0-255), got {pixels.dtype}")
    if not pixels.any():
        raise BadDrawing("The drawing is empty: draw a digit before sending")
    return np.ascontiguousarray(pixels).tobytes()


def _digit_or_none(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 9:
        raise BadDrawing(f"{what} must be a digit 0-9 (or none), got {value!r}")
    return int(value)


def _nickname(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadDrawing(f"A nickname must be text, got {type(value).__name__}")
    name = value.strip()
    if len(name) > NICKNAME_MAX:
        raise BadDrawing(f"A nickname can have at most {NICKNAME_MAX} characters ({len(name)} given)")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name):
        raise BadDrawing("A nickname cannot contain control characters")
    return name or None


def _id_text(value, what: str) -> str:
    if not isinstance(value, str) or len(value) > ID_MAX or not value.isprintable():
        raise BadDrawing(f"{what} must be printable text of at most {ID_MAX} characters")
    return value


def _drawing_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RoomNotFound(f"No drawing {value!r}: drawing ids are whole numbers")
    return int(value)


def _drawing(row, code: str) -> Drawing:
    pixels = np.frombuffer(bytes(row["pixels"]), dtype=np.uint8).reshape(28, 28)
    return Drawing(
        id=int(row["id"]),
        room=code,
        pixels=pixels,
        label=row["label"],
        predicted=row["predicted"],
        nickname=row["nickname"],
        student=row["student"],
        created_at=_utc(row["created_at"]),
        hidden=bool(row["hidden"]),
        approved=bool(row["approved"]),
        send_id=row["send_id"],
    )
