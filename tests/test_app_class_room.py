"""The Class page (pages/class_room.py) under AppTest: a teacher starts a class, students send drawings,
the wall shows them, moderation, review first, bad links, export and delete.

Each test has its own SQLite database in a temporary folder ($KNN_LAB_DATA_DIR); the page's store
(ui.room_store) is one per database URL, so tests never see each other's rooms.  Students' drawings
come in as pictures (the canvas exists only in a browser).
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from helpers import on_canvas
from room_fixtures import postgres  # noqa: F401
from streamlit.testing.v1 import AppTest

import ui
from knn_core.room import RoomError

TIMEOUT = 60


def class_script(image=None):
    from pages.class_room import class_room_page

    class_room_page(image=image)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty class-room database of this test's own; the store the page uses."""
    monkeypatch.delenv("KNN_LAB_DATABASE_URL", raising=False)
    monkeypatch.setenv("KNN_LAB_DATA_DIR", str(tmp_path / "data"))
    return ui.room_store()


def page(params: dict | None = None, image=None) -> AppTest:
    at = AppTest.from_function(class_script, default_timeout=TIMEOUT, kwargs={"image": image})
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def param(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[-1] if isinstance(value, list) else value


def wall(at: AppTest) -> list[tuple[int, str]]:
    """(drawing id, kNN's answer) of each drawing on the wall, as shown (newest first)."""
    bodies = [e.proto.body for e in at.get("html") if 'class="room-wall"' in e.proto.body]
    assert len(bodies) == 1, f"{len(bodies)} walls on the page"
    return [(int(i), a) for i, a in re.findall(r'data-id="(\d+)" data-answer="([^"]*)"', bodies[0])]


def metric(at: AppTest, label: str) -> str:
    return {m.label: m.value for m in at.metric}[label]


@pytest.fixture(scope="module")
def digits(mnist):
    """Test digits as drawings on the canvas: {digit: (28x28 original, 280x280 RGBA canvas)}, the first
    test digit of each class."""
    out = {}
    for i in range(200):
        d = int(mnist.test_labels[i])
        if d not in out:
            out[d] = (mnist.test_images[i], on_canvas(mnist.test_images[i]))
    return out


def send(store, code, digit, label, student="s1", send_id=None, predicted=None):
    return store.send(
        code,
        digit,
        label=label,
        predicted=label if predicted is None else predicted,
        student=student,
        send_id=send_id or f"{student}-{label}-{np.random.randint(1 << 30)}",
    )


# ------------------------------------------------------------------------------ start and join


def test_start_a_class_shows_the_code_link_qr_and_the_teacher_link(store):
    at = ok(page())
    assert [b.label for b in at.button][0] == "Start a class"
    at = ok(at.button(key="room_start").click().run())
    token = param(at, "teacher")
    room = store.teacher_room(token)  # a real room, and the link's token is its teacher token
    shown = " ".join(e.proto.body for e in at.get("html"))
    assert f">{room.code}</div>" in shown  # the code, huge
    assert 'class="join-qr"' in shown and f"QR code of {ui.join_link(room.code)}" in shown
    assert f"Join: <b>{ui.join_link(room.code)}</b>" in shown  # the join link, written out
    assert ui.join_link(room.code).endswith(f"/class_room?room={room.code}")
    assert [c.value for c in at.code] == [ui.teacher_link(token)]  # the private link, to keep
    assert "Keep your teacher link" in at.success[0].value
    assert metric(at, "Drawings") == "0" and wall(at) == []


def test_a_student_joins_by_code_sends_and_sees_it_arrive(store, digits):
    room = store.create_room()
    store.set_prompt(room.teacher_token, 7)
    original, drawing = digits[7]
    student = ok(page({"room": room.code.lower().replace("-", " ")}, image=drawing))  # as typed by ear
    assert metric(student, "Prediction") == "7"
    assert "Draw a **7**" in " ".join(m.value for m in student.markdown)
    assert not student.get("button_group")  # with a prompt the label is the prompt's digit: no choice
    assert not student.success  # nothing said before anything was sent
    student = ok(student.button(key="room_send").click().run())
    [d] = store.drawings(room.code)
    assert [s.value for s in student.success] == [f"Sent ✓ (#{d.id})"]
    assert (d.label, d.predicted, d.nickname) == (7, 7, None)
    assert np.array_equal(d.pixels, ui.drawing_to_mnist(drawing))
    # the same drawing again (a double tap, a retry): the button is spent and the store keeps one row
    student = ok(student.run())
    assert student.button(key="room_send").disabled
    assert [s.value for s in student.success] == [f"Sent ✓ (#{d.id})"]
    assert store.count(room.code) == 1
    # a retry after the acknowledgement was lost (the page forgot it): the same row, not a second one
    student.session_state["room_sent"] = {}
    student = ok(student.run())
    assert not student.success
    student = ok(student.button(key="room_send").click().run())
    assert [s.value for s in student.success] == [f"Sent ✓ (#{d.id})"] and store.count(room.code) == 1
    assert re.findall(
        r'data-id="(\d+)"', " ".join(e.proto.body for e in student.get("html") if "my-drawings" in e.proto.body)
    ) == [str(d.id)]


def test_a_send_while_postgres_restarts_says_so_and_the_same_button_works_after(postgres, digits, monkeypatch):  # noqa: F811
    """#20's fault: the class room on PostgreSQL, the database restarted while a student sends."""
    url = postgres.create_database()
    monkeypatch.setenv("KNN_LAB_DATABASE_URL", url)
    try:
        store = ui.room_store()
        room = store.create_room()
        store.set_prompt(room.teacher_token, 3)
        student = ok(page({"room": room.code}, image=digits[3][1]))
        postgres.stop()
        try:
            student = ok(student.button(key="room_send").click().run())
            said = " ".join(e.value for e in student.error)
            assert "cannot be reached right now" in said and "try again" in said, said
            assert not student.success
        finally:
            postgres.start()
        student = ok(student.button(key="room_send").click().run())  # the same drawing, pressed again
        [d] = store.drawings(room.code)
        assert [s.value for s in student.success] == [f"Sent ✓ (#{d.id})"]
        assert d.label == 3 and store.count(room.code) == 1
    finally:
        postgres.drop_database(url)


def test_after_a_reconnect_the_student_is_the_same_and_a_send_pressed_again_is_stored_once(store, digits):
    """A dead server process: the page reconnects to another one, a new session with the same link (?me=...)."""
    room = store.create_room()
    store.set_prompt(room.teacher_token, 3)
    _, drawing = digits[3]
    first = ok(page({"room": room.code}, image=drawing))
    me = param(first, "me")
    assert re.fullmatch(r"[0-9a-f]{16}", me)  # the student's id went into the link
    first = ok(first.button(key="room_send").click().run())
    [d] = store.drawings(room.code)
    assert d.student == me
    # the new session (another process) with the same link: the same student, its drawing still "mine"
    again = ok(page({"room": room.code, "me": me}, image=drawing))
    assert param(again, "me") == me
    assert re.findall(
        r'data-id="(\d+)"', " ".join(e.proto.body for e in again.get("html") if "my-drawings" in e.proto.body)
    ) == [str(d.id)]
    again = ok(again.button(key="room_send").click().run())  # pressed again: the same send, one row
    assert [s.value for s in again.success] == [f"Sent ✓ (#{d.id})"] and store.count(room.code) == 1
    # a forged id is not taken: a fresh one is made
    forged = ok(page({"room": room.code, "me": "<script>"}, image=drawing))
    assert param(forged, "me") != "<script>" and re.fullmatch(r"[0-9a-f]{16}", param(forged, "me"))


def test_without_a_prompt_the_student_says_which_digit_and_a_nickname_goes_along(store, digits):
    room = store.create_room()
    student = ok(page({"room": room.code}, image=digits[3][1]))
    student = ok(student.button(key="room_send").click().run())
    assert "Pick the digit you meant" in student.warning[0].value
    assert store.count(room.code) == 0  # nothing sent without a label
    student.button_group(key="room_meant").set_value(3)
    student.text_input(key="room_nickname").input("  Ana  ")
    student = ok(student.button(key="room_send").click().run())
    [d] = store.drawings(room.code)
    assert (d.label, d.nickname) == (3, "Ana")
    assert student.success[0].value == f"Sent ✓ (#{d.id})"


def test_an_unknown_code_says_so_and_offers_the_code_box(store):
    room = store.create_room()
    at = ok(page({"room": "ZZZ-ZZZ"}))
    assert len(at.error) == 1 and "ZZZ" in at.error[0].value
    assert not at.metric and not at.get("bidi_component")
    at.text_input(key="room_code_typed").input(room.code)
    at = ok(at.button[0].click().run())  # the form's "Join the class"
    assert param(at, "room") == room.code
    assert not at.error and at.subheader[0].value == f"Class {room.code}"


@pytest.mark.parametrize("token", ["forged-token-that-is-not-real", "", "x" * 500, "' OR 1=1 --"])
def test_a_forged_teacher_link_gets_an_error_and_nothing_else(store, token):
    room = store.create_room()
    send(store, room.code, np.eye(28, dtype=np.uint8) * 255, 1)
    at = ok(page({"teacher": token}))
    assert len(at.error) == 1 and "teacher link" in at.error[0].value.lower()
    assert not at.metric and not at.button and not at.get("download_button") and not at.get("html")
    assert store.count(room.code) == 1  # and nothing changed


# ------------------------------------------------------------------------------ the wall and moderation


def test_the_wall_shows_every_drawing_with_its_answer_green_or_red_against_the_prompt(store, digits):
    room = store.create_room()
    store.set_prompt(room.teacher_token, 4)
    right = send(store, room.code, digits[4][0], 4, predicted=4)
    wrong = send(store, room.code, digits[9][0], 4, student="s2", predicted=9)
    at = ok(page({"teacher": room.teacher_token}))
    assert metric(at, "Drawings") == "2"
    assert wall(at) == [(wrong.id, "9"), (right.id, "4")]  # newest first
    body = next(e.proto.body for e in at.get("html") if 'class="room-wall"' in e.proto.body)
    frames = dict(re.findall(r'data-id="(\d+)".*?border:4px solid (rgb\([^)]*\))', body))
    assert frames[str(right.id)] == "rgb({}, {}, {})".format(*ui.GREEN).replace(" ", "")
    assert frames[str(wrong.id)] == "rgb({}, {}, {})".format(*ui.RED).replace(" ", "")
    tally = next(e.proto.body for e in at.get("html") if 'class="room-tally"' in e.proto.body)
    assert 'title="4: 1 drawing"' in tally and 'title="9: 1 drawing"' in tally and 'title="0: 0 drawings"' in tally


def test_the_wall_reads_only_new_drawings_and_notices_moderation(store, digits):
    room = store.create_room()
    first = send(store, room.code, digits[1][0], 1)
    w = ui.read_wall(store, room.code, None, now=0.0)
    assert [d.id for d in w.drawings] == [first.id] and w.last_id == first.id
    second = send(store, room.code, digits[2][0], 2)
    w2 = ui.read_wall(store, room.code, w, now=1.0)
    assert w2 is w and [d.id for d in w.drawings] == [first.id, second.id]  # appended, not reread
    store.hide(room.teacher_token, first.id)
    w3 = ui.read_wall(store, room.code, w2, now=2.0)
    assert [d.id for d in w3.drawings] == [second.id]  # the count changed: reread


def test_the_teacher_hides_a_drawing_and_it_leaves_the_wall(store, digits):
    room = store.create_room()
    a = send(store, room.code, digits[1][0], 1)
    b = send(store, room.code, digits[2][0], 2, student="s2")
    at = ok(page({"teacher": room.teacher_token}))
    assert [i for i, _ in wall(at)] == [b.id, a.id]
    at.selectbox(key="room_pick").set_value(a.id)
    at = ok(at.run())
    assert metric(at, "Prediction") == "1"  # the picked drawing's neighbour vote, big
    assert at.slider(key="room_k").value == 5
    at = ok(at.button(key="room_hide").click().run())
    assert [i for i, _ in wall(at)] == [b.id] and metric(at, "Drawings") == "1"
    assert store.drawings(room.code, wall=False)[0].hidden
    at = ok(at.button(key="room_unhide").click().run())
    assert [i for i, _ in wall(at)] == [b.id, a.id]


def test_review_first_keeps_drawings_off_the_wall_until_approved(store, digits):
    room = store.create_room()
    at = ok(page({"teacher": room.teacher_token}))
    at = ok(at.toggle(key="room_review").set_value(True).run())
    assert store.teacher_room(room.teacher_token).review_first
    d = send(store, room.code, digits[5][0], 5)
    at = ok(at.run())
    assert wall(at) == [] and metric(at, "Drawings") == "0"
    assert "Waiting for your review: 1" in " ".join(m.value for m in at.markdown)
    at = ok(at.button(key="room_approve_all").click().run())
    assert wall(at) == [(d.id, "5")]


def test_the_prompt_selector_sets_the_rooms_prompt(store):
    room = store.create_room()
    at = ok(page({"teacher": room.teacher_token}))
    at = ok(at.selectbox(key="room_prompt").set_value(8).run())
    assert store.room(room.code).prompt == 8
    assert any(s.value == "Everyone draw a 8" for s in at.subheader)
    at = ok(at.selectbox(key="room_prompt").set_value(None).run())
    assert store.room(room.code).prompt is None



def test_a_new_prompt_reaches_students_within_a_second_and_their_strokes_share_one_read(store, monkeypatch):
    """Students reread the class (its prompt) at most every ROOM_FRESH_S s, all sessions of the process together."""
    room = store.create_room()
    store.set_prompt(room.teacher_token, 7)
    reads = []
    real_room = store.room
    monkeypatch.setattr(store, "room", lambda code, **kw: reads.append(code) or real_room(code, **kw))
    clock = [1000.0]
    monkeypatch.setattr(ui.room.time, "monotonic", lambda: clock[0])
    assert ui.fresh_room(store, room.code).prompt == 7
    store.set_prompt(room.teacher_token, 4)
    clock[0] += ui.room.ROOM_FRESH_S / 2
    assert ui.fresh_room(store, room.code).prompt == 7 and len(reads) == 1  # one read for every stroke meanwhile
    clock[0] += ui.room.ROOM_FRESH_S / 2
    assert ui.fresh_room(store, room.code).prompt == 4 and len(reads) == 2
    store.delete_room(room.teacher_token)
    clock[0] += ui.room.ROOM_FRESH_S
    with pytest.raises(RoomError):
        ui.fresh_room(store, room.code)
    with pytest.raises(RoomError):  # a missing class is not kept: it raises every time
        ui.fresh_room(store, room.code)


# ------------------------------------------------------------------------------ the class's test set, export, delete


def test_the_class_test_set_scores_the_labelled_drawings(store, digits, full_classifier):
    from knn_core.evaluate import report

    room = store.create_room()
    sent = [send(store, room.code, digits[c][0], c, student=f"s{c}") for c in range(10)]
    sent.append(send(store, room.code, digits[3][0], 8, student="liar"))  # labelled 8, a 3
    send(store, room.code, digits[0][0], None, student="nolabel", predicted=0)  # no label: not scored
    at = ok(page({"teacher": room.teacher_token}))
    X = np.stack([d.pixels for d in sent])
    y = np.array([d.label for d in sent])
    predicted = full_classifier.predict(X)  # the page's default: k=5, euclidean, all 60,000 training digits
    expected = float(np.mean(predicted == y))
    assert expected < 1  # the 3 labelled 8 is read as a 3
    assert metric(at, f"Accuracy on the class's {len(sent)} labelled drawings") == f"{expected:.1%}"
    confusion = at.dataframe[0].value  # the confusion matrix (the first table)
    assert np.array_equal(confusion.to_numpy(), report(y, predicted, labels=np.arange(10)).confusion)
    assert confusion.loc["drew 8"].sum() == 2


def test_export_round_trips_through_load_mnist(store, digits, served_files, tmp_path):
    from knn_core import load_mnist

    room = store.create_room()
    sent = [send(store, room.code, digits[c][0], c, student=f"s{c}") for c in (0, 4, 7)]
    hidden = send(store, room.code, digits[1][0], 1, student="h")
    store.hide(room.teacher_token, hidden.id)
    at = ok(page({"teacher": room.teacher_token}))
    buttons = {b.proto.id.rsplit("-", 1)[-1]: b for b in at.get("download_button")}
    idx = served_files(buttons["room_export_idx"].proto.url)
    with zipfile.ZipFile(io.BytesIO(idx)) as zf:
        zf.extractall(tmp_path / "idx")
    ds = load_mnist(tmp_path / "idx", train_from="bundled")  # the class's set as the test split
    assert ds.test_labels.tolist() == [0, 4, 7]  # the hidden drawing left out
    assert np.array_equal(ds.test_images, np.stack([d.pixels for d in sent]))
    png = served_files(buttons["room_export_png"].proto.url)
    with zipfile.ZipFile(io.BytesIO(png)) as zf:
        assert sorted(zf.namelist()) == sorted(f"testing/{d.label}/{d.id}.png" for d in sent)
        zf.extractall(tmp_path / "png")
    ds = load_mnist(tmp_path / "png", train_from="bundled")
    assert sorted(ds.test_labels.tolist()) == [0, 4, 7]
    assert sorted(im.tobytes() for im in ds.test_images) == sorted(d.pixels.tobytes() for d in sent)


def test_delete_needs_a_confirmation_and_removes_everything(store, digits):
    from knn_core.room import NotTeacher, RoomNotFound

    room = store.create_room()
    send(store, room.code, digits[2][0], 2)
    at = ok(page({"teacher": room.teacher_token}))
    assert at.button(key="room_delete").disabled
    at = ok(at.checkbox(key="room_delete_sure").check().run())
    at = ok(at.button(key="room_delete").click().run())
    assert param(at, "teacher") is None
    assert f"Class {room.code} and all its drawings are deleted" in at.success[0].value
    with pytest.raises(RoomNotFound):
        store.room(room.code)
    with pytest.raises(NotTeacher):
        store.teacher_room(room.teacher_token)
