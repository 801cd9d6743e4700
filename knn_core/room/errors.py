"""What the class room's store raises: each a `KnnLabError` with a message a student or teacher can act on.

The pages catch `RoomError` and show its message; nothing from SQLAlchemy or the database driver
leaves the store (a database that cannot be reached becomes `StoreUnavailable`).
"""

from ..errors import KnnLabError


class RoomError(KnnLabError):
    """Something about a class room went wrong; the message says what to do."""


class RoomNotFound(RoomError):
    """No class has this code (mistyped, or deleted by its teacher)."""


class RoomExpired(RoomError):
    """The class is past its retention period: its drawings are (being) deleted."""


class NotTeacher(RoomError):
    """The teacher link is forged, unknown, expired, or its class was deleted."""


class BadDrawing(RoomError):
    """A send holds something that is not a digit drawing (shape, type, empty canvas, label, nickname)."""


class StoreUnavailable(RoomError):
    """The database cannot be reached or stays busy; nothing was written, the caller may try again."""
