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

import numpy as np
import streamlit as st

import ui
from knn_core import EmptyDrawingError, ImageError, KNNClassifier
from knn_core.embedding import DigitMap, load_map, place

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
        st.markdown(_PRESENT_CSS, unsafe_allow_html=True)
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

    ui.show_neighbour_vote(digit, settings, k, left, middle, right, present=present)
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
            "marker": {"size": 6 if present else 4, "color": ui.LABEL_COLOURS[lab], "opacity": 0.55},
        })
    annotations = []
    for lab in range(10):  # each class' label at its median position
        cx, cy = np.median(m.coords[m.labels == lab], axis=0)
        annotations.append({"x": float(cx), "y": float(cy), "text": f"<b>{lab}</b>", "showarrow": False,
                            "font": {"size": 34 if present else 22, "color": ui.LABEL_COLOURS[lab]},
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
                       "line": {"color": ui.QUERY_COLOUR, "width": 1.5}, "showlegend": False})
        traces.append({
            "type": "scatter", "mode": "markers", "x": nx.tolist(), "y": ny.tolist(), "name": "its neighbours",
            "customdata": np.stack([m.indices[near], m.labels[near]], axis=1).tolist(),
            "hovertemplate": "neighbour: digit %{customdata[1]} · training #%{customdata[0]}<extra></extra>",
            "marker": {"size": 16 if present else 12, "color": [ui.LABEL_COLOURS[int(v)] for v in m.labels[near]],
                       "line": {"color": ui.QUERY_COLOUR, "width": 2}},
        })
        traces.append({"type": "scatter", "mode": "markers", "x": [float(at[0])], "y": [float(at[1])],
                       "name": "your digit", "hovertemplate": "your digit<extra></extra>",
                       "marker": {"symbol": "star", "size": 34 if present else 26, "color": "#FFD600",
                                  "line": {"color": ui.QUERY_COLOUR, "width": 2}}})
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
