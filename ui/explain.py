"""Abstaining and explaining on the pages: "That doesn't look like a digit", difference pictures,
the pixels that make a distance, the IDM's displacement field and "Why not 4?".

The numbers come from knn_core (abstain.py, explain.py); this module only makes pictures and
messages of them, one place for the Draw page, the Neighbour vote view, the Misclassified page
and the class room's student view:

- :func:`abstain_judgement` and :func:`abstain_message`: refuse a non-digit (with the nearest digits anyway, and why);
- :func:`explain_section`: the body of a folded "Why this answer?" expander.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import streamlit as st

from knn_core import Method, estimate_seconds, is_cached
from knn_core.abstain import (
    GATE_METHOD,
    AbstainRule,
    Judgement,
    abstain_rule,
    compared_pictures,
    gate_inputs,
    gate_share,
)
from knn_core.explain import NeighbourExplanation, difference, explain_neighbour, why_not
from knn_core.jobs import JobQueue, QueueFull

from .digits import digit_grid, enlarge, to_uint8
from .resources import Neighbours, classifier, get_dataset, get_subset, session_owner, wait_for_job
from .settings import Settings, with_search

DRAWING_ONLY = (255, 140, 0)  # orange: ink the drawing has and the neighbour lacks
NEIGHBOUR_ONLY = (30, 144, 255)  # blue: ink the neighbour has and the drawing lacks
CALIBRATE_NOW_SECONDS = 3.0  # an uncached validation search at most this long is run on the page
FIELD_SCALE = 10  # px per pixel of the displacement-field picture


# ------------------------------------------------------------------------------ abstaining


_RULES: dict = {}  # (method, size, k, weights, tie) -> AbstainRule, process-wide (a few KB each)
_RULES_MAX = 32
_RULES_LOCK = threading.Lock()  # the sessions share the process
# A calibration is 2-20 s of CPU (all 10,000 validation digits' neighbours compared, knn_core.abstain): in the
# background, at the lowest priority and stepping aside for the class's requests, one at a time, once per key.
_CALIBRATIONS = JobQueue(1, per_owner=1, keep=0)


def rule(settings: Settings, *, spinner: bool = True) -> AbstainRule | None:
    """The refusal rule of these settings, calibrated on the validation split (once per process);
    None when its validation search is neither cached nor quick (a slow method: the page answers
    as before, and the explanation says how to calibrate it). spinner: say so on the page (False
    outside a script run: the server's warm-up calibrates the default rule before the first drawing)."""
    key = (settings.search, settings.size, settings.k, settings.weights, settings.tie)
    found = _RULES.get(key)
    if found is not None:
        return found
    ds = get_dataset()
    searches = [settings.search] + ([Method.parse(GATE_METHOD)] if gate_share(settings.search) is not None else [])
    if sum(
        0 if is_cached(ds, s, "val", train_size=settings.size) else estimate_seconds(ds, s, "val", train_size=settings.size)
        for s in searches
    ) > CALIBRATE_NOW_SECONDS:
        return None
    def calibrate(progress=None) -> AbstainRule:
        return abstain_rule(ds, settings.search, k=settings.k, weights=settings.weights, tie_break=settings.tie,
                            train_size=settings.size)

    if not spinner:  # the server's warm-up, before anyone draws: at once
        found = calibrate()
    else:
        with st.spinner("Calibrating the non-digit refusal on the validation digits (once)…"):
            try:
                job = _CALIBRATIONS.submit(key, calibrate, owner=session_owner())
            except QueueFull:
                return None  # this session waits for another calibration: this drawing is answered without
            found = wait_for_job(job, "calibrating the refusal")
    with _RULES_LOCK:
        if len(_RULES) >= _RULES_MAX:
            _RULES.pop(next(iter(_RULES)))
        _RULES[key] = found
    return found


def abstain_judgement(settings: Settings, nb: Neighbours, digit=None) -> Judgement | None:
    """Whether one drawing's neighbours (the first k, with the pictures as the method compared them) make
    it a refusal; None: no rule for these settings. digit: the 28x28 drawing, for a method that compared
    smaller pictures (10x10: its shape score compares them at 28x28, `compared_pictures`)."""
    r = rule(settings)
    if r is None or len(nb.distances) < r.k or (r.gate is not None and digit is None):
        return None
    query, images = nb.query[None], nb.images[None, : r.k]
    if r.uses_pictures and query.shape[1:] != (28, 28) and digit is not None:
        moves = None if nb.shifts is None else nb.shifts[None, : r.k]
        pics = compared_pictures(settings.search, digit[None], get_dataset().train_images, nb.rows[None, : r.k], moves)
        query, images = pics["queries"], pics["neighbor_images"]
    raw = None if r.gate is None else _gate_search(settings, digit, r.gate.k)
    return r.judge(nb.distances[None, : r.k], nb.labels[None, : r.k], query, images, raw)


def _gate_search(settings: Settings, digit, k: int) -> dict:
    """The digit gate's inputs for one drawing: one plain euclidean query of the same training digits (the
    shared euclidean classifier at this view's training size)."""
    d, i = classifier(with_search(settings, Method.parse(GATE_METHOD))).kneighbors(digit[None], k)
    ds = get_dataset()
    rows = get_subset(settings.size)[i]
    return gate_inputs(d, ds.train_labels[rows], digit[None], ds.train_images, rows)


def abstain_message(judgement: Judgement | None, winner) -> bool:
    """Say "That doesn't look like a digit" with why and the nearest digit anyway, when refused.

    For the Draw page and the class room's student view. Returns whether it was refused.
    """
    if judgement is None or not judgement.refused[0]:
        return False
    st.warning(
        f"**That doesn't look like a digit.** It is {judgement.reasons[0]}. "
        f"The nearest digits anyway say **{winner}**: they are below.",
        icon="🤔",
    )
    return True


def calibration_hint(settings: Settings) -> str:
    """A caption for settings whose refusal is not calibrated yet (its command fills the cache)."""
    from .settings import cli_command

    return (
        "Non-digits are not refused with these settings yet: the validation search it is calibrated on "
        f"is not cached. `{cli_command('evaluate', settings)} --abstain` computes it."
    )


# ------------------------------------------------------------------------------ pictures


def difference_picture(query, neighbour) -> np.ndarray:
    """RGB: ink both have in white, the drawing's own in orange, the neighbour's own in blue."""
    extra, missing, common = difference(query, neighbour)
    rgb = (
        common[:, :, None] * 255.0
        + extra[:, :, None] * np.array(DRAWING_ONLY)
        + missing[:, :, None] * np.array(NEIGHBOUR_ONLY)
    )
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def heat_picture(contributions: np.ndarray) -> np.ndarray:
    """RGB heat map of per-pixel contributions (black: none, yellow: the largest)."""
    c = np.asarray(contributions, np.float64)
    top = c.max(initial=0)
    g = to_uint8(c / top) if top > 0 else np.zeros(c.shape, np.uint8)
    return cv2.applyColorMap(g, cv2.COLORMAP_INFERNO)[:, :, ::-1]


def field_picture(query, displacement: np.ndarray, scale: int = FIELD_SCALE) -> np.ndarray:
    """The query (grey) with an arrow from each of its ink pixels that was matched elsewhere to where it matched."""
    q = _grey(query)
    rgb = np.repeat(enlarge(q // 2, scale)[:, :, None], 3, axis=2).copy()
    ys, xs = np.nonzero(np.any(displacement != 0, axis=2) & (np.asarray(query) > 0))  # the ink's pixels
    for y, x in zip(ys.tolist(), xs.tolist()):
        dy, dx = displacement[y, x].tolist()
        start = (x * scale + scale // 2, y * scale + scale // 2)
        end = ((x + dx) * scale + scale // 2, (y + dy) * scale + scale // 2)
        cv2.arrowedLine(rgb, start, end, (255, 200, 0), 1, cv2.LINE_AA, tipLength=0.3)
    return rgb


def _grey(a) -> np.ndarray:
    """Any digit picture (uint8, or a recipe's floats on 0..255) as uint8 for showing."""
    a = np.asarray(a)
    return a if a.dtype == np.uint8 else to_uint8(np.clip(a / 255.0, 0, 1))


def _explanation_tiles(e: NeighbourExplanation, distance_name: str) -> tuple[list, list]:
    tiles = [_grey(e.query), _grey(e.neighbour), difference_picture(e.query, e.neighbour)]
    captions = [
        "your digit, as compared",
        "the neighbour, as compared",
        "**orange**: ink only yours\n**blue**: ink only the neighbour's",
    ]
    if e.contributions is not None:
        tiles.append(heat_picture(e.contributions))
        captions.append(f"what makes the {distance_name}\n(brighter: more)")
    return tiles, captions


def neighbours_from_lists(lists, q: int, k: int, digit: np.ndarray) -> Neighbours:
    """Query q's first k neighbours of a split's NeighborLists, as `explain_section` takes them."""
    ds = get_dataset()
    rows = lists.train_rows[lists.indices[q, :k]]
    shifts = None if lists.shifts is None else lists.shifts[q, :k]
    name = lists.method.distance_name if lists.method is not None else "distance"
    return Neighbours(
        lists.distances[q, :k],
        lists.indices[q, :k],
        rows,
        lists.train_labels[lists.indices[q, :k]],
        ds.train_images[rows],
        digit,
        shifts,
        name,
    )


def explain_section(clf, digit: np.ndarray, nb: Neighbours, winner, *, key: str, other=None) -> None:
    """The body of a folded "Why this answer?" expander, for one digit and its neighbours.

    A neighbour to take apart (the nearest by default): its difference picture, the per-pixel
    contributions (adding up to its distance), for IDM the displacement field; then "Why not
    <runner-up>?" (or `other`, e.g. the true label on the Misclassified page).
    """
    n = len(nb.indices)
    pick = st.selectbox(
        "Neighbour",
        range(n),
        key=f"{key}_neighbour",
        format_func=lambda j: f"#{j + 1}: a {nb.labels[j]} at d={nb.distances[j]:.4g}",
    )
    shift = nb.shifts[pick] if nb.shifts is not None else (0, 0)
    e = explain_neighbour(clf, digit, int(nb.indices[pick]), shift, float(nb.distances[pick]))
    tiles, captions = _explanation_tiles(e, nb.distance_name)
    scale = max(1, 112 // max(e.query.shape))
    digit_grid(tiles, captions, scale=scale)
    total = np.sum(e.contributions) if e.contributions is not None else None
    st.caption(e.how + (f" Here: {total:,.0f} = {e.distance:,.4g}^{e.power:g}." if total is not None else ""))
    if e.displacement is not None:
        moved = int(np.any(e.displacement != 0, axis=2).sum())
        digit_grid(
            [field_picture(e.query, e.displacement)], [f"IDM: where each pixel was matched ({moved} moved)"], scale=1
        )
    w = why_not(clf, digit, other=other)
    if w.other is None:
        st.caption(w.describe(nb.distance_name))
        return
    st.markdown(f"**Why not {w.other}?** {w.describe(nb.distance_name)}")
    a = clf.training_image(w.winner_index, w.winner_shift)
    b = clf.training_image(w.other_index, w.other_shift)
    q = np.asarray(clf.transform(np.asarray(digit)[None])[0])
    digit_grid(
        [_grey(a), difference_picture(q, a), _grey(b), difference_picture(q, b)],
        [
            f"nearest **{w.winner}**\nd={w.winner_distance:.4g}",
            f"yours vs that {w.winner}",
            f"nearest **{w.other}**\nd={w.other_distance:.4g}",
            f"yours vs that {w.other}",
        ],
        scale=scale,
    )
