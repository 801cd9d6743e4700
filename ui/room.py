"""The class room's page side: the store of this server process, who a student is, the join link and its
QR code, and the wall (the class's drawings for the projector) as one cheap HTML element.

The data lives in knn_core.room (a database: Streamlit sessions share nothing but the process, and a
class's drawings must survive a restart).  The pages call only :func:`room_store` and the helpers here.

The wall refreshes every WALL_REFRESH_S seconds in the projector's browser: each refresh reads only the
drawings newer than the last one it saw (:func:`read_wall`), keeps their pictures as inline PNGs, and
sends the latest WALL_SHOWN as a single st.html element, so a refresh costs one small query and one
element however big the class is.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np
import streamlit as st

from knn_core.room import Drawing, Room, RoomStore, StoreUnavailable, database_url, open_store

from .digits import GREEN, GREY, RED, png_data_uri

CLASS_PAGE = "class_room"  # the Class page's URL path (st.Page names it after pages/class_room.py)
ROOM_PARAM = "room"  # ?room=<code>: the student view
TEACHER_PARAM = "teacher"  # ?teacher=<token>: the teacher's wall and controls
WALL_REFRESH_S = 1.5  # the wall rereads the store this often
WALL_SHOWN = 60  # the latest drawings shown on the wall (the count and the tally cover all of them)
WALL_FULL_RELOAD_S = 20.0  # besides a changed count, reread everything this often (moderation elsewhere)
WALL_SCALE = 4  # a 28x28 drawing is shown 112 px wide on the wall
ROOM_FRESH_S = 1.0  # a student's stroke rereads the class (its prompt) from the store at most this often
_STUDENT = "room_student"  # session key: this browser tab's student id
_MINE = "room_mine"  # session key: ((code, student), this student's drawings) as last read
STUDENT_PARAM = "me"  # ?me=<student id>: the same student after a reconnect to another server process
_STUDENT_ID = re.compile(r"[0-9a-f]{16}")


# ------------------------------------------------------------------------------ the store


@lru_cache(maxsize=4)
def _store_at(url: str) -> RoomStore:
    return open_store(url)


def room_store() -> RoomStore:
    """The class-room store of this server process: one per database URL (KNN_LAB_DATABASE_URL, else the
    SQLite file in the data folder), opened once and shared by every session."""
    return _store_at(database_url())


_fresh_rooms: dict = {}  # (store, code) -> (time read, Room), shared by the sessions of this process
_fresh_rooms_lock = threading.Lock()


def fresh_room(store: RoomStore, code: str, *, max_age: float = ROOM_FRESH_S) -> Room:
    """The class with this code, as read from the store at most max_age seconds ago by any session of this
    process.  Every stroke of every student shows the class's current prompt; thirty students drawing at
    once then share one query a second instead of making one each (a query costs the one Python process
    more than the rest of a stroke's bookkeeping).  A missing or expired class is never kept: it raises
    on every call, as the store does; while the database cannot be reached, the class as last read is
    used, so the canvas stays and a send says that it failed."""
    key, now = (id(store), code), time.monotonic()
    with _fresh_rooms_lock:
        hit = _fresh_rooms.get(key)
    if hit is not None and now - hit[0] < max_age:
        return hit[1]
    try:
        room = store.room(code)
    except StoreUnavailable:
        if hit is None:
            raise
        return hit[1]  # the database is away for a moment: go on with the class as last read (a send says it failed)
    with _fresh_rooms_lock:
        if len(_fresh_rooms) > 1000:  # forget old classes (each entry is small; this keeps them few)
            for k in [k for k, (t, _) in _fresh_rooms.items() if now - t >= max_age]:
                del _fresh_rooms[k]
        _fresh_rooms[key] = (now, room)
    return room


def my_drawings(store: RoomStore, code: str) -> list[Drawing]:
    """This student's drawings in this class: read from the store when the page opens (or the student
    comes back to it on another server process), then kept up to date by :func:`remember_my_drawing`,
    not read on every stroke: nobody else adds to them, and a query in a stroke's rerun is a wait for the
    database and for the GIL while the class is drawing."""
    key = (code, student_id())
    mine = st.session_state.get(_MINE)
    if mine is None or mine[0] != key:
        mine = (key, store.student_drawings(code, key[1]))
        st.session_state[_MINE] = mine
    return mine[1]


def remember_my_drawing(code: str, drawing: Drawing) -> None:
    """A drawing this student just sent, added to their own list as the store has it (once: a send pressed
    again returns the drawing already stored)."""
    mine = st.session_state.get(_MINE)
    if mine is not None and mine[0] == (code, student_id()) and all(d.id != drawing.id for d in mine[1]):
        st.session_state[_MINE] = (mine[0], [*mine[1], drawing])


def student_id() -> str:
    """This browser tab's student: a random id (no account, no name needed); it says which drawings are
    "mine" and nothing else.  Kept in the link (?me=...) as well as the session: when the student's server
    process dies and the page reconnects to another one, the new session reads it back, so the student's
    own drawings stay theirs and a Send pressed again (after one committed but not acknowledged) keeps its
    send id and is stored once."""
    if _STUDENT not in st.session_state:
        given = str(st.query_params.get(STUDENT_PARAM, ""))
        st.session_state[_STUDENT] = given if _STUDENT_ID.fullmatch(given) else secrets.token_hex(8)
    if st.query_params.get(STUDENT_PARAM) != st.session_state[_STUDENT]:
        st.query_params[STUDENT_PARAM] = st.session_state[_STUDENT]
    return st.session_state[_STUDENT]


def send_id(student: str, pixels: np.ndarray, label: int | None) -> str:
    """The id of one send of one drawing: the same drawing sent again (a double tap, a retry after a
    dropped connection) has the same id, so the store keeps it once."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{student}|{label}|".encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ links and the QR code


def app_origin() -> str:
    """scheme://host[:port] of this app as the browser reached it (the links must work from the
    students' phones); http://localhost:8501 when there is no browser (tests)."""
    url = getattr(st.context, "url", None) or ""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return "http://localhost:8501"


def join_link(code: str) -> str:
    return f"{app_origin()}/{CLASS_PAGE}?{ROOM_PARAM}={urllib.parse.quote(code)}"


def teacher_link(token: str) -> str:
    return f"{app_origin()}/{CLASS_PAGE}?{TEACHER_PARAM}={urllib.parse.quote(token)}"


@lru_cache(maxsize=64)
def qr_html(url: str, side: int = 440) -> str:
    """The QR code of `url` as an inline SVG picture up to `side` CSS px wide (readable from the back of
    a room when projected), with the link as its alt text."""
    import segno

    uri = segno.make(url, error="m", micro=False).svg_data_uri(scale=10, border=2)
    return (
        f'<img class="join-qr" src="{uri}" alt="QR code of {html.escape(url)}" '
        f'style="display:block;width:min(100%,{side}px);height:auto;image-rendering:pixelated;'
        f'background:#fff">'
    )


def code_html(code: str, link: str) -> str:
    """The room code, huge (the class reads it from the projector), and the join link under it."""
    return (
        '<div class="room-code" style="font-size:clamp(3rem,9vw,7rem);font-weight:800;letter-spacing:0.08em;'
        f'font-family:ui-monospace,monospace;line-height:1.05">{html.escape(code)}</div>'
        f'<p class="join-link" style="font-size:1.3rem;margin:0.5rem 0">Join: <b>{html.escape(link)}</b></p>'
    )


# ------------------------------------------------------------------------------ the wall


@dataclass
class Wall:
    """What one wall (one teacher's browser tab) has read from the store so far."""

    code: str
    drawings: list[Drawing] = field(default_factory=list)  # every drawing the wall shows, oldest first
    last_id: int = 0
    read_all_at: float = 0.0
    pictures: dict[int, str] = field(default_factory=dict)  # drawing id -> inline PNG


def read_wall(store: RoomStore, code: str, wall: Wall | None = None, now: float | None = None) -> Wall:
    """The wall's drawings, reading only those newer than the last one seen.

    Everything is reread when the wall's count in the store differs from what was read (a drawing was
    hidden, approved or shown again), and every WALL_FULL_RELOAD_S seconds in any case.
    """
    now = time.monotonic() if now is None else now
    if wall is not None and wall.code == code and now - wall.read_all_at < WALL_FULL_RELOAD_S:
        new = store.drawings(code, wall=True, after_id=wall.last_id)
        if store.count(code, wall=True) == len(wall.drawings) + len(new):
            wall.drawings.extend(new)
            wall.last_id = max([wall.last_id] + [d.id for d in new])
            return wall
    drawings = store.drawings(code, wall=True)
    pictures = wall.pictures if wall is not None and wall.code == code else {}
    keep = {d.id for d in drawings}
    pictures = {i: uri for i, uri in pictures.items() if i in keep}
    return Wall(code, list(drawings), max([0] + [d.id for d in drawings]), now, pictures)


def drawing_caption(d: Drawing) -> str:
    """'#12 Ana → 7' (with what the student meant when it is not what kNN read)."""
    who = f" {d.nickname}" if d.nickname else ""
    meant = f" (meant {d.label})" if d.label is not None and d.label != d.predicted else ""
    answer = "?" if d.predicted is None else d.predicted
    return f"#{d.id}{who} → {answer}{meant}"


def _frame(d: Drawing, coloured: bool) -> tuple:
    if not coloured or d.label is None:
        return GREY
    return GREEN if d.predicted == d.label else RED


def drawings_html(
    drawings: Sequence[Drawing],
    *,
    coloured: bool = False,
    scale: int = WALL_SCALE,
    pictures: dict[int, str] | None = None,
    css_class: str = "room-wall",
) -> str:
    """Drawings as one wrapping grid: each picture with its id, nickname and kNN's answer, framed green
    (read as the digit it was drawn for) or red when `coloured`. pictures: a cache of inline PNGs."""
    pictures = {} if pictures is None else pictures
    side = 28 * scale
    tiles = []
    for d in drawings:
        uri = pictures.get(d.id)
        if uri is None:
            uri = pictures[d.id] = png_data_uri(d.pixels)
        r, g, b = _frame(d, coloured)
        caption = drawing_caption(d)
        answer = "?" if d.predicted is None else d.predicted
        big = f'<b style="font-size:{1.6 if scale >= 4 else 1.0}em">{answer}</b>'
        text = html.escape(caption).replace(f"→ {answer}", f"→ {big}", 1)
        tiles.append(
            f'<figure class="room-drawing" data-id="{d.id}" data-answer="{answer}" style="margin:0;'
            f'width:{side + 8}px">'
            f'<img src="{uri}" alt="{html.escape(caption)}" width="{side}" height="{side}" '
            f'style="display:block;width:{side}px;height:{side}px;image-rendering:pixelated;'
            f'border:4px solid rgb({r},{g},{b})">'
            f'<figcaption style="font-size:0.85rem;line-height:1.2;text-align:center;margin-top:2px;'
            f'overflow-wrap:anywhere">{text}</figcaption></figure>'
        )
    return (
        f'<div class="{css_class}" style="display:flex;flex-wrap:wrap;gap:10px 8px;align-items:flex-start">'
        + "".join(tiles)
        + "</div>"
    )


def wall_html(wall: Wall, prompt: int | None) -> str:
    """The latest WALL_SHOWN drawings of the wall, newest first, coloured when there is a prompt."""
    latest = wall.drawings[-WALL_SHOWN:][::-1]
    if not latest:
        return (
            '<div class="room-wall"><p style="opacity:0.7">No drawings yet: they appear here as they arrive.</p></div>'
        )
    return drawings_html(latest, coloured=prompt is not None, pictures=wall.pictures)


def tally_html(answers: Sequence[int], prompt: int | None = None) -> str:
    """How many drawings kNN read as each digit, as bars (the prompt's digit in green)."""
    counts = np.bincount(np.asarray(list(answers), dtype=int), minlength=10)[:10] if len(answers) else np.zeros(10, int)
    top = max(1, int(counts.max()))
    rows = []
    for digit, n in enumerate(counts.tolist()):
        colour = "#2E7D32" if digit == prompt else "#4E79A7"
        rows.append(
            f'<div class="tally-row" title="{digit}: {n} drawing{"s" if n != 1 else ""}" '
            f'style="display:flex;align-items:center;gap:6px;height:1.45rem">'
            f'<b style="width:1.2em;text-align:right">{digit}</b>'
            f'<div style="flex:1;background:rgba(128,128,128,0.12);height:1.1rem">'
            f'<div style="width:{100 * n / top:.1f}%;height:100%;background:{colour}"></div></div>'
            f'<span style="width:2.5em">{n}</span></div>'
        )
    head = "kNN's answers"
    if prompt is not None:
        head += f" (green: {prompt}, the digit asked for)"
    return (
        f'<div class="room-tally"><p style="margin:0 0 4px 0;font-weight:600">{html.escape(head)}</p>'
        + "".join(rows)
        + "</div>"
    )


def labelled(drawings: Sequence[Drawing]) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels (n,)) of the drawings that have a label: the class's test set."""
    rows = [d for d in drawings if d.label is not None]
    if not rows:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack([d.pixels for d in rows]), np.array([d.label for d in rows], np.int64)
