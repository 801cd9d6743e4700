"""The class room's store on SQLite and on PostgreSQL: rooms, sends, moderation, retention, migrations, export."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa
from room_fixtures import database_url, postgres  # noqa: F401

from knn_core import DataError, ParameterError, load_mnist
from knn_core.room import (
    BadDrawing,
    NotTeacher,
    RoomError,
    RoomExpired,
    RoomNotFound,
    StoreUnavailable,
    export,
    open_store,
)
from knn_core.room import config as room_config
from knn_core.room.migrations import LATEST, migrate, schema_version
from knn_core.room.schema import metadata

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def digit(seed: int) -> np.ndarray:
    """A 28x28 uint8 'drawing' that differs per seed (never all zero)."""
    a = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    a[14, 14] = 255
    return a


@pytest.fixture
def store(database_url):  # noqa: F811
    with open_store(database_url) as s:
        yield s


def rows(store, table: str) -> int:
    with store._engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar())


# ------------------------------------------------------------------------------ rooms and codes


def test_a_new_room_has_a_readable_code_and_a_secret_teacher_token(store):
    room = store.create_room(now=T0)
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{3}", room.code)
    assert not set(room.code) & set("01OIL")
    assert len(room.teacher_token) >= 32
    assert room.created_at == T0 and room.expires_at == T0 + timedelta(days=7)
    assert room.prompt is None and room.review_first is False
    # the database keeps only the token's hash
    with store._engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM rooms").scalar()
    assert stored != room.teacher_token and room.teacher_token not in stored


def test_codes_are_case_space_and_dash_insensitive_and_students_never_see_the_token(store):
    room = store.create_room()
    for typed in (room.code, room.code.lower(), room.code.replace("-", ""), f"  {room.code[:3]} {room.code[4:]} "):
        found = store.room(typed)
        assert found.code == room.code and found.teacher_token is None


def test_an_unknown_code_says_to_check_the_projector(store):
    store.create_room()
    for code in ["", "K7M", "ZZZ-ZZZ", "K0M-4QX", "x" * 500, None, 42]:
        with pytest.raises(RoomNotFound, match="No class with code .*check the code on the projector"):
            store.room(code)


def test_a_forged_teacher_link_is_refused_with_a_clear_message(store):
    room = store.create_room()
    for token in ["", "forged-token-forged-token-forged", room.teacher_token[:-1], "x" * 1000, None, 7]:
        with pytest.raises(NotTeacher, match="This teacher link is not valid"):
            store.teacher_room(token)
        with pytest.raises(NotTeacher):
            store.set_prompt(token, 4)
        with pytest.raises(NotTeacher):
            store.delete_room(token)
    assert store.room(room.code).prompt is None and rows(store, "rooms") == 1


def test_the_teacher_link_brings_back_the_room_and_its_controls(store):
    room = store.create_room()
    again = store.teacher_room(room.teacher_token)
    assert again.code == room.code and again.teacher_token == room.teacher_token
    assert store.set_prompt(room.teacher_token, 4).prompt == 4
    assert store.room(room.code).prompt == 4
    assert store.set_prompt(room.teacher_token, None).prompt is None
    with pytest.raises(BadDrawing, match="The prompt must be a digit 0-9"):
        store.set_prompt(room.teacher_token, 10)
    assert store.set_review_first(room.teacher_token, True).review_first is True
    assert store.room(room.code).review_first is True


# ------------------------------------------------------------------------------ sends


def test_a_send_is_stored_exactly_and_read_back(store):
    room = store.create_room()
    pixels = digit(1)
    sent = store.send(room.code, pixels, label=4, predicted=7, nickname="  Ana ", student="browser-1", send_id="s1")
    [back] = store.drawings(room.code)
    assert back.id == sent.id and back.send_id == "s1"
    assert back.pixels.shape == (28, 28) and back.pixels.dtype == np.uint8
    np.testing.assert_array_equal(back.pixels, pixels)
    assert (back.label, back.predicted, back.nickname, back.student) == (4, 7, "Ana", "browser-1")
    assert back.room == room.code and back.hidden is False and back.approved is True
    assert store.count(room.code) == 1


def test_a_retried_send_returns_the_same_drawing_and_adds_no_row(store):
    room = store.create_room()
    first = store.send(room.code, digit(1), label=3, send_id="same")
    again = store.send(room.code, digit(2), label=5, send_id="same")
    assert again.id == first.id and again.label == 3
    np.testing.assert_array_equal(again.pixels, digit(1))
    assert rows(store, "drawings") == 1
    other = store.create_room()  # the same send_id in another room is another drawing
    assert store.send(other.code, digit(3), send_id="same").id != first.id


GARBAGE = [  # (pixels, send's keyword arguments, the message it gets)
    (np.zeros((28, 28), np.uint8), {}, "The drawing is empty"),
    (np.ones((28, 27), np.uint8), {}, r"must be 28x28 pixels, got shape \(28, 27\)"),
    (np.ones((280, 280, 4), np.uint8), {}, "must be 28x28 pixels"),
    (np.ones((28, 28), np.float32), {}, "must be uint8"),
    (np.ones((28, 28), np.int64), {}, "must be uint8"),
    ([[1] * 28] * 28, {}, "must be a 28x28 array of bytes, got list"),
    (b"\x01" * 784, {}, "got bytes"),
    (None, {}, "got NoneType"),
    ("ones", {"label": 10}, "The label must be a digit 0-9"),
    ("ones", {"label": -1}, "The label must be a digit 0-9"),
    ("ones", {"label": True}, "The label must be a digit 0-9"),
    ("ones", {"label": "4"}, "The label must be a digit 0-9"),
    ("ones", {"predicted": 3.0}, "The predicted digit must be a digit 0-9"),
    ("ones", {"nickname": "x" * 31}, "at most 30 characters"),
    ("ones", {"nickname": "bad\x00name"}, "control characters"),
    ("ones", {"nickname": 5}, "A nickname must be text"),
    ("ones", {"student": "s" * 65}, "student must be printable text"),
    ("ones", {"send_id": "a\nb"}, "send_id must be printable text"),
]


def test_garbage_in_a_send_gets_a_clear_message_and_changes_nothing(store):
    room = store.create_room()
    for pixels, kwargs, message in GARBAGE:
        if isinstance(pixels, str):
            pixels = np.ones((28, 28), np.uint8)
        with pytest.raises(BadDrawing, match=message):
            store.send(room.code, pixels, **kwargs)
    assert rows(store, "drawings") == 0


def test_labels_may_be_numpy_integers_and_nicknames_may_be_empty(store):
    room = store.create_room()
    d = store.send(room.code, digit(1), label=np.uint8(9), predicted=np.int64(2), nickname="   ")
    assert (d.label, d.predicted, d.nickname) == (9, 2, None)
    assert isinstance(d.label, int)


def test_a_send_to_an_unknown_room_changes_nothing(store):
    store.create_room()
    with pytest.raises(RoomNotFound):
        store.send("ZZZ-ZZZ", digit(1), label=1)
    assert rows(store, "drawings") == 0


def test_students_see_their_own_drawings_only(store):
    room = store.create_room()
    for i, who in enumerate(["ana", "ben", "ana"]):
        store.send(room.code, digit(i), label=i, student=who)
    assert [d.label for d in store.student_drawings(room.code, "ana")] == [0, 2]
    assert [d.label for d in store.student_drawings(room.code, "ben")] == [1]
    assert store.student_drawings(room.code, "nobody") == []


def test_the_wall_reads_new_drawings_after_an_id_oldest_first(store):
    room = store.create_room()
    ids = [store.send(room.code, digit(i), label=i).id for i in range(5)]
    assert [d.id for d in store.drawings(room.code)] == ids
    assert [d.id for d in store.drawings(room.code, after_id=ids[2])] == ids[3:]
    assert [d.id for d in store.drawings(room.code, limit=2)] == ids[:2]
    other = store.create_room()
    store.send(other.code, digit(9), label=9)
    assert store.count(room.code) == 5 and store.count(other.code) == 1


# ------------------------------------------------------------------------------ moderation


def test_a_hidden_drawing_leaves_the_wall_but_not_the_moderation_list(store):
    room = store.create_room()
    a = store.send(room.code, digit(1), label=1)
    b = store.send(room.code, digit(2), label=2)
    assert store.hide(room.teacher_token, a.id).hidden is True
    assert [d.id for d in store.drawings(room.code)] == [b.id]
    assert [d.id for d in store.drawings(room.code, wall=False)] == [a.id, b.id]
    assert store.count(room.code) == 1 and store.count(room.code, wall=False) == 2
    store.hide(room.teacher_token, a.id, hidden=False)
    assert store.count(room.code) == 2


def test_review_first_shows_only_approved_drawings(store):
    room = store.create_room()
    before = store.send(room.code, digit(0), label=0)  # sent before review-first: already on the wall
    store.set_review_first(room.teacher_token, True)
    waiting = store.send(room.code, digit(1), label=1)
    assert waiting.approved is False
    assert [d.id for d in store.drawings(room.code)] == [before.id]
    store.approve(room.teacher_token, waiting.id)
    assert [d.id for d in store.drawings(room.code)] == [before.id, waiting.id]
    later = store.send(room.code, digit(2), label=2)
    store.set_review_first(room.teacher_token, False)  # review off: everything not hidden shows
    assert [d.id for d in store.drawings(room.code)] == [before.id, waiting.id, later.id]


def test_a_teacher_moderates_only_their_own_rooms_drawings(store):
    mine, theirs = store.create_room(), store.create_room()
    d = store.send(theirs.code, digit(1), label=1)
    with pytest.raises(RoomNotFound, match=f"No drawing {d.id} in the class {mine.code}"):
        store.hide(mine.teacher_token, d.id)
    with pytest.raises(RoomNotFound, match="drawing ids are whole numbers"):
        store.hide(mine.teacher_token, "1; DROP TABLE drawings")
    assert store.count(theirs.code) == 1


def test_deleting_a_room_deletes_all_its_drawings_at_once(store):
    room, other = store.create_room(), store.create_room()
    for i in range(3):
        store.send(room.code, digit(i), label=i)
    store.send(other.code, digit(7), label=7)
    assert store.delete_room(room.teacher_token) == 3
    with pytest.raises(RoomNotFound):
        store.room(room.code)
    with pytest.raises(NotTeacher):
        store.teacher_room(room.teacher_token)
    assert rows(store, "drawings") == 1 and store.count(other.code) == 1


# ------------------------------------------------------------------------------ retention


def test_purge_deletes_expired_rooms_and_their_drawings_only(store):
    old = store.create_room(now=T0)
    new = store.create_room(now=T0 + timedelta(days=3))
    store.send(old.code, digit(1), label=1, now=T0 + timedelta(hours=1))
    store.send(new.code, digit(2), label=2, now=T0 + timedelta(days=3))
    assert store.purge_expired(now=T0 + timedelta(days=6, hours=23)) == 0
    assert store.purge_expired(now=T0 + timedelta(days=7)) == 1
    assert rows(store, "rooms") == 1 and rows(store, "drawings") == 1
    with pytest.raises(RoomNotFound):
        store.room(old.code, now=T0 + timedelta(days=7))
    assert store.room(new.code, now=T0 + timedelta(days=7)).code == new.code
    assert store.purge_expired(now=T0 + timedelta(days=10)) == 1
    assert rows(store, "rooms") == 0 and rows(store, "drawings") == 0


def test_an_expired_room_says_it_has_ended_before_it_is_purged(store):
    room = store.create_room(now=T0)
    later = T0 + timedelta(days=7, seconds=1)
    with pytest.raises(RoomExpired, match=f"The class {room.code} has ended: classes are kept for 7 days"):
        store.room(room.code, now=later)
    with pytest.raises(RoomExpired):
        store.send(room.code, digit(1), label=1, now=later)
    with pytest.raises(NotTeacher, match="This teacher link has expired"):
        store.teacher_room(room.teacher_token, now=later)
    assert rows(store, "drawings") == 0


def test_retention_days_come_from_the_environment(database_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KNN_LAB_RETENTION_DAYS", "2")
    with open_store(database_url) as store:
        room = store.create_room(now=T0)
        assert room.expires_at == T0 + timedelta(days=2)
        with pytest.raises(RoomExpired, match="kept for 2 days"):
            store.room(room.code, now=T0 + timedelta(days=2))
    # shortening the retention later applies to the rooms already there
    monkeypatch.setenv("KNN_LAB_RETENTION_DAYS", "0.5")
    with open_store(database_url) as store:
        assert store.purge_expired(now=T0 + timedelta(hours=13)) == 1


@pytest.mark.parametrize("value", ["abc", "0", "-3", "100000", "nan"])
def test_a_bad_retention_setting_is_named(monkeypatch, value):
    monkeypatch.setenv("KNN_LAB_RETENTION_DAYS", value)
    with pytest.raises(ParameterError, match="KNN_LAB_RETENTION_DAYS"):
        room_config.retention()


# ------------------------------------------------------------------------------ migrations


def _columns_and_indexes(engine) -> dict:
    insp = sa.inspect(engine)
    shape = {}
    for table in ("schema_version", "rooms", "drawings"):
        columns = {c["name"]: c["nullable"] for c in insp.get_columns(table)}
        indexes = {tuple(i["column_names"]) for i in insp.get_indexes(table)}
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table)}
        shape[table] = (columns, indexes | uniques)
    return shape


def test_migrating_an_empty_database_builds_exactly_the_schema_module(database_url):  # noqa: F811
    engine = sa.create_engine(database_url)
    try:
        assert migrate(engine) == (0, LATEST)
        assert migrate(engine) == (LATEST, LATEST)  # a second start changes nothing
        migrated = _columns_and_indexes(engine)
    finally:
        engine.dispose()
    reference_url = database_url  # build schema.py's tables in a second, empty database of the same kind
    if database_url.startswith("sqlite"):
        reference_url = database_url.replace("classroom.sqlite3", "reference.sqlite3")
        reference = sa.create_engine(reference_url)
        try:
            metadata.create_all(reference)
            assert _columns_and_indexes(reference) == migrated
        finally:
            reference.dispose()
    else:
        with sa.create_engine(database_url).connect() as conn:
            assert schema_version(conn) == LATEST
            tables = {c["name"] for c in sa.inspect(conn).get_columns("drawings")}
        assert tables == set(metadata.tables["drawings"].columns.keys())


def _create_v1_by_hand(engine) -> None:
    """Schema version 1 as released: no review-first moderation, no student index."""
    md = sa.MetaData()
    sa.Table("schema_version", md, sa.Column("version", sa.Integer, nullable=False))
    sa.Table(
        "rooms",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(7), unique=True, nullable=False),
        sa.Column("token_hash", sa.String(64), unique=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.SmallInteger),
    )
    sa.Table(
        "drawings",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.Integer, sa.ForeignKey("rooms.id"), nullable=False),
        sa.Column("send_id", sa.String(64), nullable=False),
        sa.Column("pixels", sa.LargeBinary, nullable=False),
        sa.Column("label", sa.SmallInteger),
        sa.Column("predicted", sa.SmallInteger),
        sa.Column("nickname", sa.String(30)),
        sa.Column("student", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.UniqueConstraint("room_id", "send_id"),
    )
    md.create_all(engine)
    from knn_core.room.codes import token_hash

    with engine.begin() as conn:
        conn.execute(md.tables["schema_version"].insert(), {"version": 1})
        conn.execute(
            md.tables["rooms"].insert(),
            {
                "id": 1,
                "code": "ABC-DEF",
                "token_hash": token_hash("teacher-token-of-v1-room"),
                "created_at": datetime.now(timezone.utc),
                "expires_at": datetime.now(timezone.utc) + timedelta(days=7),
                "prompt": 4,
            },
        )
        conn.execute(
            md.tables["drawings"].insert(),
            [
                {
                    "room_id": 1,
                    "send_id": f"s{i}",
                    "pixels": digit(i).tobytes(),
                    "label": i,
                    "predicted": i,
                    "nickname": "Ana",
                    "student": "b1",
                    "created_at": datetime.now(timezone.utc),
                    "hidden": i == 1,
                }
                for i in range(3)
            ],
        )


def test_migrating_from_version_1_keeps_every_room_and_drawing(database_url):  # noqa: F811
    engine = sa.create_engine(database_url)
    try:
        _create_v1_by_hand(engine)
        with engine.connect() as conn:
            assert schema_version(conn) == 1
    finally:
        engine.dispose()
    with open_store(database_url) as store:  # opening the store migrates
        with store._engine.connect() as conn:
            assert schema_version(conn) == LATEST
        room = store.room("abc def")
        assert room.prompt == 4 and room.review_first is False
        every = store.drawings(room.code, wall=False)
        assert [d.label for d in every] == [0, 1, 2] and [d.hidden for d in every] == [False, True, False]
        assert all(d.approved for d in every)  # what was sent before review-first existed stays on the wall
        for d in every:
            np.testing.assert_array_equal(d.pixels, digit(d.label))
        assert [d.label for d in store.drawings(room.code)] == [0, 2]
        assert store.teacher_room("teacher-token-of-v1-room").code == "ABC-DEF"
        store.send(room.code, digit(5), label=5, send_id="s0")  # the old unique (room, send_id) still holds
        assert store.count(room.code, wall=False) == 3


def test_a_database_newer_than_the_app_is_refused(database_url):  # noqa: F811
    open_store(database_url).close()
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE schema_version SET version = {LATEST + 1}")
    engine.dispose()
    with pytest.raises(StoreUnavailable, match=f"schema version {LATEST + 1}, newer than this app"):
        open_store(database_url)


# ------------------------------------------------------------------------------ where the data lives


def test_the_sqlite_file_lives_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("KNN_LAB_DATABASE_URL", raising=False)
    monkeypatch.setenv("KNN_LAB_DATA_DIR", str(tmp_path / "data"))
    assert room_config.database_url() == f"sqlite:///{tmp_path / 'data' / 'classroom.sqlite3'}"
    with open_store() as store:
        store.create_room()
    assert (tmp_path / "data" / "classroom.sqlite3").is_file()
    with sa.create_engine(room_config.database_url()).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    monkeypatch.setenv("KNN_LAB_DATABASE_URL", "postgresql+psycopg://u@db.example/x")
    assert room_config.database_url() == "postgresql+psycopg://u@db.example/x"


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "Not a database URL"),
        ("mysql://u@h/db", "Unsupported database 'mysql'"),
        (
            "postgresql+psycopg://u:secret@127.0.0.1:1/db",
            r"cannot be reached right now \(postgresql\+psycopg://u:\*\*\*@",
        ),
    ],
)
def test_a_database_that_cannot_be_used_says_so_without_the_password(url, message):
    with pytest.raises(StoreUnavailable, match=message) as info:
        open_store(url)
    assert "secret" not in str(info.value)


# ------------------------------------------------------------------------------ export


def _unzip(data: bytes, folder):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return folder


def _labelled_room(store):
    room = store.create_room()
    sent = [store.send(room.code, digit(i), label=(i * 3) % 10, predicted=1) for i in range(12)]
    store.send(room.code, digit(99), label=None)  # no label: not exported
    store.hide(room.teacher_token, sent[0].id)  # hidden from the wall, but still the class's handwriting
    return room, sent


def test_the_idx_export_round_trips_through_load_mnist(store, tmp_path, mnist):
    room, sent = _labelled_room(store)
    data = export.idx_zip(store.drawings(room.code, wall=False))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    folder = _unzip(data, tmp_path / "idx")
    ds = load_mnist(folder, train_from="bundled")
    np.testing.assert_array_equal(ds.test_images, np.stack([d.pixels for d in sent]))
    np.testing.assert_array_equal(ds.test_labels, [d.label for d in sent])
    assert ds.train_images.shape == (60000, 28, 28) and ds.n_val == mnist.n_val
    np.testing.assert_array_equal(ds.train_labels, mnist.train_labels)
    assert "(test)" in ds.source and "bundled (train)" in ds.source
    with pytest.raises(DataError, match=r"no train images file .*load_mnist\(folder, train_from='bundled'\)"):
        load_mnist(folder)


def test_the_png_export_round_trips_through_load_mnist(store, tmp_path):
    room, sent = _labelled_room(store)
    data = export.png_zip(store.drawings(room.code, wall=False))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted(f"testing/{d.label}/{d.id}.png" for d in sent)
    folder = _unzip(data, tmp_path / "png")
    ds = load_mnist(folder, train_from="bundled")
    # the PNG tree is read in file-name order: the drawings' ids, oldest first
    np.testing.assert_array_equal(ds.test_images, np.stack([d.pixels for d in sent]))
    np.testing.assert_array_equal(ds.test_labels, [d.label for d in sent])
    with pytest.raises(DataError, match="no train/ folder .*train_from='bundled'"):
        load_mnist(folder)


def test_nothing_labelled_means_nothing_to_export(store):
    room = store.create_room()
    store.send(room.code, digit(1))
    for make in (export.idx_zip, export.png_zip):
        with pytest.raises(RoomError, match="No labelled drawings to export yet"):
            make(store.drawings(room.code))
