"""The Suspicious labels page: candidate label errors in MNIST, for a person to check.

Training digits are judged by their leave-one-out neighbours (a digit never
votes for itself), test digits by their nearest training digits. Two lists:

- likely label errors, the confident-learning way (knn_core.evaluate.label_issues,
  as cleanlab does): a digit whose vote goes to another class at least as
  strongly as that class's own digits usually get, ranked by the share its
  label gets, lowest first. A clearly written 7 that pixel distance finds
  close to 1s is not listed when 7s usually get such votes;
- every digit most of whose neighbours disagree with its label
  (knn_core.evaluate.label_doubts): mostly kNN's own mistakes, each marked
  whether it is also a likely label error.

The better the method (the sidebar's), the fewer false alarms in both. Everything is in :func:`suspicious_page`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core.evaluate import label_doubts, label_issues
from knn_core.methods import BEST_PRESET, PRESETS

PER_PAGE = 10
SETS = {"train": "Training digits (leave-one-out neighbours)", "test": "Test digits (nearest training digits)"}
VIEWS = {"issues": "Likely label errors (confident learning)",
         "doubts": "Every digit most of its neighbours disagree with"}


@st.cache_data(show_spinner=False, max_entries=64)
def doubts(_lists, split: str, metric: str, size: int, k: int, weights: str, tie: str) -> dict:
    """label_doubts() of one split's lists (cached by the arguments after _lists)."""
    return label_doubts(_lists, k, weights=weights, tie_break=tie)


@st.cache_data(show_spinner=False, max_entries=64)
def issues(_lists, split: str, metric: str, size: int, k: int, weights: str, tie: str) -> dict:
    """label_issues() of one split's lists (cached by the arguments after _lists)."""
    return label_issues(_lists, k, weights=weights, tie_break=tie)


def _use_the_best_method() -> None:
    ui.set_setting("method", BEST_PRESET)
    ui.set_setting("k", PRESETS[BEST_PRESET].k)
    ui.set_setting("weights", PRESETS[BEST_PRESET].weights)


def suspicious_page() -> None:
    settings = ui.current_settings()
    st.title("🏷️ Suspicious labels")
    st.markdown("Which MNIST labels might be wrong? This page lists **candidates for a person to check**, "
                "ranked; it does not count MNIST's errors. Most listed digits are correctly labelled and "
                "merely unusual, or misread by the method.")
    c1, c2 = st.columns(2)
    view = c1.radio("List", list(VIEWS), format_func=VIEWS.get, key="suspicious_view")
    which = c2.radio("Digits", list(SETS), format_func=SETS.get, key="suspicious_set")
    if settings.method != BEST_PRESET:
        best = PRESETS[BEST_PRESET]
        st.info(f"The method finds the neighbours: with {ui.search_label(settings.search)} many of these are "
                f"its own mistakes. The best method here ({best.label}) makes far fewer.", icon="💡")
        st.button(f"Rank with {best.label} (k={best.k}, {best.weights} weights)", key="suspicious_best",
                  on_click=_use_the_best_method)
    st.caption(ui.settings_caption(settings) + (
        " · listed when the vote goes to another class as strongly as that class's digits usually get it"
        if view == "issues" else
        f" · listed when more than half of the {settings.k} nearest neighbours carry another label"
        + (" (with k below 5 that is any disagreement at all: try k = 5 to 10)" if settings.k < 5 else "")))
    split = "loo" if which == "train" else "test"
    got = ui.neighbor_lists([(split, settings.search, settings.size)], key="suspicious_start")
    if got is None:
        return
    (lists,) = got
    args = (lists, split, settings.search, settings.size, settings.k, settings.weights, settings.tie)
    found = issues(*args)
    d = found if view == "issues" else doubts(*args)
    ds = ui.get_dataset()
    train_rows = lists.train_rows
    rows = train_rows[d["index"]] if split == "loo" else d["index"]  # dataset numbers of the digits
    images = ds.train_images if split == "loo" else ds.test_images
    n = len(d["index"])
    everyone = len(lists.query_labels)
    kind = "training" if which == "train" else "test"
    if view == "issues":
        st.metric("Likely label errors", f"{n:,} of {everyone:,} {kind} digits ({n / everyone:.2%})",
                  help="Candidates: a person decides. Northcutt et al. (2021) found about 0.15% of MNIST's "
                       "test labels wrong by hand.")
    else:
        also = int(np.isin(d["index"], found["index"]).sum())
        st.metric("Neighbours mostly disagree", f"{n:,} of {everyone:,} {kind} digits ({n / everyone:.2%})",
                  help="Mostly the method's own mistakes, not label errors.")
        st.caption(f"Of these, **{also:,}** are also likely label errors (confident learning); the other "
                   f"{n - also:,} are disagreements of the method, typical for their label.")
    ui.show_command(ui.cli_command("suspicious", settings, set=which))
    if n == 0:
        st.info("No digit here is listed.", icon="✅")
        return

    table = issue_table(found, rows, which) if view == "issues" else doubt_table(d, rows, lists, settings.k, which,
                                                                                 found["index"])
    share = st.column_config.ProgressColumn
    config = ({"label's share": share("label's share", help="the share of the vote its own label gets",
                                      format="%.2f", min_value=0.0, max_value=1.0)}
              if view == "issues" else
              {"disagreement": share("disagreement", help="fraction of the k neighbours with another label",
                                     format="%.2f", min_value=0.0, max_value=1.0)})
    st.dataframe(table, hide_index=True, height=300, key="suspicious_table", column_config=config)
    st.download_button("Table as CSV", table.to_csv(index=False), f"suspicious_{view}_{which}.csv", "text/csv",
                       on_click="ignore", key="suspicious_csv")

    pages = (n + PER_PAGE - 1) // PER_PAGE
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    page = c1.number_input(f"Page (of {pages}, {PER_PAGE} digits each)", 1, pages, 1, key="suspicious_page")
    start = (page - 1) * PER_PAGE
    c2.caption(f"Ranks {start + 1}-{min(start + PER_PAGE, n)}: each digit (red frame) with its label and the "
               f"vote's answer, then its {settings.k} nearest training digits (✓ and green: they voted for it).")
    k = settings.k
    answers = found["suggested"] if view == "issues" else d["predicted"]
    word = "likely" if view == "issues" else "kNN"
    for r in range(start, min(start + PER_PAGE, n)):
        q = int(d["index"][r])
        nb = lists.indices[q, :k]
        ui.digit_with_neighbours(
            images[rows[r]], f"#{r + 1} {which} {rows[r]}\nlabel **{d['label'][r]}**, {word} {answers[r]}",
            ds.train_images[train_rows[nb]], lists.train_labels[nb], lists.distances[q, :k],
            int(answers[r]), frame=ui.RED)


def issue_table(found: dict, rows: np.ndarray, which: str) -> pd.DataFrame:
    """label_issues() as the page's table."""
    return pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1), f"{which} digit": rows, "label": found["label"],
        "likely label": found["suggested"], "label's share": found["self_confidence"],
        "usual share for the label": found["threshold"], "likely label's share": found["suggested_share"],
    })


def doubt_table(d: dict, rows: np.ndarray, lists, k: int, which: str, issue_index=()) -> pd.DataFrame:
    """label_doubts() as the page's table (the CLI prints these columns but the mark), each row marked whether
    it is also a likely label error (its query index among `issue_index`)."""
    return pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1), f"{which} digit": rows, "label": d["label"],
        "kNN says": d["predicted"], "disagreement": d["disagreement"],
        "likely label error": np.isin(d["index"], issue_index),
        "neighbours": [" ".join(map(str, row)) for row in lists.neighbor_labels(k)[d["index"]].tolist()],
    })


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(suspicious_page)
