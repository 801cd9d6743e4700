"""A drawn digit's prediction as the Draw page shows it: the Prediction metric, the vote bars and the
nearest training digits.  Shared by the Draw page and the class room's student view (pages/class_room.py).

A stroke redraws the whole result in every student's browser, and on a projector-and-30-laptops
server the browsers' CPU is what runs out first (loadtest/README.md): so the result is a few
elements, each holding a lot (a metric, two HTML blocks), not a dozen small ones.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass

import numpy as np
import streamlit as st

from .charts import vote_bars_html
from .digits import digits_beside_neighbours_html, neighbour_captions
from .explain import abstain_judgement, abstain_message, calibration_hint, explain_section
from .resources import Neighbours, classifier, nearest
from .settings import CLASSIC, Settings

CAPTION_STYLE = "font-size:0.875rem;opacity:0.7;margin:0 0 0.5rem 0"


@dataclass(frozen=True)
class Prediction:
    """What :func:`show_prediction` showed: the vote (knn_core's VoteExplanation), the neighbours, and the
    refusal's judgement (None: the refusal is not calibrated for these settings)."""

    vote: object
    neighbours: Neighbours
    judged: object

    @property
    def refused(self) -> bool:
        return self.judged is not None and bool(self.judged.refused[0])


def show_prediction(digit: np.ndarray, settings: Settings, source_html: str = "") -> Prediction:
    """Classify a 28x28 digit with this view's settings and show the result, "That doesn't look like a
    digit" included. source_html: a line about which picture this is, shown above the summary."""
    vote, bars, neighbours, nb, judged = _result(digit, settings)
    shown = Prediction(vote, nb, judged)
    summary, chart = st.columns([2, 3], gap="medium")
    with summary:
        st.metric("Prediction", "not a digit" if shown.refused else vote.winner)  # first: users and tests read it
        abstain_message(judged, vote.winner)
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.html(source_html + summary_html(vote, settings))
    with chart:
        st.html(bars)
    with st.container(key="neighbours"):
        st.html(neighbours)
    return shown


def explain_expander(digit: np.ndarray, settings: Settings, shown: Prediction, *, key: str) -> None:
    """The folded "Why this answer?" section under a prediction. Built only while open (on_change="rerun"
    makes the expander report that): sent on every stroke, it would cost the server and every browser for
    a section usually closed."""
    box = st.expander("Why this answer? Differences, pixel by pixel", key=f"{key}_open", on_change="rerun")
    if box.open:
        with box:
            if shown.judged is None:
                st.caption(calibration_hint(settings))
            explain_section(classifier(settings), digit, shown.neighbours, shown.vote.winner, key=key)


_MEMO = "_prediction_memo"  # session key: (digit and settings, the vote and its HTML) of the last result


def _result(digit: np.ndarray, settings: Settings):
    """(vote, vote bars HTML, neighbours HTML, neighbours, refusal judgement), computed once per drawing and settings in a session: a rerun
    with the same drawing (a student pressing "Send to the class", an expander opened) searches and draws
    nothing again."""
    key = (
        hashlib.blake2b(np.ascontiguousarray(digit).tobytes(), digest_size=16).digest(),
        digit.shape,
        digit.dtype.str,
        settings,
    )
    memo = st.session_state.get(_MEMO)
    if memo is not None and memo[0] == key:
        return memo[1]
    clf = classifier(settings)
    nb = nearest(clf, digit, settings)
    vote = clf.explain(nb.distances, nb.indices)
    counts = [int(np.sum(nb.labels == c)) for c in clf.classes_]
    bars = vote_bars_html(
        vote.scores, clf.classes_, vote.winner, counts=counts, tied=vote.tied_classes, weights=settings.weights
    )
    result = (vote, bars, neighbours_html(nb, digit, vote.winner, settings), nb, abstain_judgement(settings, nb, digit))
    st.session_state[_MEMO] = (key, result)
    return result


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
