"""A drawn digit's prediction as the Draw page shows it: the Prediction metric, the vote bars and the
nearest training digits.  Shared by the Draw page and the class room's student view (pages/class_room.py).

A stroke redraws the whole result in every student's browser, and on a projector-and-30-laptops
server the browsers' CPU is what runs out first (loadtest/README.md): so the result is a few
elements, each holding a lot (a metric, two HTML blocks), not a dozen small ones.
"""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from .charts import vote_bars_html
from .digits import digits_beside_neighbours_html, neighbour_captions
from .resources import Neighbours, classifier, nearest
from .settings import CLASSIC, Settings

CAPTION_STYLE = "font-size:0.875rem;opacity:0.7;margin:0 0 0.5rem 0"


def show_prediction(digit: np.ndarray, settings: Settings, source_html: str = ""):
    """Classify a 28x28 digit with this view's settings and show the result; the vote (knn_core's
    VoteExplanation). source_html: a line about which picture this is, shown above the summary."""
    clf = classifier(settings)
    nb = nearest(clf, digit, settings)
    vote = clf.explain(nb.distances, nb.indices)

    summary, chart = st.columns([2, 3], gap="medium")
    with summary:
        st.metric("Prediction", vote.winner)  # first: users and browser tests read it here
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.html(source_html + summary_html(vote, settings))
    with chart:
        counts = [int(np.sum(nb.labels == c)) for c in clf.classes_]
        st.html(
            vote_bars_html(
                vote.scores, clf.classes_, vote.winner, counts=counts, tied=vote.tied_classes, weights=settings.weights
            )
        )
    with st.container(key="neighbours"):
        st.html(neighbours_html(nb, digit, vote.winner, settings))
    return vote


def summary_html(vote, settings: Settings) -> str:
    """The settings behind the prediction and, unless tied (then a warning says it), how the vote went."""
    lines = [f"k={settings.k}, {settings.distance_label}, {settings.weights} votes, {settings.size:,} training digits"]
    if not vote.was_tied:
        lines.append(vote.describe())
    return "".join(f'<p class="draw-summary" style="{CAPTION_STYLE}">{html.escape(t)}</p>' for t in lines)


def neighbours_html(nb: Neighbours, digit: np.ndarray, winner, settings: Settings) -> str:
    """The digit as the model sees it beside its k nearest training digits, with a heading and a
    caption saying how to read them: one HTML element."""
    how = "" if settings.method == CLASSIC else " Shown as the method compared them"
    if nb.shifts is not None:
        how += ", each at the shift that matched best (a digit may appear at several shifts and vote for each)"
    caption = (
        f"Nearest first, by {nb.distance_name} (d). Framed in green with ✓: the neighbours that voted "
        f"for {winner}.{how}{'.' if how else ''}"
    )
    if settings.method == CLASSIC:
        views, view_captions = [digit], ["What the model sees (28×28)"]
    else:
        h, w = nb.query.shape
        views, view_captions = [digit, nb.query], ["Your digit (28×28)", f"As the method compares it ({w}×{h})"]
    captions, borders, alts = neighbour_captions(nb.labels, nb.distances, winner, nb.shifts)
    return (
        '<h3 style="margin:0.25rem 0 0.25rem 0;font-size:1.5rem;font-weight:600">'
        + (f"The {len(nb.indices)} nearest training digits" if len(nb.indices) != 1 else "The nearest training digit")
        + "</h3>"
        f'<p style="{CAPTION_STYLE}">{html.escape(caption)}</p>'
        + digits_beside_neighbours_html(
            views, view_captions, nb.images, captions, borders, alts, scale=4 if len(views) == 1 else 3, nb_scale=3
        )
    )
