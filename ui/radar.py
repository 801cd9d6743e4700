"""The Neighbour vote view: a digit in the centre of a "radar" of its nearest training digits, and the
tally of their vote.  The Neighbour vote page (pages/neighbour_vote.py) and the class room's teacher view
(one student's drawing, big) both show it with :func:`show_neighbour_vote`.

The radar: each neighbour at a radius proportional to its distance, framed in its label's colour, in
the sector of its label; the voting circle passes just outside the k-th nearest, and the neighbours
beyond it are faded.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import streamlit as st

from .digits import digit_tile, enlarge, png_data_uri, to_uint8
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
    "#7F7F7F",
)
QUERY_COLOUR = "#111111"
EXTRA_SHOWN = 5  # neighbours shown beyond the k-th, faded: who would vote with a larger k


@lru_cache(maxsize=4096)
def _train_tile_uri(row: int, scale: int) -> str:
    return png_data_uri(enlarge(get_dataset().train_images[row], scale))


def radial_figure(
    digit: np.ndarray, labels: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int, present: bool = False
) -> dict:
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
                "opacity": 1.0 if voter else 0.3,
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
                "line": {"color": colour, "width": 5 if voter else 2, "dash": "solid" if voter else "dot"},
                "opacity": 1.0 if voter else 0.45,
            }
        )
    # the query, larger, in the centre
    q = max(size * 1.3, min(0.45 * r_max, float(dist.min()) - size * 0.6)) if n else size
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
    # the voting circle
    kk = min(k, n)
    r_vote = float(dist[kk - 1] if kk == n else (dist[kk - 1] + dist[kk]) / 2)
    shapes.insert(
        0,
        {
            "type": "circle",
            "xref": "x",
            "yref": "y",
            "x0": -r_vote,
            "x1": r_vote,
            "y0": -r_vote,
            "y1": r_vote,
            "layer": "below",
            "fillcolor": "rgba(46,125,50,0.07)",
            "line": {"color": "#2E7D32", "width": 3, "dash": "dash"},
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
            "text": f"<b>k = {k}</b>: {k} inside the circle vote",
            "showarrow": False,
            "font": {"size": font, "color": "#2E7D32"},
        }
    ]
    # hover: one invisible marker per neighbour
    text = [
        f"#{i + 1} · digit {int(labels[i])} · distance {dist[i]:.4g} · training #{int(rows[i])}"
        + (" · votes" if i < k else " · outside the circle")
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
    # legend: one entry per label on the radar
    for lab in sorted(set(labels.tolist())):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [None],
                "y": [None],
                "name": f"digit {lab}",
                "marker": {"symbol": "square-open", "size": 16, "line": {"width": 4}, "color": LABEL_COLOURS[lab % 10]},
                "hoverinfo": "skip",
            }
        )
    lim = r_max + size * 0.8
    axis = {"visible": False, "range": [-lim, lim], "fixedrange": True}
    return {
        "data": traces,
        "layout": {
            "height": 720 if present else 520,
            "margin": {"l": 5, "r": 5, "t": 10, "b": 5},
            "xaxis": axis,
            "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1},
            "images": images_layout,
            "shapes": shapes,
            "annotations": annotations,
            "legend": {"orientation": "h", "y": -0.02, "font": {"size": font}},
            "plot_bgcolor": "rgba(0,0,0,0)",
            "paper_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": font},
        },
    }


def tally_figure(vote, classes, weights: str, present: bool = False) -> dict:
    """The vote of each class as bars in the label colours; the winner's bar outlined."""
    cls = classes.tolist()
    weighted = weights == "distance"
    font = 22 if present else 14
    return {
        "data": [
            {
                "type": "bar",
                "x": [str(c) for c in cls],
                "y": vote.scores.tolist(),
                "marker": {
                    "color": [LABEL_COLOURS[c % 10] for c in cls],
                    "line": {"color": [QUERY_COLOUR if c == vote.winner else "rgba(0,0,0,0)" for c in cls], "width": 3},
                },
                "text": [f"{s:.3g}" if s else "" for s in vote.scores],
                "textposition": "outside",
                "hovertemplate": "digit %{x}: %{y:.3g}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Tally (sum of 1/distance)" if weighted else "Tally (votes)", "font": {"size": font}},
            "height": 420 if present else 300,
            "margin": {"l": 35, "r": 5, "t": 50, "b": 35},
            "xaxis": {
                "type": "category",
                "tickmode": "array",
                "tickvals": [str(c) for c in cls],
                "tickfont": {"size": font},
            },
            "yaxis": {"rangemode": "tozero", "tickfont": {"size": font * 0.8}},
            "showlegend": False,
            "font": {"size": font},
        },
    }


def tally_words(voter_labels: np.ndarray, winner: int, settings: Settings) -> str:
    counts = np.bincount(voter_labels, minlength=10)
    parts = ", ".join(f"{d}×{c}" for d, c in sorted(enumerate(counts.tolist()), key=lambda t: (-t[1], t[0])) if c)
    how = "each weighs 1/distance" if settings.weights == "distance" else "one vote each"
    return f"{len(voter_labels)} neighbours vote ({how}): {parts} → **{winner}**."


def show_neighbour_vote(
    digit: np.ndarray, settings: Settings, k: int, left, middle, right, *, present: bool = False, key: str = ""
):
    """The digit (in `left`), the radar (in `middle`) and the Prediction with the tally (in `right`):
    three containers the caller lays out. key: a prefix for the charts' keys. Returns the vote."""
    clf = classifier(settings)
    nb = nearest(clf, digit, settings, n=min(K_MAX, k + EXTRA_SHOWN, clf.n_samples_fit_))
    dist, rows, labels = nb.distances, nb.rows, nb.labels
    vote = clf.explain(dist[:k], nb.indices[:k])

    with left:
        st.image(digit_tile(digit, 5 if present else 4), caption="What the model sees (28×28)", output_format="PNG")
    with middle:
        st.plotly_chart(
            radial_figure(digit, labels, dist, rows, k, present), config={"displayModeBar": False}, key=f"{key}radial"
        )
        st.caption(
            f"Your digit in the centre; each training digit at a distance from it proportional to "
            f"how different it is ({settings.distance_label}), framed in "
            f"its label's colour. The {k} inside the dashed circle vote; the faded ones outside "
            f"would vote with a larger k."
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
    return vote
