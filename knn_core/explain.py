"""Why a neighbour is as far as it is, and "why 7, not 4?".

* `difference`: where the drawing has ink its neighbour lacks, and the
  reverse (the pages paint them in two colours).
* `pixel_contributions`: per pixel, its share of the distance, adding up
  exactly: for an Lp distance d = (sum_i |q_i - y_i|^p)^(1/p) the
  contributions are |q_i - y_i|^p and sum to d^p (euclidean: the squared
  distance; manhattan: the distance itself; L3: the distance cubed).
* `idm_match`: for the image distortion model, the displacement each query
  pixel was matched with (the argmin of `knn_core.methods.kernels.idm_distances`)
  and its squared context difference; they sum to IDM^2.
* `explain_neighbour`: all of it for one neighbour of a fitted classifier, on
  the pictures as the method compared them (a recipe's: deskewed, blurred,
  shifted).
* `why_not`: the nearest training digit of the runner-up class beside the
  winner's, with both distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import ParameterError
from .methods.kernels import sobel_gradients
from .methods.search import shift_offsets

__all__ = [
    "NeighbourExplanation",
    "WhyNot",
    "difference",
    "explain_neighbour",
    "idm_match",
    "pixel_contributions",
    "why_not",
]


def _unit(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a / 255.0 if a.max(initial=0) > 1 else a


def difference(query, neighbour) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ink the query has and the neighbour lacks, ink the neighbour has and the query lacks, ink both have),
    each in 0..1, on the same grid."""
    q, y = _unit(query), _unit(neighbour)
    if q.shape != y.shape:
        raise ParameterError(f"the query {q.shape} and the neighbour {y.shape} are not the same size")
    return np.clip(q - y, 0, None), np.clip(y - q, 0, None), np.minimum(q, y)


def pixel_contributions(query, neighbour, p: float = 2.0) -> np.ndarray:
    """|q - y|^p per pixel (float64): they sum to the Lp distance to the power p."""
    q, y = np.asarray(query, np.float64), np.asarray(neighbour, np.float64)
    if q.shape != y.shape:
        raise ParameterError(f"the query {q.shape} and the neighbour {y.shape} are not the same size")
    return np.abs(q - y) ** float(p)


def idm_match(query, candidate, window: int = 2, context: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The IDM's choice at each query pixel: (displacements (H, W, 2) as (dy, dx), costs (H, W)).

    Pixel p of the query matches the candidate's pixel p + d with the smallest
    squared difference of local gradient contexts, |dy|, |dx| <= window (see
    `idm_distances`); costs.sum() == IDM(query, candidate)^2. Among equal
    costs the smallest displacement is reported (no move where nothing needs one).
    """
    q, y = np.asarray(query), np.asarray(candidate)
    if q.shape != y.shape or q.ndim != 2:
        raise ParameterError(f"idm_match needs two images of one size; got {q.shape} and {y.shape}")
    H, W = q.shape
    c, w = context, window
    side = 2 * c + 1
    gq = sobel_gradients(q[None], c)[0].astype(np.float64)  # (2, H+2c, W+2c)
    gy = sobel_gradients(y[None], c + w)[0].astype(np.float64)  # (2, H+2c+2w, W+2c+2w)
    offsets = shift_offsets(w)  # (0, 0) first, then ring by ring: a tie goes to the smallest move
    costs = []
    for dy, dx in (offsets + w).tolist():
        e = ((gy[:, dy : dy + H + 2 * c, dx : dx + W + 2 * c] - gq) ** 2).sum(axis=0)
        box = sum(e[o : o + H] for o in range(side))
        costs.append(sum(box[:, o : o + W] for o in range(side)))
    stack = np.stack(costs)  # (D, H, W)
    best = stack.argmin(axis=0)
    return offsets[best], np.take_along_axis(stack, best[None], axis=0)[0]


@dataclass(frozen=True)
class NeighbourExplanation:
    """One neighbour's distance taken apart, on the pictures as the method compared them."""

    query: np.ndarray  # the drawing as compared
    neighbour: np.ndarray  # the training digit as compared (at its matched shift)
    distance: float  # as the search reported it
    contributions: Optional[np.ndarray]  # per pixel, summing to distance ** power; None: not per pixel
    power: float  # 2 for euclidean, 1 for manhattan, 3 for L3, 2 for IDM (squared context differences)
    displacement: Optional[np.ndarray]  # IDM: (H, W, 2) (dy, dx) each query pixel matched; else None
    how: str  # how the contributions add up, in words

    @property
    def difference(self):
        return difference(self.query, self.neighbour)


def _distance_power(clf) -> tuple[Optional[float], str]:
    """(the power p whose per-pixel terms add up to distance^p, or None, and why not)."""
    m = clf.method_
    if m.is_classic:
        if m.metric == "cosine":
            return None, "cosine distance is not a sum over pixels"
        return {"euclidean": 2.0, "manhattan": 1.0}.get(m.metric, m.p), ""
    r = m.recipe
    if r.pca is not None:
        return None, "with PCA the distance is between principal-component coordinates, not pixels"
    if r.rerank == "idm":
        return 2.0, ""
    return (r.p if r.uses_lp else 2.0), ""


def explain_neighbour(clf, digit, index: int, shift=(0, 0), distance: Optional[float] = None) -> NeighbourExplanation:
    """The difference, the per-pixel contributions (and for IDM the displacement field) of one
    neighbour (training index `index`, matched at `shift`) of a 28x28 digit under a fitted KNNClassifier."""
    query = np.asarray(clf.transform(np.asarray(digit)[None])[0])
    nb = np.asarray(clf.training_image(int(index), shift))
    power, why = _distance_power(clf)
    displacement = None
    if power is None:
        contributions, how = None, f"No per-pixel contributions: {why}."
    elif clf.method_.recipe is not None and clf.method_.recipe.rerank == "idm":
        r = clf.method_.recipe
        displacement, contributions = idm_match(query, nb, r.idm_window, r.idm_context)
        how = (
            "Each pixel's squared difference of gradient context at the place it was matched "
            f"(within {r.idm_window} px); they add up to the IDM distance squared."
        )
        if r.tangent_weight:
            how += (f" The ranking distance also holds {r.tangent_weight:g} x the tangent distance squared, "
                    "which is not a sum over pixels.")
    else:
        contributions = pixel_contributions(query, nb, power)
        name = {1.0: "the distance itself", 2.0: "the distance squared", 3.0: "the distance cubed"}.get(
            power, f"the distance to the power {power:g}"
        )
        how = f"Each pixel's |difference|^{power:g}; they add up to {name}."
    if distance is None:
        distance = float(np.sum(contributions) ** (1 / power)) if contributions is not None and power else float("nan")
    return NeighbourExplanation(query, nb, float(distance), contributions, power or float("nan"), displacement, how)


@dataclass(frozen=True)
class WhyNot:
    """The winner's nearest training digit beside the runner-up class's nearest."""

    winner: int
    winner_index: int  # training index (into the classifier's training digits)
    winner_distance: float
    winner_shift: tuple
    other: Optional[int]  # None: no other class among the searched neighbours
    other_index: Optional[int]
    other_distance: Optional[float]
    other_shift: Optional[tuple]

    def describe(self, distance_name: str = "distance") -> str:
        if self.other is None:
            return f"No digit other than a {self.winner} is among the nearest training digits."
        assert self.other_distance is not None
        return (
            f"The nearest {self.winner} is at {distance_name} {self.winner_distance:,.0f}; the nearest "
            f"{self.other} is at {self.other_distance:,.0f}, "
            f"{self.other_distance / max(self.winner_distance, 1e-12):.2f}x as far."
        )


def why_not(clf, digit, other=None, n: int = 300) -> WhyNot:
    """Why the vote's winner and not `other` (default: the runner-up of the vote, else the nearest
    other class): the nearest training digit of each, among the digit's `n` nearest."""
    n = min(n, clf.n_samples_fit_ * clf.method_.copies)
    nb = clf.kneighbors_detail(np.asarray(digit)[None], n)
    d, idx = nb.distances[0], nb.indices[0]
    shifts = nb.shifts[0] if nb.shifts is not None else np.zeros((len(idx), 2), int)
    labels = clf.neighbor_labels(idx)
    vote = clf.explain(d[: clf.n_neighbors], idx[: clf.n_neighbors])
    winner = vote.winner
    if other is None:
        order = np.argsort(-vote.scores, kind="stable")
        ranked = [clf.classes_[j].item() for j in order if vote.scores[j] > 0 and clf.classes_[j] != winner]
        other = ranked[0] if ranked else next((lab.item() for lab in labels if lab != winner), None)
    w = int(np.flatnonzero(labels == winner)[0])
    mine = np.flatnonzero(labels == other) if other is not None else np.zeros(0, np.int64)
    if len(mine) == 0:
        return WhyNot(winner, int(idx[w]), float(d[w]), tuple(int(v) for v in shifts[w]), None, None, None, None)
    o = int(mine[0])
    return WhyNot(
        winner,
        int(idx[w]),
        float(d[w]),
        tuple(int(v) for v in shifts[w]),
        other,
        int(idx[o]),
        float(d[o]),
        tuple(int(v) for v in shifts[o]),
    )
