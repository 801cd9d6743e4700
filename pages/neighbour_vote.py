"""The Neighbour vote page: the k nearest training digits around a drawn one, and the vote they cast.

Made to be projected in front of a class:

- the drawn digit in the centre of a "radar", its nearest training digits
  around it at a radius proportional to their distance, each framed in its
  label's colour, in the sector of its label; the voting circle passes just
  outside the k-th nearest, and the neighbours beyond it are faded;
- the tally next to it, and a k slider (the shared k, so it goes into the
  link) that visibly moves the circle;
- a 2-D map (t-SNE) of 5,000 training digits, on which the drawn digit lands
  at the distance-weighted mean of its nearest *mapped* digits (see
  knn_core.embedding.place); those are ringed and joined to it;
- presentation mode (``present=1`` in the link): large type and pictures.

Everything is in :func:`neighbour_vote_page`; tests call it with a drawing
instead of the canvas.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
import streamlit as st

import ui
from knn_core import EmptyDrawingError, ImageError, KNNClassifier
from knn_core.embedding import DigitMap, load_map, place

# A colour per digit (Tableau 10: distinct for most colour-blind viewers, readable on a projector).
LABEL_COLOURS = ("#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
                 "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#7F7F7F")
QUERY_COLOUR = "#111111"
EXTRA_SHOWN = 5  # neighbours shown beyond the k-th, faded: who would vote with a larger k
MAP_NEIGHBOURS = 10  # mapped digits the drawing is placed among
PRESENT_PARAM = "present"
CANVAS_KEY = "vote_canvas"

# Presentation mode: everything larger (Streamlit sizes text in rem), for the back of a room.
_PRESENT_CSS = """<style>
html { font-size: 24px; }
[data-testid="stMetricValue"] { font-size: 5rem !important; line-height: 1.1; }
[data-testid="stSidebar"] { font-size: 16px; }
</style>"""


def neighbour_vote_page(image: np.ndarray | None = None) -> None:
    """Render the page.  image: an RGBA/RGB/grey drawing to use instead of the canvas (tests)."""
    settings = ui.current_settings()
    head, switch = st.columns([3, 1], vertical_alignment="bottom")
    with switch:
        present = _presentation_toggle()
    if present:
        # Style-only st.html goes to Streamlit's event container, not the page: the elements below
        # keep their places, so the canvas is not mounted afresh (blank) while its drawing is still
        # the one classified. st.markdown here would shift every element after it.
        st.html(_PRESENT_CSS)
    # The projector's width goes to the vote: the sidebar folds away when presentation mode is turned
    # on (or a present=1 link is opened) and comes back when it is turned off. Streamlit acts only on
    # a change of this setting, so a teacher can still open the sidebar meanwhile.
    st.set_page_config(initial_sidebar_state="collapsed" if present else "auto")
    with head:
        st.title("🗳️ Neighbour vote")

    left, middle, right = st.columns([3, 6, 3], gap="medium")
    with middle:
        k = _k_slider(settings)
    if k != settings.k:  # the slider moved in this very run (tests); the URL follows on the next
        settings = dataclasses.replace(settings, k=k)
    with left:
        st.caption("Draw a digit; the vote updates when you lift the pen.")
        st.write("")  # room for the canvas' floating toolbar
        if image is None:
            image = ui.drawing_canvas(key=CANVAS_KEY)
        digit = _digit(image)

    if digit is None:
        with middle:
            st.info("Draw a digit in the box: its nearest training digits will gather around it here.",
                    icon="✏️")
        _show_map(None, settings, present)
        return

    clf = ui.classifier(settings)
    nb = ui.nearest(clf, digit, settings, n=min(ui.K_MAX, k + EXTRA_SHOWN, clf.n_samples_fit_))
    dist, rows, labels = nb.distances, nb.rows, nb.labels
    vote = clf.explain(dist[:k], nb.indices[:k])

    with left:
        st.image(ui.digit_tile(digit, 5 if present else 4), caption="What the model sees (28×28)",
                 output_format="PNG")
    with middle:
        st.plotly_chart(radial_figure(digit, labels, dist, rows, k, present),
                        config={"displayModeBar": False}, key="radial")
        st.caption(f"Your digit in the centre; each training digit at a distance from it proportional to "
                   f"how different it is ({settings.distance_label}), framed in "
                   f"its label's colour. The {k} inside the dashed circle vote; the faded ones outside "
                   f"would vote with a larger k.")
    with right:
        st.metric("Prediction", vote.winner)
        st.plotly_chart(tally_figure(vote, clf.classes_, settings.weights, present),
                        config={"displayModeBar": False}, key="tally")
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.caption(_tally_words(labels[:k], vote.winner, settings))
    _show_map(digit, settings, present)


# ------------------------------------------------------------------------------ controls


def _presentation_toggle() -> bool:
    """The presentation-mode toggle, mirrored in the URL as present=1 / present=0."""
    state = st.session_state
    raw = st.query_params.get(PRESENT_PARAM)
    if raw is not None and raw != state.get("_present_url"):
        if raw in ("1", "0", "true", "false"):
            state["present"] = raw in ("1", "true")
        else:
            st.warning(f"Ignoring URL parameter **{PRESENT_PARAM}**: {ui.shown(raw)} is not 1 or 0; presentation "
                       "mode stays as it was.", icon="⚠️")
    on = st.toggle("Presentation mode", key="present",
                   help="Large type and pictures, for projecting in front of a class. "
                        "It is in the link (present=1).")
    value = "1" if on else "0"
    if st.query_params.get(PRESENT_PARAM) != value:
        st.query_params[PRESENT_PARAM] = value
    state["_present_url"] = value
    return on


def _sync_k() -> None:
    """The page's k slider moved: hand the value to the shared setting (the sidebar and the URL)."""
    ui.set_setting("k", st.session_state["vote_k"])


def _k_slider(settings: ui.Settings) -> int:
    st.session_state["vote_k"] = settings.k  # follow the sidebar (and the link)
    return st.slider("k: how many neighbours vote", ui.K_MIN, ui.K_MAX, key="vote_k", on_change=_sync_k,
                     help="The same k as in the sidebar; it is in the link.")


def _digit(image) -> np.ndarray | None:
    if image is None:
        return None
    try:
        return ui.drawing_to_mnist(image)
    except EmptyDrawingError:
        return None
    except ImageError as exc:
        st.error(f"Can't use this drawing: {ui.md_escape(exc)}", icon="🚫")
        return None


# ------------------------------------------------------------------------------ the radar


@lru_cache(maxsize=4096)
def _train_tile_uri(row: int, scale: int) -> str:
    return ui.png_data_uri(ui.enlarge(ui.get_dataset().train_images[row], scale))


def radial_figure(digit: np.ndarray, labels: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int,
                  present: bool = False) -> dict:
    """The query in the centre, each neighbour at radius = its distance, grouped by label around it.

    Every neighbour gets an equal slice of the circle; the slices of one
    label are next to each other (labels in order, clockwise from the top),
    so the winning label's group is visibly the largest inside the circle.
    The voting circle passes halfway between the k-th and the (k+1)-th
    distance, so exactly the k voters are inside it.
    """
    n = len(dist)
    r_max = float(dist.max()) if n and dist.max() > 0 else 1.0
    order = np.lexsort((np.arange(n), labels))  # by label, then nearest first
    slot = np.empty(n)
    slot[order] = np.arange(n)
    angles = np.radians(90 - 360 * (slot + 0.5) / max(n, 1))
    x, y = dist * np.cos(angles), dist * np.sin(angles)
    r_typ = float(np.median(dist)) if n else 1.0
    size = min(0.85 * 2 * math.pi * r_typ / max(n, 1), 0.3 * r_max)  # picture side, data units

    images_layout, shapes = [], []
    for i in range(n):
        voter = i < k
        colour = LABEL_COLOURS[int(labels[i]) % 10]
        images_layout.append({
            "source": _train_tile_uri(int(rows[i]), 4), "xref": "x", "yref": "y",
            "x": float(x[i]), "y": float(y[i]), "sizex": size, "sizey": size,
            "xanchor": "center", "yanchor": "middle", "layer": "above", "opacity": 1.0 if voter else 0.3,
        })
        h = size / 2 * 1.08
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": float(x[i] - h), "x1": float(x[i] + h),
                       "y0": float(y[i] - h), "y1": float(y[i] + h), "layer": "above",
                       "line": {"color": colour, "width": 5 if voter else 2, "dash": "solid" if voter else "dot"},
                       "opacity": 1.0 if voter else 0.45})
    # the query, larger, in the centre
    q = max(size * 1.3, min(0.45 * r_max, float(dist.min()) - size * 0.6)) if n else size
    images_layout.append({"source": ui.png_data_uri(ui.enlarge(ui.to_uint8(digit), 4)), "xref": "x", "yref": "y",
                          "x": 0.0, "y": 0.0, "sizex": q, "sizey": q, "xanchor": "center",
                          "yanchor": "middle", "layer": "above"})
    shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": -q / 2 * 1.06, "x1": q / 2 * 1.06,
                   "y0": -q / 2 * 1.06, "y1": q / 2 * 1.06, "layer": "above",
                   "line": {"color": QUERY_COLOUR, "width": 6}})
    # the voting circle
    kk = min(k, n)
    r_vote = float(dist[kk - 1] if kk == n else (dist[kk - 1] + dist[kk]) / 2)
    shapes.insert(0, {"type": "circle", "xref": "x", "yref": "y", "x0": -r_vote, "x1": r_vote,
                      "y0": -r_vote, "y1": r_vote, "layer": "below", "fillcolor": "rgba(46,125,50,0.07)",
                      "line": {"color": "#2E7D32", "width": 3, "dash": "dash"}})
    font = 22 if present else 14
    annotations = [{"x": 0, "y": 1, "xref": "paper", "yref": "paper", "xanchor": "left", "yanchor": "top",
                    "text": f"<b>k = {k}</b>: {k} inside the circle vote", "showarrow": False,
                    "font": {"size": font, "color": "#2E7D32"}}]
    # hover: one invisible marker per neighbour
    text = [f"#{i + 1} · digit {int(labels[i])} · distance {dist[i]:.4g} · training #{int(rows[i])}"
            + (" · votes" if i < k else " · outside the circle") for i in range(n)]
    traces = [{
        "type": "scatter", "mode": "markers", "x": x.tolist(), "y": y.tolist(), "text": text,
        "hovertemplate": "%{text}<extra></extra>", "showlegend": False,
        "marker": {"size": 30 if present else 22, "opacity": 0},
    }]
    # legend: one entry per label on the radar
    for lab in sorted(set(labels.tolist())):
        traces.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": f"digit {lab}",
                       "marker": {"symbol": "square-open", "size": 16, "line": {"width": 4},
                                  "color": LABEL_COLOURS[lab % 10]}, "hoverinfo": "skip"})
    lim = r_max + size * 0.8
    axis = {"visible": False, "range": [-lim, lim], "fixedrange": True}
    return {
        "data": traces,
        "layout": {
            "height": 720 if present else 520, "margin": {"l": 5, "r": 5, "t": 10, "b": 5},
            "xaxis": axis, "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1},
            "images": images_layout, "shapes": shapes, "annotations": annotations,
            "legend": {"orientation": "h", "y": -0.02, "font": {"size": font}},
            "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": font},
        },
    }


def tally_figure(vote, classes, weights: str, present: bool = False) -> dict:
    """The vote of each class as bars in the label colours; the winner's bar outlined."""
    cls = classes.tolist()
    weighted = weights == "distance"
    font = 22 if present else 14
    return {
        "data": [{
            "type": "bar", "x": [str(c) for c in cls], "y": vote.scores.tolist(),
            "marker": {"color": [LABEL_COLOURS[c % 10] for c in cls],
                       "line": {"color": [QUERY_COLOUR if c == vote.winner else "rgba(0,0,0,0)" for c in cls],
                                "width": 3}},
            "text": [f"{s:.3g}" if s else "" for s in vote.scores], "textposition": "outside",
            "hovertemplate": "digit %{x}: %{y:.3g}<extra></extra>",
        }],
        "layout": {
            "title": {"text": "Tally (sum of 1/distance)" if weighted else "Tally (votes)",
                      "font": {"size": font}},
            "height": 420 if present else 300, "margin": {"l": 35, "r": 5, "t": 50, "b": 35},
            "xaxis": {"type": "category", "tickmode": "array", "tickvals": [str(c) for c in cls],
                      "tickfont": {"size": font}},
            "yaxis": {"rangemode": "tozero", "tickfont": {"size": font * 0.8}},
            "showlegend": False, "font": {"size": font},
        },
    }


def _tally_words(voter_labels: np.ndarray, winner: int, settings: ui.Settings) -> str:
    counts = np.bincount(voter_labels, minlength=10)
    parts = ", ".join(f"{d}×{c}" for d, c in sorted(enumerate(counts.tolist()), key=lambda t: (-t[1], t[0])) if c)
    how = "each weighs 1/distance" if settings.weights == "distance" else "one vote each"
    return f"{len(voter_labels)} neighbours vote ({how}): {parts} → **{winner}**."


# ------------------------------------------------------------------------------ the map


@st.cache_resource(show_spinner="Loading the map of the training set…")
def get_map() -> DigitMap:
    """The 2-D map (shipped t-SNE, or a PCA map cached on disk), once per server process."""
    ds = ui.get_dataset()
    return load_map(ds.train_images, ds.train_labels)


@st.cache_resource(show_spinner=False)
def get_map_search(metric: str) -> KNNClassifier:
    """A classifier over the mapped digits only, to place a drawing among them."""
    m = get_map()
    ds = ui.get_dataset()
    return KNNClassifier(n_neighbors=MAP_NEIGHBOURS, metric=metric, p=ui.MINKOWSKI_P).fit(
        ds.train_images[m.indices], m.labels)


@st.cache_resource(show_spinner=False)
def _map_base(present: bool) -> dict:
    """The map's 5,000 dots, one trace per label (built once; each run adds the drawing to a copy)."""
    m = get_map()
    traces = []
    for lab in range(10):
        sel = np.flatnonzero(m.labels == lab)
        traces.append({
            "type": "scattergl", "mode": "markers", "name": str(lab),
            # numpy arrays: plotly sends them as typed arrays, ~20x faster than lists of 5,000 floats
            "x": m.coords[sel, 0].copy(), "y": m.coords[sel, 1].copy(),
            "customdata": np.stack([m.indices[sel], m.labels[sel]], axis=1).astype(np.int32),
            "hovertemplate": "digit %{customdata[1]} · training #%{customdata[0]}<extra></extra>",
            "marker": {"size": 6 if present else 4, "color": LABEL_COLOURS[lab], "opacity": 0.55},
        })
    annotations = []
    for lab in range(10):  # each class' label at its median position
        cx, cy = np.median(m.coords[m.labels == lab], axis=0)
        annotations.append({"x": float(cx), "y": float(cy), "text": f"<b>{lab}</b>", "showarrow": False,
                            "font": {"size": 34 if present else 22, "color": LABEL_COLOURS[lab]},
                            "bgcolor": "rgba(255,255,255,0.6)"})
    return {"data": traces, "annotations": annotations}


def map_figure(m: DigitMap, at: np.ndarray | None, near: np.ndarray | None, present: bool = False) -> dict:
    base = _map_base(present)
    traces = list(base["data"])
    if at is not None and near is not None:
        nx, ny = m.coords[near, 0], m.coords[near, 1]
        spokes_x, spokes_y = [], []
        for px, py in zip(nx.tolist(), ny.tolist()):
            spokes_x += [float(at[0]), px, None]
            spokes_y += [float(at[1]), py, None]
        traces.append({"type": "scatter", "mode": "lines", "x": spokes_x, "y": spokes_y, "hoverinfo": "skip",
                       "line": {"color": QUERY_COLOUR, "width": 1.5}, "showlegend": False})
        traces.append({
            "type": "scatter", "mode": "markers", "x": nx.tolist(), "y": ny.tolist(), "name": "its neighbours",
            "customdata": np.stack([m.indices[near], m.labels[near]], axis=1).tolist(),
            "hovertemplate": "neighbour: digit %{customdata[1]} · training #%{customdata[0]}<extra></extra>",
            "marker": {"size": 16 if present else 12, "color": [LABEL_COLOURS[int(v)] for v in m.labels[near]],
                       "line": {"color": QUERY_COLOUR, "width": 2}},
        })
        traces.append({"type": "scatter", "mode": "markers", "x": [float(at[0])], "y": [float(at[1])],
                       "name": "your digit", "hovertemplate": "your digit<extra></extra>",
                       "marker": {"symbol": "star", "size": 34 if present else 26, "color": "#FFD600",
                                  "line": {"color": QUERY_COLOUR, "width": 2}}})
    return {
        "data": traces,
        "layout": {
            "height": 700 if present else 520, "margin": {"l": 5, "r": 5, "t": 10, "b": 5},
            "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x", "scaleratio": 1},
            "annotations": base["annotations"], "legend": {"title": {"text": "digit"},
                                                           "font": {"size": 20 if present else 13}},
            "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)", "dragmode": "pan",
            "hoverlabel": {"font": {"size": 20 if present else 13}},
        },
    }


def _show_map(digit: np.ndarray | None, settings: ui.Settings, present: bool) -> None:
    m = get_map()
    st.subheader("Where your digit lands among the training digits")
    method = "t-SNE" if m.method == "tsne" else "PCA"
    st.caption(f"A {method} map of {len(m):,} training digits (a class-balanced sample), one dot each, "
               f"coloured by label. Your digit ★ is placed at the distance-weighted mean (weights 1/d) "
               f"of the positions of its {MAP_NEIGHBOURS} nearest digits on the map, which are ringed; "
               "the map has no place of its own for new digits. Hover over a dot for its label; click "
               "one to see it.")
    if m.note:
        st.warning(m.note, icon="🗺️")
    ui.show_cache_warnings()
    at = near = None
    if digit is not None:
        search = get_map_search(settings.metric)
        d, near = search.kneighbors(digit[None])
        d, near = d[0], near[0]
        at = place(m, d, near)
    fig_col, pick_col = st.columns([5, 1])
    with fig_col:
        event = st.plotly_chart(map_figure(m, at, near, present), key="map", on_select="rerun",
                                selection_mode="points", config={"displayModeBar": False, "scrollZoom": True})
    with pick_col:
        row = ui.valid_index(_clicked_row(event), len(ui.get_dataset().train_labels))
        if row is None:
            st.caption("Click a dot to see its digit here.")
        else:
            ds = ui.get_dataset()
            st.image(ui.digit_tile(ds.train_images[row], 6 if present else 4),
                     caption=f"training #{row}: a {int(ds.train_labels[row])}", output_format="PNG")


def _clicked_row(event) -> int | None:
    try:
        points = event.selection.points
    except AttributeError:
        return None
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)) and cd:
            return cd[0]  # checked by the caller (ui.valid_index): it comes from the browser
    return None


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(neighbour_vote_page)
