"""The Neighbour vote page: the k nearest training digits around a drawn one, and the vote they cast.

Made to be projected in front of a class:

- the drawn digit in the centre of a "radar": the k nearest training digits
  inside the voting circle, the next few outside it (nearer ones nearer the
  centre), each framed in its label's colour, in the sector of its label;
- the tally next to it, the answer at every k up to 15, and a k slider (the
  shared k, so it goes into the link) that moves digits in and out of the circle;
- ready-made examples: test digits whose answer changes with k
  (knn_core.evaluate.k_flips), shown instead of the drawing with one click;
- a 2-D map (t-SNE) of 5,000 training digits, on which the drawn digit lands
  at the distance-weighted mean of its nearest *mapped* digits (see
  knn_core.embedding.place); those are ringed and joined to it;
- presentation mode (``present=1`` in the link): large type and pictures.

Everything is in :func:`neighbour_vote_page`; tests call it with a drawing
instead of the canvas.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import streamlit as st

import ui
from knn_core import KNNClassifier, estimate_seconds, is_cached
from knn_core.embedding import DigitMap, load_map, place
from knn_core.evaluate import k_flips

MAP_NEIGHBOURS = 10  # mapped digits the drawing is placed among
EXAMPLE_KS = range(1, 16)  # ready-made examples: test digits whose answer changes over these k
EXAMPLE_COUNT = 6
EXAMPLE_KEY = "vote_example"  # session state: the example shown instead of the drawing, if any
PRESENT_PARAM = "present"
CANVAS_KEY = "vote_canvas"

# Presentation mode: everything larger (Streamlit sizes text in rem), for the back of a room.
_PRESENT_CSS = """<span class="presentation-mode" hidden></span><style>
html { font-size: 24px; }
[data-testid="stMetricValue"] { font-size: 5rem !important; line-height: 1.1; }
[data-testid="stSidebar"] { font-size: 16px; }
</style>"""


PRESENT_KEY, READY_KEY = "present", "present_ready"  # the toggle's key; the style is in the browser
# Presses the button once the style element is drawn (this script runs only then).
_PRESS_WHEN_STYLED = """<script>
(function press(tries) {
  const button = document.querySelector(".st-key-present_ready_button button");
  if (button) button.click(); else if (tries > 0) setTimeout(function () { press(tries - 1); }, 50);
})(200);
</script>"""


def neighbour_vote_page(image: np.ndarray | None = None) -> None:
    """Render the page.  image: an RGBA/RGB/grey drawing to use instead of the canvas (tests)."""
    settings = ui.current_settings()
    # The large type first, before anything of the page is drawn (it used to come after the title,
    # which showed small, then jumped), in a slot that is always there, filled or not: the elements
    # below keep their places, so the canvas is not mounted afresh (blank) while its drawing is
    # still the one classified. (A style-only st.html reaches the browser after the page's first
    # elements; an st.markdown that comes and goes shifts every element after it.)
    style_slot = st.empty()
    styled = _presentation_asked()
    if styled and PRESENT_KEY not in st.session_state and not st.session_state.get(READY_KEY):
        # A link with present=1, the page's first run in this session: a browser draws an st.html (or an
        # st.markdown with HTML) only once it has fetched the code for it, on its first one, while the
        # title and the rest show at once: in a fresh browser the page stood in small type for 1-2 s.
        # So this run draws the style alone, with a script that presses "Show the page" once the style
        # is in place (one round trip; without JavaScript the teacher presses it).
        style_slot.html(_PRESENT_CSS + _PRESS_WHEN_STYLED, unsafe_allow_javascript=True)
        st.set_page_config(initial_sidebar_state="collapsed")
        st.button("Show the page", key=READY_KEY + "_button", on_click=_style_ready)
        return
    if styled:
        style_slot.html(_PRESENT_CSS)
    head, switch = st.columns([3, 1], vertical_alignment="bottom")
    with switch:
        present = _presentation_toggle()
    if present != styled:
        style_slot.html(_PRESENT_CSS) if present else style_slot.empty()
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
        digit = ui.drawn_digit(image)
        example = _current_example(image)
        if example is not None:
            ds = ui.get_dataset()
            digit = ds.test_images[example]
            st.info(f"Showing the example: test digit #{example}, labelled {int(ds.test_labels[example])}. "
                    "Draw in the box to use your drawing again.", icon="📚")
            st.button("Back to my drawing", key="vote_example_off", on_click=_drop_example)

    if digit is None:
        with middle:
            st.info("Draw a digit in the box, or pick a ready-made example below: its nearest training digits "
                    "will gather around it here.", icon="✏️")
        _show_examples(settings, present)
        _show_map(None, settings, present)
        return

    ui.show_neighbour_vote(digit, settings, k, left, middle, right, present=present)
    _show_examples(settings, present)
    _show_map(digit, settings, present)


# ------------------------------------------------------------------------------ controls


def _presentation_asked() -> bool:
    """Whether this run is in presentation mode, before the toggle is drawn: a new link's present=1/0,
    else the toggle's value."""
    raw = st.query_params.get(PRESENT_PARAM)
    if raw is not None and raw != st.session_state.get("_present_url") and raw in ("1", "0", "true", "false"):
        return raw in ("1", "true")
    return bool(st.session_state.get(PRESENT_KEY, False))


def _style_ready() -> None:
    st.session_state[READY_KEY] = True


def _presentation_toggle() -> bool:
    """The presentation-mode toggle, mirrored in the URL as present=1 / present=0."""
    state = st.session_state
    raw = st.query_params.get(PRESENT_PARAM)
    if raw is not None and raw != state.get("_present_url"):
        if raw in ("1", "0", "true", "false"):
            state[PRESENT_KEY] = raw in ("1", "true")
        else:
            st.warning(f"Ignoring URL parameter **{PRESENT_PARAM}**: {ui.shown(raw)} is not 1 or 0; presentation "
                       "mode stays as it was.", icon="⚠️")
    on = st.toggle("Presentation mode", key=PRESENT_KEY,
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


# ------------------------------------------------------------------------------ ready-made examples


def _current_example(image) -> int | None:
    """The example test digit to show instead of the drawing: picked, and no stroke since (test index)."""
    state = st.session_state
    drawing = None if image is None else hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8).hexdigest()
    state["_vote_drawing"] = drawing
    example = state.get(EXAMPLE_KEY)
    if example is None:
        return None
    if example["drawing"] != drawing:  # drawn (or cleared) since the example was picked: the drawing wins
        del state[EXAMPLE_KEY]
        return None
    return example["index"]


def _pick_example(index: int) -> None:
    st.session_state[EXAMPLE_KEY] = {"index": index, "drawing": st.session_state.get("_vote_drawing")}


def _drop_example() -> None:
    st.session_state.pop(EXAMPLE_KEY, None)


@st.cache_data(max_entries=32, show_spinner=False)
def _k_flips(_lists, search: str, size: int, weights: str, tie: str) -> dict:
    """knn_core.evaluate.k_flips of the test lists of one view (cached by the arguments after _lists)."""
    return k_flips(_lists, EXAMPLE_KS, EXAMPLE_COUNT, weights=weights, tie_break=tie)


def _answer_runs(ks, winners) -> str:
    """'k 1–4: 3 · k 5–15: 5': the answers as runs of k."""
    runs, start = [], 0
    for i in range(1, len(ks) + 1):
        if i == len(ks) or winners[i] != winners[start]:
            span = f"{ks[start]}" if i - 1 == start else f"{ks[start]}–{ks[i - 1]}"
            runs.append(f"k {span}: **{int(winners[start])}**")
            start = i
    return " · ".join(runs)


def _show_examples(settings: ui.Settings, present: bool) -> None:
    """A row of test digits whose answer changes with k, each one click from the radar."""
    with st.container(key="vote_examples"):
        st.markdown("**Ready-made examples:** test digits whose answer changes as k grows. Pick one, then move k.")
        ds = ui.get_dataset()
        search = settings.search
        asked = st.session_state.get("vote_examples_asked", False)
        if not asked and not is_cached(ds, search, "test", train_size=settings.size, k_max=ui.K_MAX):
            seconds = estimate_seconds(ds, search, "test", settings.size)
            st.button(f"Find them (searches the {len(ds.test_labels):,} test digits, about {ui.fmt_seconds(seconds)})",
                      key="vote_examples_find", on_click=lambda: st.session_state.update(vote_examples_asked=True))
            return
        found = ui.neighbor_lists([("test", search, settings.size)], key="vote_examples_start")
        if found is None:
            return
        flips = _k_flips(found[0], str(search), settings.size, settings.weights, settings.tie)
        if not len(flips["index"]):
            st.caption("No test digit changes its answer between k=1 and k=15 with these settings.")
            return
        for col, i, label, winners in zip(st.columns(EXAMPLE_COUNT), flips["index"].tolist(),
                                          flips["label"].tolist(), flips["winners"]):
            with col:
                st.image(ui.digit_tile(ds.test_images[i], 3 if present else 2), output_format="PNG")
                st.caption(f"#{i}, labelled {label}: {_answer_runs(flips['ks'].tolist(), winners.tolist())}")
                st.button("Show it", key=f"vote_example_{i}", on_click=_pick_example, args=(i,))


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
