"""The Suspicious labels page: digits whose label most of their nearest neighbours disagree with.

Training digits are judged by their leave-one-out neighbours (a digit never
votes for itself), test digits by their nearest training digits; ranked by the
fraction of the k neighbours that disagree (knn_core.evaluate.label_doubts).
At the top are the places where MNIST's own labels are likely wrong, or the
digit is genuinely ambiguous.  Everything is in :func:`suspicious_page`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core.evaluate import label_doubts

PER_PAGE = 10
SETS = {"train": "Training digits (leave-one-out neighbours)", "test": "Test digits (nearest training digits)"}


@st.cache_data(show_spinner=False, max_entries=64)
def doubts(_lists, split: str, metric: str, size: int, k: int, weights: str, tie: str) -> dict:
    """label_doubts() of one split's lists (cached by the arguments after _lists)."""
    return label_doubts(_lists, k, weights=weights, tie_break=tie)


def suspicious_page() -> None:
    settings = ui.current_settings()
    st.title("🏷️ Suspicious labels")
    st.caption(f"{ui.settings_caption(settings)} · a digit is listed when more than half of its "
               f"{settings.k} nearest neighbours carry another label"
               + (" (with k below 5 that is any disagreement at all: try k = 5 to 10)" if settings.k < 5 else ""))
    which = st.radio("Digits", list(SETS), format_func=SETS.get, horizontal=True, key="suspicious_set")
    split = "loo" if which == "train" else "test"
    got = ui.neighbor_lists([(split, settings.search, settings.size)], key="suspicious_start")
    if got is None:
        return
    (lists,) = got
    d = doubts(lists, split, settings.search, settings.size, settings.k, settings.weights, settings.tie)
    ds = ui.get_dataset()
    train_rows = lists.train_rows
    rows = train_rows[d["index"]] if split == "loo" else d["index"]  # dataset numbers of the digits
    images = ds.train_images if split == "loo" else ds.test_images
    n = len(d["index"])
    everyone = len(lists.query_labels)
    kind = "training" if which == "train" else "test"
    st.metric("Suspicious", f"{n:,} of {everyone:,} {kind} digits ({n / everyone:.2%})")
    ui.show_command(ui.cli_command("suspicious", settings, set=which))
    if n == 0:
        st.info("No digit here disagrees with most of its neighbours.", icon="✅")
        return

    table = doubt_table(d, rows, lists, settings.k, which)
    st.dataframe(table, hide_index=True, height=300, key="suspicious_table",
                 column_config={"disagreement": st.column_config.ProgressColumn(
                     "disagreement", help="fraction of the k neighbours with another label",
                     format="%.2f", min_value=0.0, max_value=1.0)})
    st.download_button("Table as CSV", table.to_csv(index=False), f"suspicious_{which}.csv", "text/csv",
                       on_click="ignore", key="suspicious_csv")

    pages = (n + PER_PAGE - 1) // PER_PAGE
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    page = c1.number_input(f"Page (of {pages}, {PER_PAGE} digits each)", 1, pages, 1, key="suspicious_page")
    start = (page - 1) * PER_PAGE
    c2.caption(f"Ranks {start + 1}-{min(start + PER_PAGE, n)}: each digit (red frame) with its label and kNN's "
               f"answer, then its {settings.k} nearest training digits (✓ and green: they voted for kNN's answer).")
    k = settings.k
    for r in range(start, min(start + PER_PAGE, n)):
        q = int(d["index"][r])
        nb = lists.indices[q, :k]
        ui.digit_with_neighbours(
            images[rows[r]], f"#{r + 1} {which} {rows[r]}\nlabel **{d['label'][r]}**, kNN {d['predicted'][r]}",
            ds.train_images[train_rows[nb]], lists.train_labels[nb], lists.distances[q, :k],
            int(d["predicted"][r]), frame=ui.RED)

def doubt_table(d: dict, rows: np.ndarray, lists, k: int, which: str) -> pd.DataFrame:
    """label_doubts() as the page's table (the CLI prints the same columns)."""
    return pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1), f"{which} digit": rows, "label": d["label"],
        "kNN says": d["predicted"], "disagreement": d["disagreement"],
        "neighbours": [" ".join(map(str, row)) for row in lists.neighbor_labels(k)[d["index"]].tolist()],
    })


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(suspicious_page)
