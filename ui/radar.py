"""The Neighbour vote view: a digit in the centre of a "radar" of its nearest training digits, and the
tally of their vote.  The Neighbour vote page (pages/neighbour_vote.py) and the class room's teacher view
(one student's drawing, big) both show it with :func:`show_neighbour_vote`.

The radar: the k nearest training digits inside the voting circle, the next few outside it (nearer ones
nearer the centre), each framed in its label's colour, in the sector of its label; under the tally, the
answer at every k up to 15.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import streamlit as st

from .digits import digit_tile, enlarge, png_data_uri, to_uint8
from .explain import explain_section
from .resources import classifier, get_dataset, nearest
from .settings import K_MAX, Settings

# A colour per digit (Tableau 10: distinct for most colour-blind viewers, readable on a projector).
LABEL_COLOURS = (
    "#4E79A7",
    "#F28E2B",
    "#E15759",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
    "#17BECF",  # 9: cyan, not Tableau's grey (it read as faded)
)
QUERY_COLOUR = "#111111"
EXTRA_SHOWN = 5  # neighbours shown beyond the k-th, faded: who would vote with a larger k
STRIP_K = 15  # the answer at every k up to this one is shown under the tally


@lru_cache(maxsize=4096)
def _train_tile_uri(row: int, scale: int) -> str:
    return png_data_uri(enlarge(get_dataset().train_images[row], scale))


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


def radial_figure(
    digit: np.ndarray, labels: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int, present: bool = False
) -> dict:
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
    size = min(
        0.2,
        0.85 * 2 * math.pi * sum(VOTER_RING) / 2 / max(kk, 1),
        0.85 * 2 * math.pi * OUTSIDE_RING[0] / max(n - kk, 1),
    )

    images_layout, shapes = [], []
    for i in range(n):
        voter = i < kk
        colour = LABEL_COLOURS[int(labels[i]) % 10]
        images_layout.append(
            {
                "source": _train_tile_uri(int(rows[i]), 4),
                "xref": "x",
                "yref": "y",
                "x": float(x[i]),
                "y": float(y[i]),
                "sizex": size,
                "sizey": size,
                "xanchor": "center",
                "yanchor": "middle",
                "layer": "above",
                "opacity": 1.0 if voter else 0.55,
            }
        )
        h = size / 2 * 1.08
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "y",
                "x0": float(x[i] - h),
                "x1": float(x[i] + h),
                "y0": float(y[i] - h),
                "y1": float(y[i] + h),
                "layer": "above",
                "line": {"color": colour, "width": 5 if voter else 3},
            }
        )
    # the query, larger, in the centre
    q = 0.44
    images_layout.append(
        {
            "source": png_data_uri(enlarge(to_uint8(digit), 4)),
            "xref": "x",
            "yref": "y",
            "x": 0.0,
            "y": 0.0,
            "sizex": q,
            "sizey": q,
            "xanchor": "center",
            "yanchor": "middle",
            "layer": "above",
        }
    )
    shapes.append(
        {
            "type": "rect",
            "xref": "x",
            "yref": "y",
            "x0": -q / 2 * 1.06,
            "x1": q / 2 * 1.06,
            "y0": -q / 2 * 1.06,
            "y1": q / 2 * 1.06,
            "layer": "above",
            "line": {"color": QUERY_COLOUR, "width": 6},
        }
    )
    # the voting circle: the voters inside, shaded; the others outside
    shapes.insert(
        0,
        {
            "type": "circle",
            "xref": "x",
            "yref": "y",
            "x0": -VOTE_RADIUS,
            "x1": VOTE_RADIUS,
            "y0": -VOTE_RADIUS,
            "y1": VOTE_RADIUS,
            "layer": "below",
            "fillcolor": "rgba(46,125,50,0.10)",
            "line": {"color": "#2E7D32", "width": 4},
        },
    )
    font = 22 if present else 14
    annotations = [
        {
            "x": 0,
            "y": 1,
            "xref": "paper",
            "yref": "paper",
            "xanchor": "left",
            "yanchor": "top",
            "text": f"<b>k = {k}</b>: the {plural(kk, 'nearest neighbour')} inside the circle vote",
            "showarrow": False,
            "font": {"size": font, "color": "#2E7D32"},
        }
    ]
    if n > kk:
        annotations.append(
            {
                "x": 0,
                "y": 0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "left",
                "yanchor": "bottom",
                "text": f"outside: the next {n - kk}, who would vote with a larger k",
                "showarrow": False,
                "font": {"size": font * 0.8, "color": "#444"},
            }
        )
    # hover: one invisible marker per neighbour
    text = [
        f"#{i + 1} · digit {int(labels[i])} · distance {dist[i]:.4g} · training #{int(rows[i])}"
        + (" · votes" if i < kk else " · outside the circle")
        for i in range(n)
    ]
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": x.tolist(),
            "y": y.tolist(),
            "text": text,
            "hovertemplate": "%{text}<extra></extra>",
            "showlegend": False,
            "marker": {"size": 30 if present else 22, "opacity": 0},
        }
    ]
    # legend at the side (not below: it kept the diagram's bottom off a 1080-pixel screen)
    for lab in sorted(set(labels.tolist())):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [None],
                "y": [None],
                "name": f"{lab}",
                "marker": {"symbol": "square-open", "size": 16, "line": {"width": 4}, "color": LABEL_COLOURS[lab % 10]},
                "hoverinfo": "skip",
            }
        )
    lim = OUTSIDE_RING[1] + size * 0.7
    axis = {"visible": False, "range": [-lim, lim], "fixedrange": True}
    return {
        "data": traces,
        "layout": {
            "height": 600 if present else 480,
            "margin": {"l": 5, "r": 5, "t": 10, "b": 5},
            "xaxis": axis,
            "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1},
            "images": images_layout,
            "shapes": shapes,
            "annotations": annotations,
            "legend": {
                "orientation": "v",
                "x": 1.0,
                "xanchor": "right",
                "y": 0.5,
                "yanchor": "middle",
                "title": {"text": "label"},
                "font": {"size": font},
            },
            "plot_bgcolor": "rgba(0,0,0,0)",
            "paper_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": font},
        },
    }


def plural(n: int, noun: str) -> str:
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
    yaxis = (
        {"rangemode": "tozero", "tickformat": ".0%", "range": [0, min(1.0, float(values.max()) * 1.2 + 0.05)]}
        if weighted
        else {"rangemode": "tozero", "tickformat": "d", "dtick": max(1, math.ceil(values.max() / 6))}
    )
    return {
        "data": [
            {
                "type": "bar",
                "x": [str(c) for c in cls],
                "y": values.tolist(),
                "marker": {
                    "color": [LABEL_COLOURS[c % 10] for c in cls],
                    "line": {"color": [QUERY_COLOUR if c == vote.winner else "rgba(0,0,0,0)" for c in cls], "width": 3},
                },
                "text": text,
                "textposition": "outside",
                "hovertemplate": "digit %{x}: %{y:.0%} of the vote<extra></extra>"
                if weighted
                else "digit %{x}: %{y} votes<extra></extra>",
            }
        ],
        "layout": {
            "title": {
                "text": "Share of the vote (each weighs 1/distance)" if weighted else "Tally (votes)",
                "font": {"size": font},
            },
            "height": 420 if present else 300,
            "margin": {"l": 45, "r": 5, "t": 50, "b": 35},
            "xaxis": {
                "type": "category",
                "tickmode": "array",
                "tickvals": [str(c) for c in cls],
                "tickfont": {"size": font},
            },
            "yaxis": {**yaxis, "tickfont": {"size": font * 0.8}},
            "showlegend": False,
            "font": {"size": font},
        },
    }


def tally_words(voter_labels: np.ndarray, winner: int, settings: Settings) -> str:
    counts = np.bincount(voter_labels, minlength=10)
    parts = ", ".join(f"{d}×{c}" for d, c in sorted(enumerate(counts.tolist()), key=lambda t: (-t[1], t[0])) if c)
    how = "each weighs 1/distance" if settings.weights == "distance" else "one vote each"
    return f"{plural(len(voter_labels), 'neighbour')} vote ({how}): {parts} → **{winner}**."


def answers_by_k(clf, distances: np.ndarray, indices: np.ndarray, ks) -> list[int]:
    """The answer at each k in `ks` from one digit's neighbour list (nearest first, at least max(ks) long):
    the vote of its first k neighbours with clf's weights and tie rule, as a classifier with that k would
    give, without a classifier per k."""
    d, i = np.asarray(distances)[None, :], np.asarray(indices)[None, :]
    return [clf.classes_[clf.vote_from_neighbors(d, i, k=j)[1][0]].item() for j in ks]


def answers_by_k_html(ks: list[int], answers: list[int], k: int) -> str:
    """The answer at each k as a row of boxes in the label colours, the current k outlined: where it flips."""
    boxes = "".join(
        f'<div class="k-answer" title="k={j}: {a}" style="display:flex;flex-direction:column;align-items:center;'
        f'font-size:0.75rem;color:#333">{j}<div style="width:1.6rem;height:1.6rem;line-height:1.6rem;'
        f"text-align:center;font-weight:700;color:#111;background:{LABEL_COLOURS[int(a) % 10]};border-radius:4px;"
        f'{"outline:3px solid " + QUERY_COLOUR + ";" if j == k else ""}">{int(a)}</div></div>'
        for j, a in zip(ks, answers)
    )
    return (
        f'<div class="answers-by-k"><div style="font-size:0.85rem;margin-bottom:4px">The answer for each k '
        f'(now k={k}):</div><div style="display:flex;flex-wrap:wrap;gap:4px">{boxes}</div></div>'
    )


def show_neighbour_vote(
    digit: np.ndarray, settings: Settings, k: int, left, middle, right, *, present: bool = False, key: str = ""
):
    """The digit (in `left`), the radar (in `middle`) and the Prediction with the tally (in `right`):
    three containers the caller lays out. key: a prefix for the charts' keys. Returns the vote."""
    clf = classifier(settings)
    nb = nearest(clf, digit, settings, n=min(K_MAX, max(k + EXTRA_SHOWN, STRIP_K), clf.n_samples_fit_))
    shown = min(k + EXTRA_SHOWN, len(nb.distances))
    dist, rows, labels = nb.distances[:shown], nb.rows[:shown], nb.labels[:shown]
    vote = clf.explain(dist[:k], nb.indices[:k])

    with left:
        st.image(digit_tile(digit, 5 if present else 4), caption="What the model sees (28×28)", output_format="PNG")
    with middle:
        st.plotly_chart(
            radial_figure(digit, labels, dist, rows, k, present), config={"displayModeBar": False}, key=f"{key}radial"
        )
        st.caption(
            f"Your digit in the centre. The {plural(k, 'nearest training digit')} ({settings.distance_label}) "
            f"vote from inside the circle, nearest closest to the centre; the next {shown - min(k, shown)} "
            "wait outside it and would vote with a larger k. Each is framed in its label's colour."
        )
    with right:
        st.metric("Prediction", vote.winner)
        st.plotly_chart(
            tally_figure(vote, clf.classes_, settings.weights, present),
            config={"displayModeBar": False},
            key=f"{key}tally",
        )
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.caption(tally_words(labels[:k], vote.winner, settings))
        strip_ks = list(range(1, min(len(nb.distances), max(STRIP_K, k)) + 1))
        st.html(answers_by_k_html(strip_ks, answers_by_k(clf, nb.distances, nb.indices, strip_ks), k))
    box = st.expander("Why this answer? Differences, pixel by pixel", key=f"{key}vote_explain_open", on_change="rerun")
    if box.open:  # drawn only while open: a stroke costs nothing more
        with box:
            explain_section(clf, digit, nb, vote.winner, key=f"{key}vote_explain")
    return vote
