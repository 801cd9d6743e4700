"""The k sweep page: how accuracy depends on k, on the training-set size, on the metric and weighting.

Four charts, each with its numbers in a table beside it and a CSV download:

1. accuracy against k (1..50) on the validation split and on the test set, the
   k chosen on validation marked with its test accuracy (the honest way to pick k);
2. leave-one-out on the training set against k, a second honest way;
3. test accuracy against training-set size for several k (log axis);
4. metrics and weightings side by side (validation curves; slow metrics opt-in).

Every curve comes from one cached neighbour search (50 neighbours) per split,
metric and size: sweeping k is only re-voting.  Everything is in :func:`k_sweep_page`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

import ui
from knn_core import K_MAX, METRICS, Method

KS = tuple(range(1, K_MAX + 1))
SIZE_KS = (1, 3, 5, 10, 25, 50)  # up to K_MAX: the size curve reuses the pages' 50-neighbour searches
COMPARE_DEFAULT = (Method.classic("euclidean"), Method.classic("cosine"))  # manhattan, minkowski: slow, opt-in
WEIGHTS = ("uniform", "distance")
VAL_COLOUR, TEST_COLOUR, LOO_COLOUR = "#1565C0", "#2E7D32", "#6A1B9A"
LINE_COLOURS = ("#1565C0", "#2E7D32", "#C62828", "#F39C12", "#6A1B9A", "#00838F", "#8D6E63", "#546E7A")
CHART = {"displayModeBar": False}


@st.cache_data(show_spinner=False, max_entries=512)
def curve(_lists, split: str, search: Method, size: int, weights: str, tie: str, ks: tuple = KS) -> np.ndarray:
    """Accuracy at each k of one split's neighbour lists (cached by the arguments after _lists)."""
    return _lists.sweep(ks, weights=weights, tie_break=tie)


def best_k(acc: np.ndarray, ks=KS) -> int:
    """The k with the highest accuracy, the smallest on ties (as knn_core.evaluate.choose_k)."""
    return int(ks[int(np.argmax(acc))])


def k_sweep_page() -> None:
    settings = ui.current_settings()
    st.title("📈 Choosing k")
    st.caption(f"{ui.settings_caption(settings)} · k from 1 to {K_MAX}: one neighbour search per split, "
               "then only the vote changes")
    test = _val_and_test(settings)
    st.divider()
    _leave_one_out(settings, test)
    st.divider()
    _sizes(settings)
    st.divider()
    _compare(settings)


def _key(settings: ui.Settings, split: str, search: Method | None = None, weights: str | None = None):
    return (split, search or settings.search, settings.size, weights or settings.weights, settings.tie)


def _table_and_download(df: pd.DataFrame, name: str, key: str, height: int = 360) -> None:
    st.dataframe(df, hide_index=True, height=height, key=f"{key}_table",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in df.columns if df[c].dtype.kind == "f"})
    st.download_button("Download as CSV", df.to_csv(index=False), f"{name}.csv", "text/csv",
                       on_click="ignore", key=f"{key}_csv")


def _line(x, y, name, colour, dash=None) -> dict:
    return {"type": "scatter", "mode": "lines", "x": list(x), "y": [float(v) for v in y], "name": name,
            "line": {"color": colour, "width": 2, **({"dash": dash} if dash else {})},
            "hovertemplate": f"{name}<br>k=%{{x}}: %{{y:.4f}}<extra></extra>"}


def _marker(x, y, name, colour, text) -> dict:
    return {"type": "scatter", "mode": "markers+text", "x": [x], "y": [float(y)], "name": name,
            "marker": {"color": colour, "size": 11, "symbol": "diamond"}, "text": [text],
            "textposition": "bottom right", "hovertemplate": f"{name}: %{{y:.4f}}<extra></extra>"}


def _layout(title: str, x_title: str, **extra) -> dict:
    return {"title": {"text": title, "font": {"size": 14}}, "height": 380,
            "margin": {"l": 55, "r": 10, "t": 40, "b": 45},
            "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": "accuracy"}, "tickformat": ".1%"},
            "legend": {"orientation": "h", "y": -0.18}, **extra}


# ---------------------------------------------------------------------------- 1. validation + test


def _val_and_test(settings: ui.Settings):
    st.subheader("Accuracy against k: validation and test")
    got = ui.neighbor_lists([("val", settings.search, settings.size), ("test", settings.search, settings.size)],
                            key="sweep_start")
    if got is None:
        return None
    val_lists, test_lists = got
    val = curve(val_lists, *_key(settings, "val"))
    test = curve(test_lists, *_key(settings, "test"))
    k = best_k(val)
    k_hindsight = best_k(test)
    c = st.columns(4)
    c[0].metric("k chosen on validation", k)
    c[1].metric("its validation accuracy", f"{val[k - 1]:.4f}")
    c[2].metric("its test accuracy", f"{test[k - 1]:.4f}")
    c[3].metric("best test accuracy (hindsight)", f"{test[k_hindsight - 1]:.4f} (k={k_hindsight})",
                help="Choosing k by the test set itself: an optimistic, dishonest estimate.")
    left, right = st.columns([3, 2], gap="large")
    with left:
        fig = {"data": [_line(KS, val, "validation", VAL_COLOUR), _line(KS, test, "test", TEST_COLOUR),
                        _marker(k, test[k - 1], f"test accuracy at k={k}", TEST_COLOUR, f"k={k}: {test[k - 1]:.4f}")],
               "layout": _layout(f"k chosen on validation: {k}", "k",
                                 shapes=[{"type": "line", "x0": k, "x1": k, "yref": "paper", "y0": 0, "y1": 1,
                                          "line": {"color": VAL_COLOUR, "dash": "dot", "width": 1}}])}
        st.plotly_chart(fig, key="sweep_chart", config=CHART)
        n_fit = min(settings.size, len(ui.get_dataset().fit_labels))
        st.caption(f"Validation: the last {len(val_lists.query_labels):,} training digits, classified by "
                   f"{n_fit:,} training digits before them; k is chosen there, and only then measured on the "
                   "test set.")
    with right:
        _table_and_download(pd.DataFrame({"k": KS, "validation": val, "test": test}), "accuracy_by_k", "sweep")
    ui.show_command(ui.cli_command("sweep", settings, k=False, ks=f"1-{K_MAX}", split="val") + "\n"
                    + ui.cli_command("sweep", settings, k=False, ks=f"1-{K_MAX}", split="test"))
    return test


# ------------------------------------------------------------------------------- 2. leave-one-out


def _leave_one_out(settings: ui.Settings, test) -> None:
    st.subheader("Leave-one-out on the training set")
    st.caption("Each training digit classified by all the other training digits: a second honest way to "
               "pick k, using every training digit for both roles.")
    got = ui.neighbor_lists([("loo", settings.search, settings.size)], key="loo_start")
    if got is None:
        return
    loo = curve(got[0], *_key(settings, "loo"))
    k = best_k(loo)
    c = st.columns(4)
    c[0].metric("k chosen by leave-one-out", k)
    c[1].metric("its leave-one-out accuracy", f"{loo[k - 1]:.4f}")
    if test is not None:
        c[2].metric("test accuracy at this k", f"{test[k - 1]:.4f}")
    left, right = st.columns([3, 2], gap="large")
    with left:
        data = [_line(KS, loo, "leave-one-out", LOO_COLOUR)]
        if test is not None:
            data += [_line(KS, test, "test", TEST_COLOUR, dash="dot"),
                     _marker(k, test[k - 1], f"test accuracy at k={k}", TEST_COLOUR, f"k={k}: {test[k - 1]:.4f}")]
        st.plotly_chart({"data": data, "layout": _layout(f"k chosen by leave-one-out: {k}", "k")},
                        key="loo_chart", config=CHART)
    with right:
        _table_and_download(pd.DataFrame({"k": KS, "leave-one-out": loo}), "leave_one_out_by_k", "loo")
    ui.show_command(ui.cli_command("sweep", settings, k=False, ks=f"1-{K_MAX}", split="loo"))


# ---------------------------------------------------------------------------- 3. training-set size


def _sizes(settings: ui.Settings) -> None:
    st.subheader("Accuracy against training-set size")
    sizes = [n for n in ui.TRAIN_SIZES if n <= settings.size]
    st.caption(f"Test accuracy with class-balanced subsets of {', '.join(f'{n:,}' for n in sizes)} training "
               "digits (up to the size set in the sidebar).")
    got = ui.neighbor_lists([("test", settings.search, n) for n in sizes], key="sizes_start")
    if got is None:
        return
    acc = np.array([curve(lists, "test", settings.search, n, settings.weights, settings.tie, SIZE_KS)
                    for lists, n in zip(got, sizes)])
    left, right = st.columns([3, 2], gap="large")
    with left:
        data = [{"type": "scatter", "mode": "lines+markers", "x": sizes, "y": acc[:, j].tolist(), "name": f"k={k}",
                 "line": {"color": LINE_COLOURS[j % len(LINE_COLOURS)], "width": 2},
                 "hovertemplate": f"k={k}<br>%{{x:,}} digits: %{{y:.4f}}<extra></extra>"}
                for j, k in enumerate(SIZE_KS)]
        layout = _layout("Test accuracy against training-set size", "training digits (log scale)")
        layout["xaxis"].update(type="log", tickvals=sizes, ticktext=[f"{n:,}" for n in sizes])
        st.plotly_chart({"data": data, "layout": layout}, key="size_chart", config=CHART)
    with right:
        df = pd.DataFrame(acc, columns=[f"k={k}" for k in SIZE_KS])
        df.insert(0, "training digits", sizes)
        _table_and_download(df, "accuracy_by_size", "size", height=300)
    ui.show_command(_size_cli(settings, sizes))


def _size_cli(settings: ui.Settings, sizes) -> str:
    whole = dataclasses.replace(settings, size=max(ui.TRAIN_SIZES))  # --train-sizes replaces --train-size
    return ui.cli_command("sweep", whole, k=False, ks=",".join(map(str, SIZE_KS)),
                          train_sizes=",".join(map(str, sizes)))


# --------------------------------------------------------------------- 4. metrics and weightings


def _compare(settings: ui.Settings) -> None:
    st.subheader("Metrics, methods and weightings side by side")
    fmt = ui.search_label
    c1, c2 = st.columns([2, 1])
    options = [Method.classic(m, ui.MINKOWSKI_P) for m in METRICS] + [Method.parse(m) for m in ui.METHODS
                                                                        if m != ui.CLASSIC]
    metrics = c1.multiselect("Distances and methods", options, default=list(COMPARE_DEFAULT), format_func=fmt,
                             key="compare_metrics",
                             help="manhattan and minkowski search far slower than euclidean and cosine "
                                  "(minutes to an hour on the full training set), and so do the methods "
                                  "with shifts or IDM (minutes): you are asked first.")
    weights = c2.multiselect("Vote weights", WEIGHTS, default=list(WEIGHTS), key="compare_weights")
    if not metrics or not weights:
        st.info("Pick at least one distance and one weighting.", icon="👆")
        return
    requests = [(split, m, settings.size) for m in metrics for split in ("val", "test")]
    got = ui.neighbor_lists(requests, key="compare_start")
    if got is None:
        return
    lists = dict(zip(requests, got))
    rows, curves = [], {}
    for m in metrics:
        for w in weights:
            val = curve(lists[("val", m, settings.size)], *_key(settings, "val", m, w))
            test = curve(lists[("test", m, settings.size)], *_key(settings, "test", m, w))
            k = best_k(val)
            name = f"{fmt(m)}, {w}"
            curves[name] = val
            rows.append({"distance": fmt(m), "weights": w, "k chosen on validation": k,
                         "validation accuracy": val[k - 1], "test accuracy": test[k - 1]})
    summary = pd.DataFrame(rows)
    left, right = st.columns([3, 2], gap="large")
    with left:
        data = []
        for j, (name, val) in enumerate(curves.items()):
            colour = LINE_COLOURS[j % len(LINE_COLOURS)]
            k = best_k(val)
            data += [_line(KS, val, name, colour),
                     {**_marker(k, val[k - 1], f"{name}: k={k}", colour, ""), "showlegend": False}]
        st.plotly_chart({"data": data, "layout": _layout("Validation accuracy against k", "k")},
                        key="compare_chart", config=CHART)
    with right:
        df = pd.DataFrame({"k": KS, **curves})
        _table_and_download(df, "validation_accuracy_by_metric", "compare", height=300)
    st.dataframe(summary, hide_index=True, key="compare_summary",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("validation accuracy", "test accuracy")})
    st.caption("Each row: k chosen on validation, then its test accuracy.")
    ui.show_command("\n".join(ui.cli_command("sweep", ui.with_search(settings, m, weights=w), k=False,
                                              ks=f"1-{K_MAX}") for m in metrics for w in weights))


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(k_sweep_page)
