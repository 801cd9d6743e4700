"""Where the class room's data lives and for how long, from the environment.

KNN_LAB_DATABASE_URL   a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: a SQLite file)
KNN_LAB_DATA_DIR       the folder of that SQLite file (default ~/.local/share/knn-digit-lab)
KNN_LAB_RETENTION_DAYS how long a class and its drawings are kept (default 7)
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from ..errors import ParameterError

DATABASE_URL_ENV = "KNN_LAB_DATABASE_URL"
DATA_DIR_ENV = "KNN_LAB_DATA_DIR"
RETENTION_ENV = "KNN_LAB_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 7
SQLITE_NAME = "classroom.sqlite3"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".local" / "share" / "knn-digit-lab").expanduser()


def database_url() -> str:
    """The store's URL: $KNN_LAB_DATABASE_URL, else the SQLite file in the data folder."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return url or f"sqlite:///{data_dir() / SQLITE_NAME}"


def retention() -> timedelta:
    """$KNN_LAB_RETENTION_DAYS (a positive number of days, fractions allowed), default 7."""
    text = os.environ.get(RETENTION_ENV, "").strip()
    if not text:
        return timedelta(days=DEFAULT_RETENTION_DAYS)
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not 0 < days <= 3650:
        raise ParameterError(f"{RETENTION_ENV}={text!r}: expected a number of days between 0 and 3650, e.g. 7")
    return timedelta(days=days)
