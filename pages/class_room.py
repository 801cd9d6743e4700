"""The Class page: every student's digit on the teacher's projector.

Three views, chosen by the link:

- no parameter: "Start a class" (the teacher) or a box to type a class code (a student);
- ``?teacher=<token>``: the teacher's private view: the code, the join link and its QR code, the wall
  (the class's drawings, refreshing by itself), the prompt, moderation, one drawing's neighbour vote
  big, the class's own test set, export and delete;
- ``?room=<code>``: the student's phone-first view: the canvas and the prediction as on the Draw page,
  "Send to the class", and the student's own drawings.

The data is in knn_core.room (one database for every session and restart); this page only calls it.
Everything is in :func:`class_room_page`; tests hand the student view a drawing instead of the canvas.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core.evaluate import report
from knn_core.room import BadDrawing, Drawing, RoomError, export

NICKNAME_MAX = 30
_SHOWN = "room_shown"  # session key: (the digit on screen, kNN's answer for it), what "Send" sends
COMPARE_SIZES = (1000, 5000, 10000, 60000)  # training digits for the methods side by side


def class_room_page(image: np.ndarray | None = None) -> None:
    """Render the page. image: a drawing to use instead of the student's canvas (tests)."""
    token = st.query_params.get(ui.TEACHER_PARAM)
    code = st.query_params.get(ui.ROOM_PARAM)
    try:
        store = ui.room_store()
        if token is not None:
            _teacher_view(store, token)
        elif code is not None:
            _student_view(store, code, image)
        else:
            _start_view(store)
    except RoomError as exc:  # the database is unreachable (StoreUnavailable), or the room went away
        st.error(ui.md_escape(exc), icon="🚫")


# ------------------------------------------------------------------------------ start / join


def _start_view(store) -> None:
    st.title("🧑‍🏫 Class")
    deleted = st.session_state.pop("room_deleted", None)
    if deleted:
        st.success(f"Class {deleted} and all its drawings are deleted.", icon="🗑️")
    st.caption(
        "Every student's digit on your projector: students draw on their phones or laptops, "
        "kNN reads each drawing, and the class sees all of them together."
    )
    teacher, student = st.columns(2, gap="large")
    with teacher:
        st.subheader("Teachers")
        st.write(
            "Start a class: you get a short code and a QR code for the students, and a private "
            "teacher link that brings the wall and its controls back from any device."
        )
        if st.button("Start a class", type="primary", key="room_start"):
            room = store.create_room()
            st.session_state["room_started"] = room.code
            st.query_params[ui.TEACHER_PARAM] = room.teacher_token
            st.rerun()
        st.caption(_privacy_note())
    with student:
        st.subheader("Students")
        _code_box()


def _code_box() -> None:
    """A box for the class code: joining sets ?room=<code> (checked by the student view)."""
    with st.form("room_join", border=False):
        typed = st.text_input(
            "Class code",
            max_chars=20,
            placeholder="e.g. K7M-4QX",
            key="room_code_typed",
            help="The code on the projector (letters and digits; case and dashes don't matter).",
        )
        if st.form_submit_button("Join the class", type="primary") and typed.strip():
            st.query_params.pop(ui.TEACHER_PARAM, None)
            st.query_params[ui.ROOM_PARAM] = typed.strip()[:20]
            st.rerun()


def _privacy_note() -> str:
    return (
        "No accounts. The drawings (and a nickname, if a student gives one) are kept in this server's "
        "database until you delete the class, and at most a week (the retention period "
        "KNN_LAB_RETENTION_DAYS, 7 days by default)."
    )


# ------------------------------------------------------------------------------ the teacher


def _teacher_view(store, token: str) -> None:
    try:
        room = store.teacher_room(token)
    except RoomError as exc:  # NotTeacher: forged, unknown, expired or deleted
        st.error(
            f"{ui.md_escape(exc)}. Start a new class from the Class page without the link's teacher=… part.", icon="🔒"
        )
        return
    if st.session_state.pop("room_started", None) == room.code:
        st.success(
            "Class started. **Keep your teacher link** (below, under “Your teacher link”): it is the "
            "only way back to this wall and its controls.",
            icon="✅",
        )
    link = ui.join_link(room.code)
    code_col, qr_col = st.columns([3, 2], gap="large")
    with code_col:
        st.caption("Class code")
        st.html(ui.code_html(room.code, link))
        with st.expander("Your teacher link (private: it controls this class)"):
            st.code(ui.teacher_link(room.teacher_token), language=None)
            st.caption("Anyone with this link can moderate, export and delete the class. " + _privacy_note())
    with qr_col:
        st.html(ui.qr_html(link))
    _class_controls(store, token, room)
    _wall(store, room.code)

    vote_tab, test_tab, export_tab = st.tabs(
        ["A drawing: its vote · moderation", "The class's own test set", "Export · delete"]
    )
    settings = ui.current_settings()
    for tab, part in ((vote_tab, _one_drawing), (test_tab, _class_test_set), (export_tab, _export_and_delete)):
        with tab:
            _teacher_tab(part, store, token, room, settings)


# The wall refreshes by itself, the rest of the page only when the teacher acts: each tab is a fragment
# that reads the drawings afresh whenever it reruns (any of its buttons, or "↻ Latest drawings").
@st.fragment
def _teacher_tab(part, store, token: str, room, settings: ui.Settings) -> None:
    st.button(
        "↻ Latest drawings",
        key=f"room_refresh{part.__name__}",
        type="tertiary",
        help="Include the drawings that arrived since this part was last shown.",
    )
    part(store, token, room, store.drawings(room.code, wall=False), settings)


def _class_controls(store, token: str, room) -> None:
    """The prompt and the review-first switch, kept in step with the store (another device may change them)."""
    state = st.session_state
    if state.get("_room_prompt_synced", "unset") != room.prompt:
        state["room_prompt"], state["_room_prompt_synced"] = room.prompt, room.prompt
    if state.get("_room_review_synced", "unset") != room.review_first:
        state["room_review"], state["_room_review_synced"] = room.review_first, room.review_first

    def set_prompt():
        store.set_prompt(token, state["room_prompt"])
        state["_room_prompt_synced"] = state["room_prompt"]

    def set_review():
        store.set_review_first(token, state["room_review"])
        state["_room_review_synced"] = state["room_review"]

    prompt_col, review_col = st.columns([2, 3], vertical_alignment="bottom")
    with prompt_col:
        st.selectbox(
            "Everyone draw a …",
            [None, *range(10)],
            key="room_prompt",
            on_change=set_prompt,
            format_func=lambda d: "anything (each student says which digit)" if d is None else str(d),
            help="With a digit, every drawing sent is labelled with it, and the wall shows in green "
            "the drawings kNN reads as it, in red the others.",
        )
    with review_col:
        st.toggle(
            "Review first: drawings reach the wall only when you approve them", key="room_review", on_change=set_review
        )


@st.fragment(run_every=ui.WALL_REFRESH_S)
def _wall(store, code: str) -> None:
    """The projector's wall: the latest drawings with kNN's answers, the count and the tally; it rereads
    only what is new every WALL_REFRESH_S seconds."""
    ui.fair.exempt_from_budget()  # what the class watches: not slowed down with the long runs (ui/fair.py)
    try:
        room = store.room(code)
        wall = ui.read_wall(store, code, st.session_state.get("room_wall"))
    except RoomError as exc:
        st.error(ui.md_escape(exc), icon="🚫")
        return
    st.session_state["room_wall"] = wall
    count, tally = st.columns([1, 3], vertical_alignment="bottom")
    with count:
        st.metric("Drawings", len(wall.drawings))
    with tally:
        if room.prompt is not None:
            st.subheader(f"Everyone draw a {room.prompt}")
    grid, bars = st.columns([4, 1], gap="medium")
    with grid:
        st.html(ui.wall_html(wall, room.prompt))
    with bars:
        st.html(ui.tally_html([d.predicted for d in wall.drawings], room.prompt))


def _one_drawing(store, token: str, room, drawings, settings: ui.Settings) -> None:
    """Pick a drawing: hide it, show it again or approve it, and see its neighbour vote big with a k slider."""
    if not drawings:
        st.info("No drawings yet.", icon="🕐")
        return
    waiting = [d for d in drawings if not d.hidden and not d.approved] if room.review_first else []
    if waiting:
        st.write(f"**Waiting for your review: {len(waiting)}** (newest first)")
        st.html(ui.drawings_html(waiting[::-1][: ui.WALL_SHOWN], scale=2, css_class="room-waiting"))
        if st.button(f"Approve all {len(waiting)}", key="room_approve_all"):
            for d in waiting:
                store.approve(token, d.id)
            st.rerun()
    by_id = {d.id: d for d in drawings}
    picked = st.selectbox(
        "Drawing",
        list(by_id)[::-1],
        key="room_pick",
        format_func=lambda i: _describe(by_id[i]),
        help="The number on the wall under each drawing.",
    )
    d = by_id.get(picked)
    if d is None:
        return
    hide, show, approve = st.columns(3)
    if hide.button("Hide from the wall", key="room_hide", disabled=d.hidden):
        store.hide(token, d.id, hidden=True)
        st.rerun()
    if show.button("Show again", key="room_unhide", disabled=not d.hidden):
        store.hide(token, d.id, hidden=False)
        st.rerun()
    if approve.button("Approve", key="room_approve", disabled=d.approved or not room.review_first):
        store.approve(token, d.id)
        st.rerun()
    k = st.slider("k: how many neighbours vote", ui.K_MIN, ui.K_MAX, settings.k, key="room_k")
    left, middle, right = st.columns([3, 6, 3], gap="medium")
    ui.show_neighbour_vote(d.pixels, dataclasses.replace(settings, k=k), k, left, middle, right, key="room_")


def _describe(d) -> str:
    status = " · hidden" if d.hidden else ("" if d.approved else " · not approved")
    return ui.drawing_caption(d) + status


def _class_test_set(store, token: str, room, drawings, settings: ui.Settings) -> None:
    """Accuracy and confusion of the chosen method on the class's labelled drawings; the methods side by side."""
    X, y = ui.labelled([d for d in drawings if not d.hidden])
    if len(y) == 0:
        st.info("No labelled drawings yet: set a prompt, or ask the students to say which digit they meant.", icon="🏷️")
        return
    rep = report(
        y, _predictions([d for d in drawings if not d.hidden and d.label is not None], settings), labels=np.arange(10)
    )
    st.metric(f"Accuracy on the class's {len(y)} labelled drawings", f"{rep.accuracy:.1%}")
    st.caption(ui.settings_caption(settings) + " (the sidebar's settings)")
    st.dataframe(_confusion_frame(rep.confusion), key="room_confusion")
    st.caption("Rows: the digit the student drew; columns: what kNN read.")

    st.subheader("Which method reads this class's handwriting best?")
    size = st.select_slider(
        "Training digits for the comparison",
        COMPARE_SIZES,
        value=10000,
        key="room_cmp_size",
        format_func=lambda n: f"{n:,}",
    )
    if st.button("Compare the methods", key="room_compare"):
        rows = []
        progress = st.progress(0.0)
        for i, method in enumerate(ui.METHODS):
            s = dataclasses.replace(settings, method=method, metric="euclidean", size=size)
            t0 = time.perf_counter()
            pred = ui.classifier(s).predict(X)
            rows.append(
                {
                    "method": ui.search_label(s.search),
                    "accuracy": report(y, pred).accuracy,
                    "right": int(np.sum(pred == y)),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
            progress.progress((i + 1) / len(ui.METHODS))
        st.session_state["room_comparison"] = (len(y), size, rows)
    found = st.session_state.get("room_comparison")
    if found:
        n, size, rows = found
        st.caption(f"On {n} labelled drawings, {size:,} training digits, k={settings.k}, {settings.weights} votes.")
        st.dataframe(
            pd.DataFrame(rows).sort_values("accuracy", ascending=False),
            column_config={"accuracy": st.column_config.NumberColumn(format="percent")},
            hide_index=True,
            key="room_comparison_table",
        )


def _predictions(drawings, settings: ui.Settings) -> np.ndarray:
    """kNN's answers for these drawings under these settings; each drawing is classified once per session and
    settings (the page reruns at every teacher's click, and a class sends hundreds of drawings)."""
    known = st.session_state.setdefault("room_scored", {}).setdefault(settings, {})
    new = [d for d in drawings if d.id not in known]
    if new:
        known.update(zip([d.id for d in new], ui.classifier(settings).predict(np.stack([d.pixels for d in new]))))
    return np.array([known[d.id] for d in drawings], dtype=np.int64)


def _confusion_frame(confusion: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(confusion, index=[f"drew {c}" for c in range(10)], columns=[f"read {c}" for c in range(10)])


def _export_and_delete(store, token: str, room, drawings, settings: ui.Settings) -> None:
    labelled = [d for d in drawings if d.label is not None and not d.hidden]
    st.write(f"**Export** the class's {len(labelled)} labelled drawings (hidden ones left out).")
    if labelled:
        idx_col, png_col = st.columns(2)
        idx_col.download_button(
            "MNIST IDX files (zip)",
            export.idx_zip(labelled),
            f"class-{room.code}-idx.zip",
            "application/zip",
            key="room_export_idx",
            help="t10k-images/labels in MNIST's own format: knn_core.load_mnist reads them back as the test split.",
        )
        png_col.download_button(
            "PNG pictures (zip)",
            export.png_zip(labelled),
            f"class-{room.code}-png.zip",
            "application/zip",
            key="room_export_png",
            help="testing/<label>/<id>.png, the “MNIST as PNG” layout.",
        )
    st.divider()
    st.write("**Delete** the class and all its drawings now (otherwise they go after the retention period).")
    sure = st.checkbox(f"Yes, delete class {room.code} and all its drawings", key="room_delete_sure")
    if st.button("Delete the class", key="room_delete", disabled=not sure, type="primary"):
        store.delete_room(token)
        for key in ("room_wall", "room_comparison", "room_delete_sure"):
            st.session_state.pop(key, None)
        st.query_params.pop(ui.TEACHER_PARAM, None)
        st.session_state["room_deleted"] = room.code
        st.rerun()


# ------------------------------------------------------------------------------ the student


def _student_view(store, code: str, image) -> None:
    try:
        room = ui.fresh_room(store, code)
    except RoomError as exc:  # RoomNotFound, RoomExpired
        st.error(ui.md_escape(exc), icon="🔎")
        _code_box()
        return
    st.subheader(f"Class {room.code}")
    settings = ui.current_settings()
    _student_draw(store, room.code, settings, image)
    # outside the fragment: a stroke need not redraw it (the send reads it from the session)
    with st.expander("Your name on the wall (optional)"):
        st.text_input("Nickname", max_chars=NICKNAME_MAX, key="room_nickname", placeholder="e.g. Ana")


@st.fragment
def _student_draw(store, code: str, settings: ui.Settings, image) -> None:
    """The canvas, the send controls and the prediction; a stroke or a send reruns only this part."""
    room = ui.fresh_room(store, code)  # the teacher may have changed the prompt since the page was opened
    if room.prompt is not None:
        st.markdown(f"#### ✏️ Draw a **{room.prompt}**")
    if image is None:
        image = ui.drawing_canvas(key="room_canvas", pen_width=ui.PEN_DEFAULT)
    digit = ui.drawn_digit(image)
    if digit is not None:
        send_box = st.container()  # above the prediction (in view on a phone), filled once kNN has answered
        vote = ui.show_prediction(digit, settings).vote
        st.session_state[_SHOWN] = (digit, int(vote.winner))
        with send_box:
            _send_box(store, code)
    else:
        st.session_state.pop(_SHOWN, None)
        st.info("Draw a digit in the box, then send it to the class.", icon="✏️")
    mine = ui.my_drawings(store, code)
    if mine:
        st.caption(f"Your drawings in this class ({len(mine)}), newest first")
        pictures = st.session_state.setdefault("room_my_pictures", {})  # drawn once per drawing, not per stroke
        st.html(ui.drawings_html(mine[::-1][:24], scale=2, pictures=pictures, css_class="my-drawings"))


@st.fragment
def _send_box(store, code: str) -> None:
    """"Send to the class": a fragment of its own, so that a send stores the drawing on screen and says
    "Sent ✓" without drawing the canvas and the prediction again (as costly as a stroke, and a class
    sends as often as it draws).  The student's own drawings below show the new one at the next stroke."""
    shown = st.session_state.get(_SHOWN)
    if shown is None:
        return
    sent = _send_controls(store, ui.fresh_room(store, code), *shown)
    if sent is not None:
        ui.remember_my_drawing(code, sent)


def _send_controls(store, room, digit: np.ndarray, predicted: int) -> Drawing | None:
    """The label, the nickname and "Send to the class"; the drawing as stored when this run sent it."""
    state = st.session_state
    sent_now = None
    label = room.prompt
    if label is None:
        label = st.pills("Which digit did you mean?", list(range(10)), key="room_meant")
    sid = ui.send_id(ui.student_id(), digit, label)
    sent = state.setdefault("room_sent", {})
    if st.button("Send to the class", type="primary", key="room_send", disabled=sid in sent):
        if label is None:
            st.warning("Pick the digit you meant first (above), then send.", icon="👆")
        else:
            try:
                d = store.send(
                    room.code,
                    digit,
                    label=int(label),
                    predicted=predicted,
                    nickname=(state.get("room_nickname") or "").strip()[:NICKNAME_MAX] or None,
                    student=ui.student_id(),
                    send_id=sid,
                )
            except BadDrawing as exc:
                st.error(f"Not sent: {ui.md_escape(exc)}", icon="🚫")
            except RoomError as exc:
                st.error(
                    f"Not sent: {ui.md_escape(exc)} Press the button again to retry (it is never counted twice).",
                    icon="🚫",
                )
            else:
                sent[sid] = d.id
                sent_now = d
    if sid in sent:
        st.success(f"Sent ✓ (#{sent[sid]})", icon="📨")
    return sent_now


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(class_room_page)
