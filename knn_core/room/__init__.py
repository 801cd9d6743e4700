"""The class room: students send drawings to a room, the teacher's wall shows them (no Streamlit here).

>>> store = open_store()                       # $KNN_LAB_DATABASE_URL, else a SQLite file
>>> room = store.create_room()                 # room.code "K7M-4QX", room.teacher_token (secret)
>>> store.send(room.code, pixels, label=4, predicted=4, student=session_id, send_id=uuid)
>>> store.drawings(room.code)                  # what the wall shows, oldest first

Where things are: store.py (RoomStore: rooms, sends, moderation, retention), schema.py (the tables),
migrations.py (numbered schema steps), engine.py (SQLite/PostgreSQL connection set-up), codes.py
(room codes, teacher tokens), config.py (environment), export.py (IDX and PNG zips), errors.py.
"""

from . import export
from .config import database_url, retention
from .errors import BadDrawing, NotTeacher, RoomError, RoomExpired, RoomNotFound, StoreUnavailable
from .store import Drawing, Room, RoomStore, open_store

__all__ = [
    "BadDrawing",
    "Drawing",
    "NotTeacher",
    "Room",
    "RoomError",
    "RoomExpired",
    "RoomNotFound",
    "RoomStore",
    "StoreUnavailable",
    "database_url",
    "export",
    "open_store",
    "retention",
]
