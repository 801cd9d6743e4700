"""Fixtures for the class room's store: `database_url` runs a test on SQLite and on PostgreSQL.

One throwaway PostgreSQL cluster per test session (scripts/postgres.sh, in a temp folder), and a
fresh database in it per test; a fresh SQLite file per test. Without PostgreSQL's binaries the
PostgreSQL runs are skipped with the reason, or fail when KNN_REQUIRE_POSTGRES=1 (as in CI).
Import what a test module uses: ``from room_fixtures import database_url, postgres  # noqa: F401``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SH = ROOT / "scripts" / "postgres.sh"
_database_numbers = itertools.count(1)


class Postgres:
    """A running throwaway cluster: admin URL, fresh databases, stop/start (for restart tests)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.url = self._script("start", str(folder)).strip().splitlines()[-1]

    def _script(self, *args: str) -> str:
        done = subprocess.run(["bash", str(POSTGRES_SH), *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"scripts/postgres.sh {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self) -> str:
        import psycopg

        name = f"room_test_{os.getpid()}_{next(_database_numbers)}"
        with psycopg.connect(self.url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        self._script("stop", str(self.folder))

    def start(self) -> None:
        self._script("start", str(self.folder))


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL cluster (skipped, or failed under KNN_REQUIRE_POSTGRES=1, when not installed)."""
    check = subprocess.run(["bash", str(POSTGRES_SH), "check"], capture_output=True, text=True)
    if check.returncode:
        reason = check.stderr.strip() or "PostgreSQL is not installed"
        if os.environ.get("KNN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"KNN_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="knn-room-postgres-"))  # under /tmp: reachable by the cluster's user
    server = Postgres(folder)
    yield server
    try:
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database for one test: a SQLite file, or a new database on the session's cluster."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'classroom.sqlite3'}"
        return
    server = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url)
