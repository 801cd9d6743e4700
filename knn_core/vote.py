"""The vote: weights, tallies, tie rules and their explanation.

Kept apart from the search (as scikit-learn keeps `_get_weights` apart from
`KNeighborsMixin`), so that one neighbour search with the largest k serves
the predictions for every k, weighting and tie rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

WEIGHTS = ("uniform", "distance")
TIE_BREAKS = ("smallest", "nearest", "random")


def neighbor_weights(distances: np.ndarray, weights: str) -> np.ndarray:
    """Vote weight of each neighbour.

    "distance" weighs by 1/d; where a query sits at distance 0 from some
    training digits, those get weight 1 and the rest 0 (as scikit-learn).
    """
    if weights == "uniform":
        return np.ones_like(distances, dtype=np.float64)
    if weights != "distance":
        raise ParameterError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    with np.errstate(divide="ignore"):
        w = 1.0 / distances
    zero = distances == 0
    rows = zero.any(axis=1)
    w[rows] = zero[rows].astype(np.float64)
    return w


def tally(neighbor_classes: np.ndarray, distances: np.ndarray, n_classes: int, weights: str) -> np.ndarray:
    """Per query, the summed vote of each class: (m, n_classes)."""
    w = neighbor_weights(distances, weights)
    m = len(neighbor_classes)
    scores = np.zeros((m, n_classes), dtype=np.float64)
    np.add.at(scores, (np.repeat(np.arange(m), neighbor_classes.shape[1]), neighbor_classes.ravel()), w.ravel())
    return scores


def decide(scores: np.ndarray, neighbor_classes: np.ndarray, tie_break: str, random_state=None):
    """The winning class of each vote, and which classes tied for the top.

    smallest: the lowest class wins (scikit-learn's rule); nearest: among the
    tied classes, the one holding the nearest neighbour; random: a seeded draw
    (the classic numpy solution's rule). Returns (winners, tied mask).
    """
    if tie_break not in TIE_BREAKS:
        raise ParameterError(f"unknown tie_break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}")
    tied = scores == scores.max(axis=1, keepdims=True)
    winners = tied.argmax(axis=1)  # the smallest tied class
    multi = np.flatnonzero(tied.sum(axis=1) > 1)
    if tie_break == "nearest" and len(multi):
        in_tie = np.take_along_axis(tied[multi], neighbor_classes[multi], axis=1)
        first = in_tie.argmax(axis=1)  # neighbours are ordered nearest first
        winners[multi] = neighbor_classes[multi, first]
    elif tie_break == "random" and len(multi):
        rng = np.random.default_rng(random_state)
        draws = rng.random(len(multi))
        counts = tied[multi].sum(axis=1)
        pick = (draws * counts).astype(int)  # index among the tied classes
        order = np.cumsum(tied[multi], axis=1) - 1
        winners[multi] = (tied[multi] & (order == pick[:, None])).argmax(axis=1)
    return winners, tied


@dataclass(frozen=True)
class VoteExplanation:
    """One query's vote, in words and numbers, for pages that explain it."""

    scores: np.ndarray  # per class, in classes_ order
    winner: int
    tied_classes: tuple
    tie_break: str

    @property
    def was_tied(self) -> bool:
        return len(self.tied_classes) > 1

    def describe(self) -> str:
        if not self.was_tied:
            return f"{self.winner} won the vote outright."
        names = ", ".join(str(c) for c in self.tied_classes)
        how = {
            "smallest": "the smallest label wins",
            "nearest": "the class of the nearest tied neighbour wins",
            "random": "a seeded random draw picks",
        }[self.tie_break]
        return f"Tie between {names}: {how}, so {self.winner}."
