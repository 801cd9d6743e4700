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
import math
from functools import lru_cache

import numpy as np
import streamlit as st

import ui
from knn_core import EmptyDrawingError, ImageError, KNNClassifier, estimate_seconds, is_cached
from knn_core.embedding import DigitMap, load_map, place
from knn_core.evaluate import k_flips

# A colour per digit (Tableau 10: distinct for most colour-blind viewers, readable on a projector).
LABEL_COLOURS = ("#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
                 "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#17BECF")  # 9: cyan, not Tableau's grey (it read as faded)
QUERY_COLOUR = "#111111"
EXTRA_SHOWN = 5  # neighbours shown beyond the k-th, faded: who would vote with a larger k
MAP_NEIGHBOURS = 10  # mapped digits the drawing is placed among
STRIP_K = 15  # the answer at every k up to this one is shown under the tally
EXAMPLE_KS = range(1, 16)  # ready-made examples: test digits whose answer changes over these k
EXAMPLE_COUNT = 6
EXAMPLE_KEY = "vote_example"  # session state: the example shown instead of the drawing, if any
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
    # The large type first, before anything of the page is drawn (it used to come after the title,
    # which showed small, then jumped), in a slot that is always there, filled or not: the elements
    # below keep their places, so the canvas is not mounted afresh (blank) while its drawing is
    # still the one classified. (A style-only st.html reaches the browser after the page's first
    # elements; an st.markdown that comes and goes shifts every element after it.)
    style_slot = st.empty()
    styled = _presentation_asked()
    if styled:
        style_slot.markdown(_PRESENT_CSS, unsafe_allow_html=True)
    head, switch = st.columns([3, 1], vertical_alignment="bottom")
    with switch:
        present = _presentation_toggle()
    if present != styled:
        style_slot.markdown(_PRESENT_CSS if present else "", unsafe_allow_html=True)
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

    clf = ui.classifier(settings)
    nb = ui.nearest(clf, digit, settings, n=min(ui.K_MAX, max(k + EXTRA_SHOWN, STRIP_K), clf.n_samples_fit_))
    shown = min(k + EXTRA_SHOWN, len(nb.distances))
    dist, rows, labels = nb.distances[:shown], nb.rows[:shown], nb.labels[:shown]
    vote = clf.explain(dist[:k], nb.indices[:k])

    with left:
        st.image(ui.digit_tile(digit, 5 if present else 4), caption="What the model sees (28×28)",
                 output_format="PNG")
    with middle:
        st.plotly_chart(radial_figure(digit, labels, dist, rows, k, present),
                        config={"displayModeBar": False}, key="radial")
        st.caption(f"Your digit in the centre. The {_plural(k, 'nearest training digit')} ({settings.distance_label}) "
                   f"vote from inside the circle, nearest closest to the centre; the next {shown - min(k, shown)} "
                   "wait outside it and would vote with a larger k. Each is framed in its label's colour.")
    with right:
        st.metric("Prediction", vote.winner)
        st.plotly_chart(tally_figure(vote, clf.classes_, settings.weights, present),
                        config={"displayModeBar": False}, key="tally")
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.caption(_tally_words(labels[:k], vote.winner, settings))
        strip_ks = range(1, min(len(nb.distances), max(STRIP_K, k)) + 1)
        answers = [ui.classifier(dataclasses.replace(settings, k=j)).explain(nb.distances[:j], nb.indices[:j]).winner
                   for j in strip_ks]  # a classifier per k: its vote counts only its own k neighbours
        st.html(answers_by_k_html(list(strip_ks), answers, k))
    _show_examples(settings, present)
    _show_map(digit, settings, present)


# ------------------------------------------------------------------------------ controls


def _presentation_asked() -> bool:
    """Whether this run is in presentation mode, before the toggle is drawn: a new link's present=1/0,
    else the toggle's value."""
    raw = st.query_params.get(PRESENT_PARAM)
    if raw is not None and raw != st.session_state.get("_present_url") and raw in ("1", "0", "true", "false"):
        return raw in ("1", "true")
    return bool(st.session_state.get("present", False))


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


# The radar's rings, in units of its radius: voters between VOTER_RING's two radii (nearest innermost),
# the voting circle at VOTE_RADIUS, the neighbours that do not vote between OUTSIDE_RING's.
VOTER_RING = (0.50, 0.70)
VOTE_RADIUS = 0.82
OUTSIDE_RING = (0.97, 1.12)


def radar_radii(dist: np.ndarray, k: int) -> np.ndarray:
    """Where each neighbour sits, nearest first: the k voters inside the voting circle, the others outside.

    Raw distances of near neighbours are all alike (one ring, cut by the
    circle), so each group is spread over its own ring instead, in the order
    and proportion of its distances: nearer is still nearer the centre.
    """
    dist = np.asarray(dist, dtype=float)
    radii = np.empty(len(dist))
    for part, (r0, r1) in ((slice(0, k), VOTER_RING), (slice(k, None), OUTSIDE_RING)):
        d = dist[part]
        if len(d):
            span = float(d.max() - d.min())
            radii[part] = r0 + (r1 - r0) * ((d - d.min()) / span if span > 0 else 0.0)
    return radii


def radial_figure(digit: np.ndarray, labels: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int,
                  present: bool = False) -> dict:
    """The query in the centre, the k voters inside the voting circle, the next few outside it.

    In each ring every neighbour gets an equal slice, the slices of one label
    next to each other (labels in order, clockwise from the top), so the
    winning label's group is visibly the largest inside the circle.
    """
    n = len(dist)
    kk = min(k, n)
    radius = radar_radii(dist, kk)
    angles = np.empty(n)
    for part in (np.arange(kk), np.arange(kk, n)):
        order = part[np.lexsort((part, labels[part]))]  # by label, then nearest first
        angles[order] = np.radians(90 - 360 * (np.arange(len(order)) + 0.5) / max(len(order), 1))
    x, y = radius * np.cos(angles), radius * np.sin(angles)
    # picture side: the voters' ring shared out, never more than a fifth of the radius
    size = min(0.2, 0.85 * 2 * math.pi * sum(VOTER_RING) / 2 / max(kk, 1),
               0.85 * 2 * math.pi * OUTSIDE_RING[0] / max(n - kk, 1))

    images_layout, shapes = [], []
    for i in range(n):
        voter = i < kk
        colour = LABEL_COLOURS[int(labels[i]) % 10]
        images_layout.append({
            "source": _train_tile_uri(int(rows[i]), 4), "xref": "x", "yref": "y",
            "x": float(x[i]), "y": float(y[i]), "sizex": size, "sizey": size,
            "xanchor": "center", "yanchor": "middle", "layer": "above", "opacity": 1.0 if voter else 0.55,
        })
        h = size / 2 * 1.08
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": float(x[i] - h), "x1": float(x[i] + h),
                       "y0": float(y[i] - h), "y1": float(y[i] + h), "layer": "above",
                       "line": {"color": colour, "width": 5 if voter else 3}})
    # the query, larger, in the centre
    q = 0.44
    images_layout.append({"source": ui.png_data_uri(ui.enlarge(ui.to_uint8(digit), 4)), "xref": "x", "yref": "y",
                          "x": 0.0, "y": 0.0, "sizex": q, "sizey": q, "xanchor": "center",
                          "yanchor": "middle", "layer": "above"})
    shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": -q / 2 * 1.06, "x1": q / 2 * 1.06,
                   "y0": -q / 2 * 1.06, "y1": q / 2 * 1.06, "layer": "above",
                   "line": {"color": QUERY_COLOUR, "width": 6}})
    # the voting circle: the voters inside, shaded; the others outside
    shapes.insert(0, {"type": "circle", "xref": "x", "yref": "y", "x0": -VOTE_RADIUS, "x1": VOTE_RADIUS,
                      "y0": -VOTE_RADIUS, "y1": VOTE_RADIUS, "layer": "below",
                      "fillcolor": "rgba(46,125,50,0.10)", "line": {"color": "#2E7D32", "width": 4}})
    font = 22 if present else 14
    annotations = [{"x": 0, "y": 1, "xref": "paper", "yref": "paper", "xanchor": "left", "yanchor": "top",
                    "text": f"<b>k = {k}</b>: the {_plural(kk, 'nearest neighbour')} inside the circle vote",
                    "showarrow": False, "font": {"size": font, "color": "#2E7D32"}}]
    if n > kk:
        annotations.append({"x": 0, "y": 0, "xref": "paper", "yref": "paper", "xanchor": "left",
                            "yanchor": "bottom", "text": f"outside: the next {n - kk}, who would vote with a larger k",
                            "showarrow": False, "font": {"size": font * 0.8, "color": "#444"}})
    # hover: one invisible marker per neighbour
    text = [f"#{i + 1} · digit {int(labels[i])} · distance {dist[i]:.4g} · training #{int(rows[i])}"
            + (" · votes" if i < kk else " · outside the circle") for i in range(n)]
    traces = [{
        "type": "scatter", "mode": "markers", "x": x.tolist(), "y": y.tolist(), "text": text,
        "hovertemplate": "%{text}<extra></extra>", "showlegend": False,
        "marker": {"size": 30 if present else 22, "opacity": 0},
    }]
    # legend at the side (not below: it kept the diagram's bottom off a 1080-pixel screen)
    for lab in sorted(set(labels.tolist())):
        traces.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": f"{lab}",
                       "marker": {"symbol": "square-open", "size": 16, "line": {"width": 4},
                                  "color": LABEL_COLOURS[lab % 10]}, "hoverinfo": "skip"})
    lim = OUTSIDE_RING[1] + size * 0.7
    axis = {"visible": False, "range": [-lim, lim], "fixedrange": True}
    return {
        "data": traces,
        "layout": {
            "height": 600 if present else 480, "margin": {"l": 5, "r": 5, "t": 10, "b": 5},
            "xaxis": axis, "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1},
            "images": images_layout, "shapes": shapes, "annotations": annotations,
            "legend": {"orientation": "v", "x": 1.0, "xanchor": "right", "y": 0.5, "yanchor": "middle",
                       "title": {"text": "label"}, "font": {"size": font}},
            "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": font},
        },
    }


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def tally_figure(vote, classes, weights: str, present: bool = False) -> dict:
    """The vote of each class as bars in the label colours, the winner's bar outlined.

    Uniform weights: whole votes on a whole-number axis. Distance weights: each
    class's share of the vote (sums of 1/distance mean nothing to a class).
    """
    cls = classes.tolist()
    weighted = weights == "distance"
    scores = np.asarray(vote.scores, dtype=float)
    values = scores / (scores.sum() or 1.0) if weighted else scores
    font = 22 if present else 14
    text = [(f"{v:.0%}" if weighted else f"{int(round(v))}") if v else "" for v in values]
    yaxis = ({"rangemode": "tozero", "tickformat": ".0%", "range": [0, min(1.0, float(values.max()) * 1.2 + 0.05)]}
             if weighted else {"rangemode": "tozero", "tickformat": "d", "dtick": max(1, math.ceil(values.max() / 6))})
    return {
        "data": [{
            "type": "bar", "x": [str(c) for c in cls], "y": values.tolist(),
            "marker": {"color": [LABEL_COLOURS[c % 10] for c in cls],
                       "line": {"color": [QUERY_COLOUR if c == vote.winner else "rgba(0,0,0,0)" for c in cls],
                                "width": 3}},
            "text": text, "textposition": "outside",
            "hovertemplate": "digit %{x}: %{y:.0%} of the vote<extra></extra>" if weighted
            else "digit %{x}: %{y} votes<extra></extra>",
        }],
        "layout": {
            "title": {"text": "Share of the vote (each weighs 1/distance)" if weighted else "Tally (votes)",
                      "font": {"size": font}},
            "height": 420 if present else 300, "margin": {"l": 45, "r": 5, "t": 50, "b": 35},
            "xaxis": {"type": "category", "tickmode": "array", "tickvals": [str(c) for c in cls],
                      "tickfont": {"size": font}},
            "yaxis": {**yaxis, "tickfont": {"size": font * 0.8}},
            "showlegend": False, "font": {"size": font},
        },
    }


def _tally_words(voter_labels: np.ndarray, winner: int, settings: ui.Settings) -> str:
    counts = np.bincount(voter_labels, minlength=10)
    parts = ", ".join(f"{d}×{c}" for d, c in sorted(enumerate(counts.tolist()), key=lambda t: (-t[1], t[0])) if c)
    how = "each weighs 1/distance" if settings.weights == "distance" else "one vote each"
    return f"{_plural(len(voter_labels), 'neighbour')} vote ({how}): {parts} → **{winner}**."


def answers_by_k_html(ks: list[int], answers: list[int], k: int) -> str:
    """The answer at each k as a row of boxes in the label colours, the current k outlined: where it flips."""
    boxes = "".join(
        f'<div class="k-answer" title="k={j}: {a}" style="display:flex;flex-direction:column;align-items:center;'
        f'font-size:0.75rem;color:#333">{j}<div style="width:1.6rem;height:1.6rem;line-height:1.6rem;'
        f'text-align:center;font-weight:700;color:#111;background:{LABEL_COLOURS[int(a) % 10]};border-radius:4px;'
        f'{"outline:3px solid " + QUERY_COLOUR + ";" if j == k else ""}">{int(a)}</div></div>'
        for j, a in zip(ks, answers))
    return (f'<div class="answers-by-k"><div style="font-size:0.85rem;margin-bottom:4px">The answer for each k '
            f'(now k={k}):</div><div style="display:flex;flex-wrap:wrap;gap:4px">{boxes}</div></div>')


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
