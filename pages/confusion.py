"""The Confusion matrix page: how kNN does on all 10,000 test digits, class by class.

Counts (or rows normalised) as a heatmap, the overall accuracy, accuracy per
class and the per-class precision / recall / F1 table, all from knn_core's
report() on the cached test-set neighbour lists.  Clicking a cell (or picking
true / predicted in the select boxes) shows those test digits, each with its
nearest training digits.  Everything is in :func:`confusion_page`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core.evaluate import report, wrong_votes

MAX_CELL_DIGITS = 12
CHART_KEY = "confusion_chart"
TRUE_KEY, PRED_KEY = "cell_true", "cell_pred"
# Off the diagonal the numbers are tiny next to it: a colour scale that spends most of its
# range on the first few percent, so that a cell of 5 confusions shows next to 1,000 right.
COLOURS = [[0.0, "#FFFFFF"], [0.002, "#EEF4FB"], [0.02, "#9ECAE1"], [0.1, "#4292C6"], [1.0, "#08306B"]]


def confusion_page() -> None:
    settings = ui.current_settings()
    st.title("🎯 Confusion matrix")
    st.caption(f"All {10000:,} MNIST test digits · {ui.settings_caption(settings)}")
    got = ui.neighbor_lists([("test", settings.search, settings.size)], key="confusion_start")
    if got is None:
        return
    (lists,) = got
    vote = dict(weights=settings.weights, tie_break=settings.tie)
    pred = lists.predict(settings.k, **vote)
    rep = report(lists.query_labels, pred)
    n, wrong = len(pred), int(np.sum(pred != lists.query_labels))

    c1, c2, c3 = st.columns(3)
    c1.metric("Accuracy", f"{rep.accuracy:.4f}")
    c2.metric("Misclassified", f"{wrong:,} of {n:,}")
    worst = int(np.argmin(rep.recall))
    c3.metric("Hardest digit", f"{rep.labels[worst]} ({rep.recall[worst]:.2%} right)")

    norm = st.radio("Colour by", ["counts", "rows normalised"], horizontal=True, key="confusion_norm",
                    help="rows normalised: each true digit's row divided by its number of test digits")
    left, right = st.columns([5, 4], gap="large")
    with left:
        st.plotly_chart(confusion_figure(rep.confusion, rep.labels, norm == "rows normalised"),
                        on_select=_cell_clicked, selection_mode="points", key=CHART_KEY,
                        config={"displayModeBar": False})
        st.caption("Rows: the true label; columns: what kNN said. Click a cell to see its digits below.")
    with right:
        st.plotly_chart(class_accuracy_figure(rep), key="class_accuracy", config={"displayModeBar": False})
        table = class_table(rep)
        st.dataframe(table, hide_index=True, key="class_table",
                     column_config={c: st.column_config.NumberColumn(format="%.4f")
                                    for c in ("precision", "recall", "F1")})
        st.caption("recall: the share of each digit's test images classified right (its accuracy).")
        st.download_button("Per-class table as CSV", table.to_csv(index=False), "per_class.csv", "text/csv",
                           on_click="ignore", key="class_csv")
        st.download_button("Confusion matrix as CSV", matrix_table(rep).to_csv(), "confusion.csv", "text/csv",
                           on_click="ignore", key="confusion_csv")
    st.caption("The same numbers from the command line:")
    ui.show_command(ui.cli_command("evaluate", settings))

    _cell_digits(lists, pred, rep, settings)


def confusion_figure(confusion: np.ndarray, labels, normalised: bool) -> dict:
    """The confusion matrix as a heatmap (plain plotly dict), with an invisible marker on each
    cell so that a click selects it (heatmaps themselves cannot be selected)."""
    counts = np.asarray(confusion)
    rows = counts.sum(axis=1, keepdims=True)
    z = counts / np.maximum(rows, 1) if normalised else counts
    labels = [int(v) for v in labels]
    text = [[f"{v:.1%}" if normalised else str(c) for v, c in zip(zr, cr)] for zr, cr in zip(z, counts)]
    xs, ys = np.meshgrid(labels, labels)
    return {
        "data": [
            {"type": "heatmap", "x": labels, "y": labels, "z": z.tolist(), "text": text,
             "texttemplate": "%{text}", "textfont": {"size": 13}, "colorscale": COLOURS, "showscale": False, "hoverinfo": "skip",
             "zmin": 0, "zmax": float(max(z.max(), 1e-9))},
            {"type": "scatter", "mode": "markers", "x": xs.ravel().tolist(), "y": ys.ravel().tolist(),
             "customdata": counts.ravel().tolist(),
             "marker": {"symbol": "square", "size": 40, "color": "#000000", "opacity": 0.0},
             "selected": {"marker": {"opacity": 0.18}}, "unselected": {"marker": {"opacity": 0.0}},
             "hovertemplate": "true %{y}, predicted %{x}: %{customdata} digits<extra></extra>",
             "showlegend": False},
        ],
        "layout": {
            "height": 520, "margin": {"l": 50, "r": 10, "t": 30, "b": 50},
            "xaxis": {"title": {"text": "predicted"}, "tickmode": "array", "tickvals": labels,
                      "range": [labels[0] - 0.5, labels[-1] + 0.5], "showgrid": False, "zeroline": False,
                      "fixedrange": True},
            "yaxis": {"title": {"text": "true label"}, "tickmode": "array", "tickvals": labels,
                      "range": [labels[-1] + 0.5, labels[0] - 0.5], "showgrid": False, "zeroline": False,
                      "fixedrange": True},
            "clickmode": "event+select", "dragmode": False,
            "title": {"text": "Rows normalised" if normalised else "Counts", "font": {"size": 14}},
        },
    }


def class_accuracy_figure(rep) -> dict:
    labels = [str(int(c)) for c in rep.labels]
    return {
        "data": [{"type": "bar", "x": labels, "y": rep.recall.tolist(), "marker": {"color": ui.WINNER_COLOUR},
                  "text": [f"{v:.1%}" for v in rep.recall], "textposition": "outside",
                  "hovertemplate": "digit %{x}: %{y:.2%} right<extra></extra>"}],
        "layout": {"title": {"text": "Accuracy per class", "font": {"size": 14}}, "height": 230,
                   "margin": {"l": 40, "r": 10, "t": 40, "b": 30},
                   "xaxis": {"type": "category", "title": {"text": "true digit"}},
                   # from 0: an axis starting near the lowest bar made 95% look like half of 99%
                   "yaxis": {"range": [0, 1.12], "tickformat": ".0%", "dtick": 0.25},
                   "showlegend": False},
    }


def class_table(rep) -> pd.DataFrame:
    return pd.DataFrame({
        "digit": rep.labels.astype(int), "test digits": rep.support.astype(int),
        "right": np.diag(rep.confusion).astype(int), "precision": rep.precision,
        "recall": rep.recall, "F1": rep.f1,
    })


def matrix_table(rep) -> pd.DataFrame:
    labels = [int(c) for c in rep.labels]
    return pd.DataFrame(rep.confusion, index=pd.Index(labels, name="true \\ predicted"), columns=labels)


def _cell_clicked() -> None:
    """A click on the heatmap: put its cell into the select boxes."""
    event = st.session_state.get(CHART_KEY)
    points = (event or {}).get("selection", {}).get("points", [])
    point = points[0] if points and isinstance(points[0], dict) else {}
    true, said = ui.valid_index(point.get("y"), 10), ui.valid_index(point.get("x"), 10)  # from the browser
    if true is not None and said is not None:
        st.session_state[TRUE_KEY], st.session_state[PRED_KEY] = true, said
        st.session_state[SCROLL_KEY] = True  # bring the cell's digits into view once they are drawn


SCROLL_KEY = "confusion_scroll"


def _cell_digits(lists, pred, rep, settings: ui.Settings) -> None:
    labels = [int(c) for c in rep.labels]
    if TRUE_KEY not in st.session_state or PRED_KEY not in st.session_state:
        off = rep.confusion - np.diag(np.diag(rep.confusion))  # the most common confusion first
        t, p = np.unravel_index(int(np.argmax(off)), off.shape)
        st.session_state[TRUE_KEY], st.session_state[PRED_KEY] = labels[t], labels[p]
    st.subheader("The digits of one cell")
    with st.container(key="scroll_to_cell"):  # always there, so the boxes below keep their places
        if st.session_state.pop(SCROLL_KEY, False):
            ui.scroll_into_view("#the-digits-of-one-cell")  # the section below the matrix: off screen on most displays
    c1, c2, _ = st.columns([1, 1, 3])
    true = c1.selectbox("True label", labels, key=TRUE_KEY)
    said = c2.selectbox("Predicted", labels, key=PRED_KEY)
    if true != said:  # the most confidently wrong first, as on the Misclassified page
        w = wrong_votes(lists, settings.k, weights=settings.weights, tie_break=settings.tie)
        cell = w["index"][(w["true"] == true) & (w["predicted"] == said)]
        order = "most confidently wrong first"
    else:
        cell = np.flatnonzero((lists.query_labels == true) & (pred == said))
        order = "in test-set order"
    if len(cell) == 0:
        st.info(f"No test digit labelled {true} was classified as {said}.", icon="✅")
        return
    shown = cell[:MAX_CELL_DIGITS]
    st.caption(f"{len(cell):,} test digits labelled **{true}** were classified as **{said}**; "
               f"{'all' if len(shown) == len(cell) else f'the first {len(shown)}'} shown, {order}, each "
               f"with its {settings.k} nearest training digits (✓ and green: voted for {said}).")
    if true != said:
        ui.show_command(ui.cli_command("misclassified", settings, true=true, predicted=said))
    ds = ui.get_dataset()
    rows = lists.train_rows
    k = settings.k
    for q in shown.tolist():
        nb = lists.indices[q, :k]
        ui.digit_with_neighbours(
            ds.test_images[q], f"test #{q}\nlabel {true}", ds.train_images[rows[nb]], lists.train_labels[nb],
            lists.distances[q, :k], int(pred[q]), frame=ui.GREEN if true == said else ui.RED)


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(confusion_page)
