"""The Misclassified page: every test digit kNN gets wrong, and why, in pictures.

The wrong ones (knn_core.evaluate.wrong_votes: most confidently wrong first),
filterable by true and predicted label; opening one shows the digit, its k
nearest training digits with labels and distances (those that voted for the
wrong answer marked) and the vote; a click on one of the thumbnails "at a
glance" opens that digit too.  Everything is in :func:`misclassified_page`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core import VoteExplanation
from knn_core.evaluate import wrong_votes

ANY = "any"
GALLERY = 48  # thumbnails shown at once
TABLE_KEY, OPEN_KEY = "wrong_table", "wrong_open"
GALLERY_KEY = "wrong_gallery"  # the thumbnails' container; the chart's own key carries the open digit
PICK_KEY, SCROLL_KEY = "_wrong_pick", "wrong_scroll"
PER_ROW = 16  # thumbnails per row of the gallery
ROW_PITCH = 1.7  # a row's height in tile sides: the tile, then its two-line caption


def misclassified_page() -> None:
    settings = ui.current_settings()
    st.title("❌ Misclassified test digits")
    st.caption(f"{ui.settings_caption(settings)}")
    got = ui.neighbor_lists([("test", settings.search, settings.size)], key="misclassified_start")
    if got is None:
        return
    (lists,) = got
    vote = dict(weights=settings.weights, tie_break=settings.tie)
    wrong = wrong_votes(lists, settings.k, **vote)
    n_wrong, n = len(wrong["index"]), len(lists.query_labels)

    labels = [ANY] + [int(c) for c in lists.classes]
    c1, c2, c3 = st.columns([1, 1, 2])
    true = c1.selectbox("True label", labels, key="wrong_true")
    said = c2.selectbox("Predicted label", labels, key="wrong_pred")
    keep = np.ones(n_wrong, bool)
    if true != ANY:
        keep &= wrong["true"] == true
    if said != ANY:
        keep &= wrong["predicted"] == said
    rank = np.flatnonzero(keep)
    c3.metric("Wrong", f"{n_wrong:,} of {n:,} test digits")
    c3.caption(f"{len(rank):,} with this filter")
    ui.show_command(ui.cli_command("misclassified", settings, **({"true": true} if true != ANY else {}),
                                   **({"predicted": said} if said != ANY else {})))
    if len(rank) == 0:
        st.info("No misclassified test digit matches this filter.", icon="✅")
        return

    table = wrong_table(wrong, rank, lists, settings.k)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.caption("Most confidently wrong first. Select a row (or use the box below) to open a digit.")
        st.dataframe(table, hide_index=True, height=420, key=TABLE_KEY, on_select=_row_selected,
                     selection_mode="single-row",
                     column_config={  # narrow number columns: confidence and neighbours fit beside them
                         "rank": st.column_config.NumberColumn("#", width=40),
                         "test digit": st.column_config.NumberColumn("digit", width=55),
                         "true": st.column_config.NumberColumn(width=40),
                         "predicted": st.column_config.NumberColumn("said", width=40),
                         "confidence": st.column_config.ProgressColumn(
                             "confidence", help="the wrong winner's share of the vote", format="%.2f",
                             min_value=0.0, max_value=1.0, width=90),
                         "neighbours": st.column_config.TextColumn(width="medium")})
        st.download_button("Table as CSV", table.to_csv(index=False), "misclassified.csv", "text/csv",
                           on_click="ignore", key="wrong_csv")
    options = wrong["index"][rank].tolist()
    picked = ui.valid_index(st.session_state.pop("_wrong_row", None), len(options))  # a row picked in the table
    if picked is not None:
        st.session_state[OPEN_KEY] = options[picked]
    clicked = picked_digit(st.session_state.pop(PICK_KEY, None), options)  # a thumbnail clicked below
    if clicked is not None:
        st.session_state[OPEN_KEY] = clicked
    if st.session_state.get(OPEN_KEY) not in options:
        st.session_state[OPEN_KEY] = options[0]
    row_of = {q: r for r, q in zip(rank.tolist(), options)}
    with right, st.container(key="wrong_open_digit"):
        with st.container(key="scroll_to_open"):  # always there, so the elements below keep their places
            if st.session_state.pop(SCROLL_KEY, False) and clicked is not None:
                ui.scroll_into_view(".st-key-wrong_open_digit")
        q = st.selectbox("Open test digit", options, key=OPEN_KEY,
                         format_func=lambda q: (f"#{q}: a {wrong['true'][row_of[q]]} taken for a "
                                                f"{wrong['predicted'][row_of[q]]}"))
        _explain(lists, q, settings)

    st.subheader("At a glance")
    shown = rank[:GALLERY]
    st.caption(f"The first {len(shown)} of {len(rank):,}: test number, then true → said. "
               "Click one to open it above.")
    ds = ui.get_dataset()
    digits = wrong["index"][shown]
    fig = gallery_figure(ds.test_images[digits], digits, wrong["true"][shown], wrong["predicted"][shown], q)
    # keyed by the open digit: a fresh chart (nothing selected) after each opening, so a click on any
    # thumbnail, even the one clicked before, is a new selection
    chart_key = f"{GALLERY_KEY}_{q}"
    with st.container(key=GALLERY_KEY):
        st.plotly_chart(fig, key=chart_key, on_select=lambda: _thumbnail_clicked(chart_key),
                        selection_mode="points", config={"displayModeBar": False})


def wrong_table(wrong: dict, rank: np.ndarray, lists, k: int) -> pd.DataFrame:
    """The rows `rank` of wrong_votes() as the page's table (the CLI prints the same columns)."""
    idx = wrong["index"][rank]
    return pd.DataFrame({
        "rank": rank + 1, "test digit": idx, "true": wrong["true"][rank], "predicted": wrong["predicted"][rank],
        "confidence": wrong["confidence"][rank],
        "neighbours": [" ".join(map(str, row)) for row in lists.neighbor_labels(k)[idx].tolist()],
    })


def gallery_figure(images, digits, true, said, open_digit: int | None = None) -> dict:
    """Thumbnails of test digits as one plotly figure (plain dict): a picture per digit, its caption
    (test number, true → said) below, PER_ROW to a row, the open one framed in red, and an invisible
    marker on each whose customdata is its test number, so that a click selects it (pictures
    themselves cannot be selected)."""
    n = len(digits)
    cols, rows = np.arange(n) % PER_ROW, np.arange(n) // PER_ROW
    x, y = cols.astype(float), -rows * ROW_PITCH
    digits, true, said = (np.asarray(v).tolist() for v in (digits, true, said))
    side = 0.92  # of a tile's cell
    images_layout = [
        {"source": ui.png_data_uri(ui.enlarge(ui.to_uint8(img), 3)), "xref": "x", "yref": "y",
         "x": float(x[i]), "y": float(y[i]), "sizex": side, "sizey": side, "xanchor": "center",
         "yanchor": "middle", "layer": "above"}
        for i, img in enumerate(images)]
    captions = [
        {"x": float(x[i]), "y": float(y[i]) - side / 2 - 0.05, "xref": "x", "yref": "y", "yanchor": "top",
         "text": f"#{d}<br>{t} → <b>{p}</b>", "showarrow": False, "font": {"size": 11, "color": "#1B1F1C"}}
        for i, (d, t, p) in enumerate(zip(digits, true, said))]
    shapes = [
        {"type": "rect", "xref": "x", "yref": "y", "x0": float(x[i]) - 0.5, "x1": float(x[i]) + 0.5,
         "y0": float(y[i]) - 0.5, "y1": float(y[i]) + 0.5, "line": {"color": ui.rgb_css(ui.RED), "width": 3}}
        for i, d in enumerate(digits) if d == open_digit]
    n_rows = int(rows.max()) + 1 if n else 1
    return {
        "data": [{
            "type": "scatter", "mode": "markers", "x": x.tolist(), "y": y.tolist(), "customdata": digits,
            "text": [f"test #{d}: a {t} taken for a {p}" for d, t, p in zip(digits, true, said)],
            "hovertemplate": "%{text}. Click to open it.<extra></extra>",
            "marker": {"symbol": "square", "size": 44, "color": "#000000", "opacity": 0.0},
            "selected": {"marker": {"opacity": 0.0}}, "unselected": {"marker": {"opacity": 0.0}},
            "showlegend": False}],
        "layout": {
            "height": 96 * n_rows + 10, "margin": {"l": 0, "r": 0, "t": 5, "b": 5},
            "xaxis": {"visible": False, "range": [-0.55, PER_ROW - 0.45], "fixedrange": True},
            "yaxis": {"visible": False, "range": [-(n_rows - 1) * ROW_PITCH - ROW_PITCH + 0.45, 0.55],
                      "fixedrange": True, "scaleanchor": "x", "scaleratio": 1},
            "images": images_layout, "annotations": captions, "shapes": shapes,
            "clickmode": "event+select", "dragmode": False, "hovermode": "closest", "hoverdistance": 60,
            "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)",
        },
    }


def picked_digit(value: object, options: list[int]) -> int | None:
    """The test digit a click on a thumbnail named (its customdata, from the browser): only a whole number
    that is one of the digits listed (`options`), else None."""
    if isinstance(value, list) and len(value) == 1:  # plotly may send customdata as a one-item list
        value = value[0]
    number = ui.valid_index(value, 1 + max(options, default=-1))
    return number if number is not None and number in options else None


def _thumbnail_clicked(key: str) -> None:
    """A click on a thumbnail: open that digit (checked against the list in the next run) and scroll to it."""
    event = st.session_state.get(key)
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
    point = points[0] if points and isinstance(points[0], dict) else {}
    if "customdata" in point:
        st.session_state[PICK_KEY] = point["customdata"]
        st.session_state[SCROLL_KEY] = True




def _row_selected() -> None:
    """A row picked in the table: open that digit."""
    rows = (st.session_state.get(TABLE_KEY) or {}).get("selection", {}).get("rows", [])
    if rows:
        st.session_state["_wrong_row"] = rows[0]


def _explain(lists, q: int, settings: ui.Settings) -> None:
    """One test digit: the picture, the vote, and its k nearest training digits."""
    k = settings.k
    scores, pred, tied = lists.vote(k, weights=settings.weights, tie_break=settings.tie)
    vote = VoteExplanation(scores[q], int(pred[q]), tuple(int(c) for c in lists.classes[tied[q]]), settings.tie)
    true = int(lists.query_labels[q])
    nb = lists.indices[q, :k]
    nb_labels = lists.train_labels[nb]
    n_for = int(np.sum(nb_labels == vote.winner))
    share = scores[q].max() / scores[q].sum()
    why = (f"**{n_for} of its {k}** nearest training digits are {vote.winner}s"
           + (f" (and {vote.winner} got {share:.0%} of the 1/distance weight)" if settings.weights == "distance" else ""))
    st.markdown(f"Test digit **#{q}** is labelled **{true}**; kNN said **{vote.winner}**: {why}. "
                + ("" if not vote.was_tied else vote.describe()))
    c1, c2 = st.columns([1, 3])
    with c1:
        ui.digit_grid([ui.get_dataset().test_images[q]], [f"test #{q}\nlabel **{true}**"], scale=4, borders=[ui.RED])
    with c2:
        ui.vote_chart(vote.scores, lists.classes, vote.winner, tied=vote.tied_classes, weights=settings.weights,
                      true_label=true, height=210, key="wrong_vote")
    st.caption(f"Its {k} nearest training digits, nearest first (✓ and green: voted for {vote.winner}):")
    rows = lists.train_rows
    ui.neighbour_grid(ui.get_dataset().train_images[rows[nb]], nb_labels, lists.distances[q, :k], vote.winner)
    # Drawn only while open: the classifier it needs (for the pictures as compared) is fitted on demand.
    box = st.expander(f"Why {vote.winner}, not {true}? Differences, pixel by pixel", key="wrong_explain_open",
                      on_change="rerun")
    if box.open:
        with box:
            digit = ui.get_dataset().test_images[q]
            ui.explain_section(ui.classifier(settings), digit, ui.neighbours_from_lists(lists, q, k, digit),
                               vote.winner, key="wrong_explain", other=true)


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(misclassified_page)
