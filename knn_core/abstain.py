"""Refusing what is not a digit: "That doesn't look like a digit", decided from the neighbours.

A kNN classifier answers every input with a digit, a smiley included. But it
knows how far the nearest digits are: a drawing much farther from its nearest
digits than real digits usually are, or one whose neighbours cannot agree, is
refused. Two tests, both calibrated on the VALIDATION split (the last 10,000
training digits, searched against the training digits before them), never on
the test set:

* distance: the distance from the query to its nearest neighbour that voted
  for the winner, against a per-class limit: the quantile of that distance
  over the validation digits the vote gave to the same class. (A 1 is usually
  much closer to other 1s than an 8 to other 8s, so one global limit would
  refuse fat 8s before odd 1s.) A class with too few validation digits to
  see its tail (a small calibration set) uses the overall quantile.
* agreement: the winner's share of the vote (weighted as the vote is),
  against the smallest share real digits usually have.

With the pictures as the method compared them (``queries`` and the
neighbours' ``neighbor_images``: raw pixels for classic kNN, deskewed and
blurred for those recipes, and the 28x28 pictures of 10x10 downsampling;
IDM, whose pixels move, only with its distance and the drawing's ink and pieces (`shape_ratios`), its
distance against all validation digits' usual one (`distance_per_class`); the default of `abstain_rule`,
`Abstainer`, the Draw page and the command line) the distance test looks at
the drawing's shape, not only at one distance: a score multiplies four
ratios, each against what is usual for the winning class on the validation
digits (their median), each to a power (`EXPONENTS`):

* how far its nearest neighbour voting for the winner is;
* where it differs most from those neighbours: the largest mean squared
  difference over a 3x3 patch, for the best-matching of them (a stroke a
  digit has and it lacks, or the reverse; real digits differ from their
  neighbours a little everywhere, along the strokes);
* how much ink it has (letters, shapes and scribbles have more strokes);
* how differently its strokes run: the difference between the histograms of
  edge directions (8 directions over 180 degrees) of the drawing and of the
  closest such neighbour (squares, letters and zigzags run in a few straight
  directions; handwriting curves);
* in how many separate pieces its ink is (a smiley is a ring with eyes and a
  mouth inside, 3-4 pieces, where a 0 is one ring: the other ratios see a
  ring like a 0's).

The powers are fitted per method (`fit_exponents`, `fit_method_exponents`) on
the validation digits and the DESIGN part of the project's non-digits only
(knn_core.nondigits: the held-out part, in fonts and from seeds never used
for the design, is only for measuring): on a coarse grid, the powers that
refuse the most design non-digits while the validation digits keep the
coverage asked for, weighing each kind of non-digit (letters, shapes, faces,
scribbles) so that none is given up: first the powers whose least-refused
kind is refused most, then the most design non-digits. The limits come from the validation digits only.
Measured in benchmarks/abstain.py (README).

The digit gate (`GATES`): deskewing, and IDM's moving pixels, make a non-digit look more like a digit, so
those methods' own neighbours tell non-digits apart less well. For them the euclidean rule on the raw
pixels (its shape score, `EXPONENTS["euclidean"]`, its own per-class limits, on a plain euclidean search) is
asked too, and either refuses. Both are calibrated together on the validation digits: the gate refuses its
share of the refusal budget (`fit_gate_share`, chosen on validation + design non-digits), the method's own
tests the rest among the digits the gate answers, so that together they still answer `coverage`.

"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .errors import ParameterError
from .threads import pause_point
from .vote import TIE_BREAKS, WEIGHTS, decide, tally

__all__ = [
    "EXPONENTS", "REFUSED", "AbstainRule", "Abstainer", "Judgement", "abstain_rule", "answered_accuracy",
    "compared_pictures", "fit_exponents", "fit_method_exponents", "method_exponents", "shape_applies",
    "shape_ratios", "distance_per_class", "GATES", "GATE_METHOD", "fit_gate_share", "fit_method_gate_share",
    "gate_inputs", "gate_share",
]

REFUSED = -1  # the label `predict` gives a refused input
DEFAULT_COVERAGE = 0.993
AGREEMENT_BUDGET = 1 / 6  # the share of the refusals the agreement test may use
# A per-class limit needs enough digits of the class to see its tail: at least this many expected beyond
# the limit (e.g. 3 / 0.007 = 429 digits), else the class uses the overall limit (small calibration sets).
TAIL_DIGITS = 3


# The shape score's exponents (distance, patch, ink, directions, pieces) per method (its preset k and votes), fitted by `fit_exponents`
# on the validation digits and the DESIGN part of the non-digits only (knn_core.nondigits; never the held-out part
# nor the test set): `python benchmarks/abstain.py --fit` prints this table. A method not listed: DEFAULT_EXPONENTS.
EXPONENTS: dict = {
    "euclidean": (1.0, 0.5, 1.5, 0.5, 0.5),
    "plain": (1.0, 0.5, 1.5, 0.5, 0.5),
    "downsample": (1.0, 0.5, 3.0, 1.0, 1.0),
    "deskew": (1.0, 0.5, 1.0, 0.5, 0.5),
    "deskew+blur": (1.0, 2.0, 3.0, 1.5, 1.0),
    "idm": (1.0, 0.0, 1.0, 0.0, 0.0),  # on subsets of 1,000 validation digits; patch, directions never (shape_ratios)
}
EXPONENT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # for each ratio but the distance's (1): coarse, not to overfit

GATE_METHOD = "euclidean"  # the digit gate: this method's rule on raw pixels (its preset k and votes, its EXPONENTS)
# The digit gate's share of the refusal budget per method (`fit_method_gate_share`, on all the validation digits
# and the DESIGN non-digits only: `python benchmarks/abstain.py --fit --gate-methods ...` prints this table). For
# each, the whole budget: the method's own tests then refuse only beyond every validation digit. Not listed: no gate.
GATES: dict = {"deskew": 1.0, "deskew+blur": 1.0, "downsample": 1.0, "idm": 1.0}
GATE_GRID = tuple(np.round(np.arange(0.1, 1.0 + 1e-9, 0.1), 1))  # one number: tenths of the budget


def method_exponents(method) -> Optional[np.ndarray]:
    """The fitted exponents of a method's shape score (`EXPONENTS`), None for DEFAULT_EXPONENTS."""
    from .methods import Method

    e = EXPONENTS.get(Method.parse(method).name)
    return None if e is None else np.asarray(e, np.float64)


@dataclass(frozen=True)
class Judgement:
    """Per query: the vote's winner, whether it is refused and why."""

    winners: np.ndarray  # (m,) the class the vote chose (shown anyway: "the nearest digits anyway")
    refused: np.ndarray  # (m,) bool
    nearest: np.ndarray  # (m,) distance to the nearest neighbour voting for the winner
    limit: np.ndarray  # (m,) the winner's limit on `score`
    share: np.ndarray  # (m,) the winner's share of the vote
    reasons: tuple  # (m,) str: why refused, "" when answered
    score: Optional[np.ndarray] = None  # (m,) what is held against `limit`: `nearest`, or the shape score
    factors: Optional[np.ndarray] = None  # (m, 5) the shape score's ratios (FACTORS); None: no pictures
    gate: Optional["Judgement"] = None  # the digit gate's judgement on the raw pixels; None: no gate

    @property
    def predictions(self) -> np.ndarray:
        """The winners, with REFUSED (-1) where refused (scikit-learn style); integer labels become int64."""
        w = self.winners.astype(np.int64) if np.issubdtype(self.winners.dtype, np.integer) else self.winners
        return np.where(self.refused, REFUSED, w)

    @property
    def coverage(self) -> float:
        """The share of queries answered."""
        return float(1 - self.refused.mean()) if len(self.refused) else float("nan")


@dataclass(frozen=True)
class AbstainRule:
    """The refusal thresholds of one (method, k, weights), calibrated on validation digits."""

    classes: np.ndarray  # class labels, in the order of `limits`
    limits: np.ndarray  # per class: the largest usual distance to the nearest neighbour voting for it
    min_share: float  # a winner with a smaller share of the vote is refused
    k: int
    weights: str
    tie_break: str
    coverage: float  # the share of the calibration digits answered
    n_calibration: int
    distance_name: str = "distance"
    # per class: the usual (median) distance, patch difference and ink of validation digits; None: the
    # distance alone is held against the limits (no pictures)
    scales: Optional[np.ndarray] = None
    # the shape score's exponents of its ratios (FACTORS): score = prod(ratio ** exponent); None: DEFAULT_EXPONENTS
    exponents: Optional[np.ndarray] = None
    gate: Optional["AbstainRule"] = None  # the digit gate (GATES), asked too; None: no gate
    pixels: str = ""  # what its pictures are, in its reasons ("its raw pixels": the gate's)

    @property
    def uses_pictures(self) -> bool:
        """Whether `judge` needs the drawings and their neighbours' pictures (the shape score)."""
        return self.scales is not None

    @classmethod
    def calibrate(
        cls,
        distances,
        neighbor_labels,
        *,
        k: int,
        weights: str = "uniform",
        tie_break: str = "smallest",
        coverage: float = DEFAULT_COVERAGE,
        classes=None,
        distance_name: str = "distance",
        queries=None,
        neighbor_images=None,
        exponents=None,
        distance_per_class: bool = True,
        gate: Optional[dict] = None,
        gate_share: Optional[float] = None,
        shape_factors=None,
    ) -> "AbstainRule":
        """Thresholds from the neighbour lists of validation digits (never test digits).

        distances, neighbor_labels: (m, >=k) of the validation digits, nearest first.
        queries (m, 28, 28) and neighbor_images (m, >=k, 28, 28), the validation digits and the
        pictures of their neighbours: calibrate the shape score (module docstring); None: the distance.
        exponents: of the shape score's five ratios (`fit_exponents`; four: the pieces' is 0); None: DEFAULT_EXPONENTS.
        distance_per_class: the distance ratio against the winner's usual distance; False: against all the
        validation digits' (IDM, `distance_per_class`).
        gate: the same validation digits' `gate_inputs` (their plain euclidean search): a digit gate refusing
        `gate_share` (0-1] of the refused, the other tests the rest among the digits it answers (`GATES`).
        shape_factors: instead of queries and neighbor_images, their (m, 5) `chunked_shape_factors`, computed
        beforehand a chunk of digits at a time (the pictures of 10,000 digits' k neighbours at once took 1-2 GB).
        """
        if not 0.5 <= coverage < 1:
            raise ParameterError(
                f"coverage must be between 0.5 and 1 (the share of real digits answered); got {coverage!r}"
            )
        _check_vote(k, weights, tie_break, np.shape(distances))
        labels = np.asarray(neighbor_labels)
        classes = np.unique(labels) if classes is None else np.asarray(classes)
        d = np.asarray(distances, np.float64)
        winners, score, share, scales, exponents = _calibration_scores(
            d, labels, classes, k, weights, tie_break, queries, neighbor_images, exponents, distance_per_class,
            shape_factors,
        )
        gate_rule, gated = (None, None) if gate is None else cls._gate(gate, gate_share, 1 - coverage, classes, tie_break)
        min_share, limits = _limits(score, winners, share, 1 - coverage, len(classes), gated)
        rule = cls(classes, limits, float(min_share), int(k), weights, tie_break, float("nan"), len(labels),
                   distance_name, scales, exponents, gate_rule)
        return rule._answering(winners, score, share, gated)[0]

    @classmethod
    def _gate(cls, gate: dict, gate_share, budget: float, classes, tie_break) -> tuple["AbstainRule", np.ndarray]:
        """(the digit gate: GATE_METHOD's rule on raw pixels refusing gate_share of the budget of the validation
        digits, which of them it refuses)."""
        if gate_share is None or not 0 < gate_share <= 1:
            raise ParameterError(f"gate_share must be in (0, 1] (the gate's share of the refusals); got {gate_share!r}")
        from .methods import Method

        m = Method.parse(GATE_METHOD)
        d = np.asarray(gate["distances"], np.float64)
        _check_vote(m.k, m.weights, tie_break, d.shape)
        labels = np.asarray(gate["neighbor_labels"])
        winners, score, share, scales, exponents = _calibration_scores(
            d, labels, classes, m.k, m.weights, tie_break, gate["queries"], gate["neighbor_images"],
            method_exponents(m), True,
        )
        min_share, limits = _limits(score, winners, share, gate_share * budget, len(classes))
        rule = cls(classes, limits, float(min_share), m.k, m.weights, tie_break, float("nan"), len(labels),
                   m.distance_name, scales, exponents, pixels="its raw pixels")
        return rule._answering(winners, score, share)

    def _answering(self, winners, score, share, gated=None) -> tuple["AbstainRule", np.ndarray]:
        """(this rule with its coverage: the share of its calibration digits answered, by the gate too; which it
        refuses)."""
        refused = self._judge_indices(winners, score, share)[0]
        if gated is not None:
            refused = refused | gated
        return dataclasses.replace(self, coverage=float(1 - refused.mean())), refused

    def judge(self, distances, neighbor_labels, queries=None, neighbor_images=None, gate=None) -> Judgement:
        """Refuse or answer each query from its neighbour lists (m, >=k), nearest first.

        queries (m, 28, 28) and neighbor_images (m, >=k, 28, 28): the drawings as they were drawn and
        their neighbours' training pictures, needed when the rule was calibrated with pictures.
        gate: the drawings' `gate_inputs` (a plain euclidean search), needed by a rule with a digit gate.
        """
        if self.gate is not None and gate is None:
            raise ParameterError("this refusal rule has a digit gate: pass the drawings' raw euclidean neighbours "
                                 "(gate=gate_inputs(...))")
        _check_vote(self.k, self.weights, self.tie_break, np.shape(distances))
        labels = np.asarray(neighbor_labels)
        d = np.asarray(distances, np.float64)
        winners, nearest, share = _vote(d, labels, self.classes, self.k, self.weights, self.tie_break)
        factors = None
        score = nearest
        if self.uses_pictures:
            if queries is None or neighbor_images is None:
                raise ParameterError(
                    "this refusal rule was calibrated with pictures: pass the drawings (queries) and their "
                    "neighbours' pictures (neighbor_images)"
                )
            factors = _shape_factors(queries, neighbor_images, d, labels, self.classes, winners, self.k)
            assert self.scales is not None  # uses_pictures: calibrated with the pictures' scales
            factors = factors / self.scales[winners]
            score = _score(factors, self.exponents)
        refused, far, split = self._judge_indices(winners, score, share)
        reasons = tuple(
            self._reason(c, dist, s, f, sp, None if factors is None else (sc, factors[n])) if r else ""
            for n, (c, dist, sc, s, r, f, sp) in enumerate(zip(winners, nearest, score, share, refused, far, split))
        )
        gated = None if self.gate is None else self.gate.judge(**gate)
        if gated is not None:  # its own reason first; else the gate's (on the raw pixels)
            reasons = tuple(r or g for r, g in zip(reasons, gated.reasons))
            refused = refused | gated.refused
        return Judgement(
            self.classes[winners], refused, nearest, self.limits[winners], share, reasons, score, factors, gated
        )

    def judge_lists(self, lists, queries=None, train_images=None, gate_lists=None) -> Judgement:
        """`judge` of a `NeighborLists` (e.g. the test set's); queries: its query digits, train_images: the
        dataset's training digits (read at the lists' training rows), for a rule with pictures (compared
        as the lists' method compares them); gate_lists: the same queries' GATE_METHOD lists, for a digit gate."""
        gate = None
        if self.gate is not None and gate_lists is not None:
            gate = gate_inputs(gate_lists.distances, gate_lists.neighbor_labels(gate_lists.k_max), queries,
                               train_images, gate_lists.neighbor_rows(self.gate.k))
        if queries is None or train_images is None or not self.uses_pictures:
            return self.judge(lists.distances, lists.neighbor_labels(lists.k_max), gate=gate)
        pics = compared_pictures(lists.method, queries, train_images, lists.neighbor_rows(self.k), lists.shifts)
        return self.judge(lists.distances, lists.neighbor_labels(lists.k_max), **pics, gate=gate)

    def _judge_indices(self, winners, score, share):
        far = score > self.limits[winners]
        split = share < self.min_share
        return far | split, far, split

    def _in_pixels(self, word: str = " in") -> str:
        return f"{word} {self.pixels}" if self.pixels else ""

    def _exponent(self, j: int) -> float:
        return float((DEFAULT_EXPONENTS if self.exponents is None else self.exponents)[j])

    def _weighed(self) -> str:
        """How the ratios are combined, when not the plain product of the first three."""
        if self.exponents is None or np.array_equal(self.exponents, DEFAULT_EXPONENTS):
            return ""
        names = ("far", "patch", "directions", "ink", "pieces")
        parts = [f"{n}^{self._exponent(j):g}" for n, j in zip(names, (0, 1, 3, 2, 4)) if self._exponent(j)]
        return " (" + " x ".join(parts) + ")"

    def _reason(self, c, d, s, far, split, shape=None) -> str:
        label = self.classes[c].item()
        parts = []
        if far and shape is not None:
            score, (fd, fp, fi, fo, fn) = shape
            turns = (
                f", its strokes run in directions {fo:.1f}x as unlike its neighbours' as usual"
                if self._exponent(3) else ""
            )
            assert self.scales is not None  # a shape score: calibrated with the pictures' scales
            usual_pieces = self.scales[c, 4]
            n_pieces = fn * usual_pieces
            if self._exponent(4) and n_pieces > usual_pieces:
                turns += (f", it is drawn in {n_pieces:.0f} separate pieces (a usual {label}: "
                          f"{usual_pieces:.0f})")
            parts.append(
                f"unlike every digit{self._in_pixels()}: its nearest {label} is {fd:.1f}x as far as real {label}s usually are from "
                f"theirs (at {self.distance_name} {d:,.0f}), where it differs most (a 3x3 patch) it differs "
                f"{fp:.1f}x as much as usual{turns}, and it has {fi:.1f}x the ink of a usual {label}: together "
                f"{score:.1f}{self._weighed()}, beyond the {self.limits[c]:.1f} that real {label}s stay within"
            )
        elif far:
            parts.append(
                f"too far from every digit{self._in_pixels()}: its nearest {label} is at {self.distance_name} {d:,.0f}, "
                f"beyond the {self.limits[c]:,.0f} that real {label}s stay within"
            )
        if split:
            parts.append(
                f"the neighbours{self._in_pixels(' of')} disagree: {label} has only {s:.0%} of the vote "
                f"(real digits: at least {self.min_share:.0%})"
            )
        return "; ".join(parts)


class Abstainer(BaseEstimator):
    """A fitted classifier that may refuse: scikit-learn style, around a fitted `KNNClassifier`.

    ``fit(X_val)`` calibrates on validation digits the classifier was NOT
    fitted on (their own copy in the training set would be at distance 0);
    ``predict`` returns REFUSED (-1) for a refused input, ``judge`` says why.

    >>> clf = KNNClassifier(5).fit(ds.fit_images, ds.fit_labels)       # doctest: +SKIP
    >>> Abstainer(clf).fit(ds.val_images).predict(drawings)            # doctest: +SKIP
    """

    def __init__(self, classifier, coverage: float = DEFAULT_COVERAGE, pictures: bool = True, train_images=None,
                 gate: bool = True):
        self.classifier = classifier
        self.coverage = coverage
        self.pictures = pictures  # the shape score, on the pictures as the classifier compared them
        # the classifier's training digits (28x28): a downsampling method keeps only 10x10 ones, and its shape
        # score compares 28x28 pictures; without them it keeps the distance alone. The digit gate searches them.
        self.train_images = train_images
        self.gate = gate  # the digit gate (`GATES`) for a method that has one, given train_images

    def _search(self, X):
        """(distances, indices, queries and neighbours' pictures as compared, or None, None)."""
        clf = self.classifier
        nb = clf.kneighbors_detail(X)
        small = clf.method_.recipe is not None and clf.method_.recipe.downsample
        if not (self.pictures and shape_applies(clf.method_)) or (small and self.train_images is None):
            return nb.distances, nb.indices, None, None
        k = clf.n_neighbors
        if small:
            pics = compared_pictures(clf.method_, X, self.train_images, nb.indices[:, :k], nb.shifts)
            return nb.distances, nb.indices, pics["queries"], pics["neighbor_images"]
        shifts = np.zeros(nb.indices.shape + (2,), int) if nb.shifts is None else nb.shifts
        pictures = np.stack(
            [[clf.training_image(int(j), s) for j, s in zip(row[:k], sh[:k])] for row, sh in zip(nb.indices, shifts)]
        )
        return nb.distances, nb.indices, clf.transform(X), pictures

    def _gate_search(self, X) -> Optional[dict]:
        """The digit gate's `judge` inputs of X (a plain euclidean search of the same training digits), or None."""
        if self.gate_ is None:
            return None
        d, i = self.gate_.kneighbors(X)
        return gate_inputs(d, self.gate_.neighbor_labels(i), X, self.train_images, i)

    def fit(self, X, y=None):
        from .classifier import KNNClassifier
        from .methods import Method

        clf = self.classifier
        share = gate_share(clf.method_) if self.gate and self.pictures and self.train_images is not None else None
        self.gate_ = None
        if share is not None:
            m = Method.parse(GATE_METHOD)
            labels = clf.neighbor_labels(np.arange(clf.n_samples_fit_))
            self.gate_ = KNNClassifier(m.k, method=m, weights=m.weights).fit(self.train_images, labels)
        d, i, queries, pictures = self._search(X)
        self.rule_ = AbstainRule.calibrate(
            d,
            clf.neighbor_labels(i),
            k=clf.n_neighbors,
            weights=clf.weights,
            tie_break=clf.tie_break,
            coverage=self.coverage,
            classes=clf.classes_,
            distance_name=clf.distance_name,
            queries=queries,
            neighbor_images=pictures,
            exponents=None if queries is None else method_exponents(clf.method_),
            distance_per_class=distance_per_class(clf.method_),
            gate=self._gate_search(X),
            gate_share=share,
        )
        return self

    def judge(self, X) -> Judgement:
        check_is_fitted(self, "rule_")
        d, i, queries, pictures = self._search(X)
        return self.rule_.judge(d, self.classifier.neighbor_labels(i), queries, pictures, self._gate_search(X))

    def predict(self, X) -> np.ndarray:
        return self.judge(X).predictions


def abstain_rule(
    ds,
    method="euclidean",
    *,
    k: Optional[int] = None,
    weights: Optional[str] = None,
    tie_break: str = "smallest",
    coverage: float = DEFAULT_COVERAGE,
    train_size: Optional[int] = None,
    pictures: bool = True,
    gate: bool = True,
) -> AbstainRule:
    """The rule of a method calibrated on a Dataset's validation split (neighbour lists cached on disk).

    k and weights default to the method's (a preset's, chosen on validation; else 5, uniform).
    train_size: calibrate against a class-balanced subset of the fit split of that size, for a
    classifier fitted on that many digits. pictures: the shape score where it applies (`shape_applies`;
    judge then needs the drawings and their neighbours' pictures as compared); False: the distance alone.
    gate: with pictures, the digit gate of a method that has one (`GATES`; judge then needs `gate_inputs`).
    """
    from .lists import neighbor_lists
    from .methods import Method

    method = Method.parse(method)
    k = method.k if k is None else k
    weights = method.weights if weights is None else weights
    val = neighbor_lists(ds, method, "val", train_size=train_size)
    pictures = pictures and shape_applies(method)
    share = gate_share(method) if gate and pictures else None
    raw = None
    if share is not None:
        g = neighbor_lists(ds, GATE_METHOD, "val", train_size=train_size)
        raw = gate_inputs(g.distances, g.neighbor_labels(g.k_max), ds.val_images, ds.train_images,
                           g.neighbor_rows(Method.parse(GATE_METHOD).k))
    return AbstainRule.calibrate(
        val.distances,
        val.neighbor_labels(val.k_max),
        k=k,
        weights=weights,
        tie_break=tie_break,
        coverage=coverage,
        classes=np.unique(ds.train_labels),
        distance_name=method.distance_name,
        exponents=method_exponents(method) if pictures else None,
        distance_per_class=distance_per_class(method),
        gate=raw,
        gate_share=share,
        shape_factors=chunked_shape_factors(method, ds.val_images, ds.train_images, val, k, weights, tie_break,
                                            np.unique(ds.train_labels)) if pictures else None,
    )


def chunked_shape_factors(method, queries, train_images, lists, k, weights, tie_break, classes) -> np.ndarray:
    """(m, 5) `_shape_factors` of the queries whose NeighborLists are `lists`, their neighbours' pictures
    prepared (`compared_pictures`) a chunk of CALIBRATION_CHUNK_PICTURES at a time: the same numbers as all at
    once, in bounded memory (10,000 validation digits' 47 deskewed neighbours are 1.5 GB in float32)."""
    rows, d = lists.neighbor_rows(k), np.asarray(lists.distances, np.float64)
    labels = lists.neighbor_labels(lists.k_max)
    step = max(1, CALIBRATION_CHUNK_PICTURES // k)
    out = []
    for a in range(0, len(rows), step):
        part = slice(a, a + step)
        shifts = None if lists.shifts is None else lists.shifts[part]
        pics = compared_pictures(method, queries[part], train_images, rows[part], shifts)
        winners = _vote(d[part], labels[part], classes, k, weights, tie_break)[0]
        out.append(_shape_factors(pics["queries"], pics["neighbor_images"], d[part], labels[part], classes, winners, k))
    return np.concatenate(out) if out else np.empty((0, len(FACTORS)))


def gate_share(method) -> Optional[float]:
    """A method's digit gate's share of the refusal budget (`GATES`), None: no gate."""
    from .methods import Method

    return GATES.get(Method.parse(method).name)


def gate_inputs(distances, neighbor_labels, queries, train_images, rows) -> dict:
    """The digit gate's `judge` arguments: the drawings' plain GATE_METHOD search (distances, their neighbours'
    labels and `rows` into train_images, nearest first) and the raw pictures it compared."""
    return dict(distances=distances, neighbor_labels=neighbor_labels,
                **compared_pictures(GATE_METHOD, queries, train_images, np.asarray(rows)))


def shape_applies(method) -> bool:
    """Whether the shape score is used for a method: every method that compares pixels in place, at 28x28
    (10x10 downsampling: on its 28x28 pictures before downsampling); IDM (pixels move) only once its powers of
    the ratios of `shape_ratios` are fitted (`EXPONENTS`), else the distance alone."""
    from .methods import Method

    method = Method.parse(method)
    r = method.recipe
    return r is None or r.rerank is None or method.name in EXPONENTS


def shape_ratios(method) -> np.ndarray:
    """(5,) bool: which of the shape score's ratios (FACTORS) a method's fit may give a power. IDM's pixels
    move: compared in place, its neighbours' patch and stroke directions refused fewer held-out non-digits
    than the distance alone, and warping them costs ~10 ms a drawing (README); its ink and pieces are the
    drawing's own, against the class's usual, and need no warping."""

    if distance_per_class(method):
        return np.ones(len(FACTORS), bool)
    return np.array([True, False, True, False, True])


def distance_per_class(method) -> bool:
    """Whether a method's distance ratio is against the winner's usual distance (`AbstainRule.calibrate`). Not
    IDM's: non-digits, matched by moving pixels, win the classes whose digits are far from each other (8s, 2s),
    and against those classes' usual distance looked nearer (design non-digits refused 36% against 66% with
    the overall usual distance, on 1,000 validation digits: benchmarks/abstain_idm_grid.py)."""
    from .methods import Method

    r = Method.parse(method).recipe
    return r is None or r.rerank is None


def compared_pictures(method, queries, train_images, rows, shifts=None) -> dict:
    """The queries and their neighbours (`rows` (m, k) of train_images, moved by `shifts` (m, >=k, 2)) as the
    method compared them: raw pixels for classic kNN, a recipe's prepared pictures (in its padded frame, at
    the matched shift) otherwise. Only the training digits that are someone's neighbour are prepared."""
    from .methods import Method, pad_frame, prepare_images, translate

    method = Method.parse(method)
    rows = np.asarray(rows)
    if method.is_classic:
        return dict(queries=np.asarray(queries), neighbor_images=np.asarray(train_images)[rows])
    recipe = method.recipe
    if recipe.downsample:  # compared at 28x28 (`shape_applies`)
        import dataclasses

        recipe = dataclasses.replace(recipe, downsample=False)
    used, inverse = np.unique(rows, return_inverse=True)
    prepared = pad_frame(prepare_images(np.asarray(train_images)[used], recipe), recipe.shifts)
    pictures = prepared[inverse.reshape(rows.shape)]
    if shifts is not None and recipe.shifts:
        sh = np.asarray(shifts)[:, : rows.shape[1]]
        for dy, dx in {tuple(int(v) for v in x) for x in sh.reshape(-1, 2)} - {(0, 0)}:
            at = (sh[..., 0] == dy) & (sh[..., 1] == dx)
            pictures[at] = translate(pictures[at], dy, dx)
    return dict(queries=pad_frame(prepare_images(queries, recipe), recipe.shifts), neighbor_images=pictures)


def fit_exponents(rule: "AbstainRule", val: "Judgement", design: "Judgement", coverage: float = DEFAULT_COVERAGE,
                  grid=EXPONENT_GRID, groups=None, ratios=None) -> np.ndarray:
    """The exponents (1, a, b, ...) of the shape score's ratios (FACTORS) refusing the most DESIGN non-digits
    while the validation digits keep `coverage` (limits recomputed for each candidate, as
    `AbstainRule.calibrate` would); ties go to the one nearest (1, 1, ...). groups: the design drawings'
    kinds (letters, shapes, faces, scribbles): first the exponents whose least-refused kind is refused most
    (no kind given up for the others: counting drawings alone traded the 6 faces for letters), then the most
    design non-digits. ratios: (5,) bool, the ratios given a power (`shape_ratios`); the others' is 0.

    rule: calibrated with pictures on the validation digits; val, design: its judgements of those validation
    digits and of the design non-digits (never held-out ones). Only the ratios of the exponents matter
    (a power of the score refuses the same drawings), so the distance's is 1.
    """
    if val.factors is None or design.factors is None:
        raise ParameterError("fit_exponents needs judgements with the shape score's ratios (a rule with pictures)")
    vw = np.searchsorted(rule.classes, val.winners)
    dw = np.searchsorted(rule.classes, design.winners)
    lv, ld = np.log(val.factors), np.log(design.factors)
    groups, sizes = _kinds(groups, len(dw))
    best: np.ndarray = np.ones(val.factors.shape[1]) if ratios is None else np.asarray(ratios, np.float64)
    best_key = None
    fitted = np.ones(val.factors.shape[1], bool) if ratios is None else np.asarray(ratios, bool)
    for free in itertools.product(grid, repeat=int(fitted[1:].sum())):
        e = np.zeros(len(fitted))
        e[0] = 1.0
        e[1:][fitted[1:]] = free
        min_share, limits = _limits(np.exp(lv @ e), vw, val.share, 1 - coverage, len(rule.classes))
        refused = (np.exp(ld @ e) > limits[dw]) | (design.share < min_share)
        key = _design_key(refused, groups, sizes) + (float(np.abs(e - fitted).sum()),)
        if best_key is None or key < best_key:
            best, best_key = e, key
    return best


def fit_method_exponents(ds, method="euclidean", *, coverage: float = DEFAULT_COVERAGE,
                         train_size: Optional[int] = None, grid=EXPONENT_GRID) -> np.ndarray:
    """`fit_exponents` of a method (at its preset k and votes) from a Dataset: its validation digits and the
    DESIGN non-digits (`nondigit_drawings(part="design")`, one per distinct picture, digit-like ones left out),
    both searched against the training digits before the validation split, each kind of non-digit weighed
    (`fit_exponents` groups); nothing else is read (not the
    held-out non-digits, not the test set). How `EXPONENTS` was made (benchmarks/abstain.py --fit)."""
    ones, val, design, kinds = _validation_and_design(ds, method, coverage, train_size, exponents=None)
    return fit_exponents(ones, val, design, coverage, groups=kinds, ratios=shape_ratios(method), grid=grid)


def fit_gate_share(rule: "AbstainRule", val: "Judgement", design: "Judgement", gate: "AbstainRule",
                   gate_val: "Judgement", gate_design: "Judgement", coverage: float = DEFAULT_COVERAGE,
                   grid=GATE_GRID, groups=None) -> float:
    """The digit gate's share of the refusal budget (`GATES`) refusing the most DESIGN non-digits, the method's
    own tests and the gate together answering `coverage` of the validation digits (limits set as
    `AbstainRule.calibrate` sets them for each share); each kind weighed as in `fit_exponents`; ties go to the
    smaller share (more left to the method's own tests).

    rule, gate: the method's and GATE_METHOD's rules, calibrated with pictures on the validation digits (no
    gate); val, design / gate_val, gate_design: their judgements of those validation digits and of the design
    non-digits (never held-out ones).
    """
    n = len(rule.classes)

    def at(j):  # (winner indices, score, share) of a judgement
        return np.searchsorted(rule.classes, j.winners), j.score, j.share

    def refuses(j, min_share, limits):
        w, score, share = at(j)
        return (score > limits[w]) | (share < min_share)

    groups, sizes = _kinds(groups, len(design.winners))
    gw, gscore, gshare = at(gate_val)
    w, score, share = at(val)

    def key(s):
        gate_limits = _limits(gscore, gw, gshare, s * (1 - coverage), n)
        own = _limits(score, w, share, 1 - coverage, n, refuses(gate_val, *gate_limits))
        return _design_key(refuses(gate_design, *gate_limits) | refuses(design, *own), groups, sizes) + (float(s),)

    return float(min(grid, key=key))


def fit_method_gate_share(ds, method, *, coverage: float = DEFAULT_COVERAGE, train_size: Optional[int] = None,
                          grid=GATE_GRID) -> float:
    """`fit_gate_share` of a method (its preset k and votes, its `EXPONENTS`) from a Dataset, as
    `fit_method_exponents` reads it: the validation digits and the DESIGN non-digits only, searched by the
    method and by GATE_METHOD against the training digits before the validation split. How `GATES` was made
    (benchmarks/abstain.py --fit --gate)."""
    rule, val, design, kinds = _validation_and_design(ds, method, coverage, train_size, method_exponents(method))
    gate, gate_val, gate_design, _ = _validation_and_design(ds, GATE_METHOD, coverage, train_size,
                                                            method_exponents(GATE_METHOD))
    return fit_gate_share(rule, val, design, gate, gate_val, gate_design, coverage, grid, groups=kinds)


def _validation_and_design(ds, method, coverage, train_size, exponents):
    """(a method's rule calibrated with pictures on the validation digits, its judgements of them and of the
    DESIGN non-digits (one per distinct picture, digit-like ones left out) searched against the training digits
    before the validation split, those non-digits' kinds). Nothing else is read."""
    from .lists import find_neighbors, neighbor_lists, split_data
    from .methods import Method
    from .nondigits import distinct, nondigit_drawings

    method = Method.parse(method)
    k, weights = method.k, method.weights
    val = neighbor_lists(ds, method, "val", train_size=train_size)
    vpics = compared_pictures(method, ds.val_images, ds.train_images, val.neighbor_rows(k), val.shifts)
    vl = val.neighbor_labels(val.k_max)
    rule = AbstainRule.calibrate(val.distances, vl, k=k, weights=weights, coverage=coverage,
                                 classes=np.unique(ds.train_labels), exponents=exponents,
                                 distance_per_class=distance_per_class(method), **vpics)
    design = [x for x in distinct(nondigit_drawings(part="design")) if x.kind != "digit-like"]
    X = np.stack([x.digit for x in design])
    part = split_data(ds, "val", train_size)  # the training digits the validation digits were searched against
    nd = find_neighbors(part.train_images, part.train_labels, X, np.zeros(len(X), int), method=method)
    dpics = compared_pictures(method, X, part.train_images, nd.indices[:, :k], nd.shifts)
    jd = rule.judge(nd.distances, nd.neighbor_labels(nd.k_max), **dpics)
    return rule, rule.judge(val.distances, vl, **vpics), jd, [x.kind for x in design]


def _kinds(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(each design drawing's kind as an index, the number of drawings of each kind); None: one kind."""
    groups = np.zeros(n, int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(groups) != n:
        raise ParameterError(f"groups must give one kind per design drawing: {len(groups)} for {n}")
    return groups, np.bincount(groups)


def _design_key(refused, groups, sizes) -> tuple:
    """Smaller is better: first the least-refused kind of design non-digit refused most, then the most refused."""
    rates = np.bincount(groups, refused, len(sizes)) / sizes
    return -float(rates.min()), -float(refused.mean())


def answered_accuracy(judgement: Judgement, true_labels) -> float:
    """Accuracy on the answered queries only (nan when none is answered)."""
    ok = ~judgement.refused
    if not ok.any():
        return float("nan")
    return float(np.mean(judgement.winners[ok] == np.asarray(true_labels)[ok]))


def _calibration_scores(d, labels, classes, k, weights, tie_break, queries, neighbor_images, exponents,
                        distance_per_class, raw=None):
    """(winners, what is held against the limits, the winner's share of the vote, the scales, the exponents) of
    calibration digits: the shape score when there are pictures or their factors `raw` (`AbstainRule.calibrate`),
    else the distance."""
    winners, nearest, share = _vote(d, labels, classes, k, weights, tie_break)
    scales = None
    if exponents is not None:
        exponents = np.asarray(exponents, np.float64)
        if exponents.shape == (len(FACTORS) - 1,):  # four powers, from before the pieces: the pieces' is 0
            exponents = np.append(exponents, 0.0)
        if exponents.shape != (len(FACTORS),) or not np.isfinite(exponents).all() or (exponents < 0).any():
            raise ParameterError(
                f"exponents must be {len(FACTORS)} non-negative numbers ({', '.join(FACTORS)}); got {exponents!r}"
            )
    if queries is None and neighbor_images is None and raw is None:
        exponents = None  # no pictures: the distance alone
    else:
        if raw is None:
            raw = _shape_factors(queries, neighbor_images, d, labels, classes, winners, k)
        elif np.shape(raw) != (len(d), len(FACTORS)):
            raise ParameterError(f"shape_factors must be ({len(d)}, {len(FACTORS)}); got {np.shape(raw)}")
        scales = np.stack([_per_class(raw[:, j], winners, len(classes), np.median) for j in range(len(FACTORS))],
                          axis=1)
        if not distance_per_class:
            scales[:, 0] = np.median(raw[:, 0])
        exponents = np.asarray(DEFAULT_EXPONENTS if exponents is None else exponents, np.float64)
        nearest = _score(raw / scales[winners], exponents)  # the score held against the limits
    return winners, nearest, share, scales, exponents


def _vote(distances, labels, classes, k, weights, tie_break):
    """(winner class index, distance to the nearest neighbour voting for it, its share of the vote)."""
    cls = np.searchsorted(classes, labels[:, :k])
    if np.any(cls >= len(classes)) or np.any(classes[np.minimum(cls, len(classes) - 1)] != labels[:, :k]):
        raise ParameterError("the neighbours carry labels that are not among the rule's classes")
    d = distances[:, :k]
    scores = tally(cls, d, len(classes), weights)
    winners, _ = decide(scores, cls, tie_break, 0)
    total = scores.sum(axis=1)
    share = scores[np.arange(len(winners)), winners] / np.where(total > 0, total, 1)
    nearest = np.where(cls == winners[:, None], d, np.inf).min(axis=1)
    return winners, nearest, share


FACTORS = ("distance", "patch", "ink", "directions", "pieces")  # the shape score's ratios, in this order
SHAPE_CHUNK_PICTURES = 8192  # neighbours' pictures compared at once (float32, ~30 MB an array)
CALIBRATION_CHUNK_PICTURES = 100_000  # neighbours' pictures prepared at once when calibrating (`chunked_shape_factors`)


def _shape_factors(queries, neighbor_images, distances, labels, classes, winners, k) -> np.ndarray:
    """(m, 5): distance to the nearest neighbour voting for the winner, the largest mean squared difference
    over a 3x3 patch to the best-matching neighbour voting for it, the drawing's ink (its L2 norm), how
    differently its strokes run: the L1 difference of the histograms of stroke directions (`_directions`) to
    the neighbour voting for the winner whose histogram is the closest, and its number of pieces (`_pieces`).

    Pictures (0-255) as the method compared them (`compared_pictures`)."""
    Q = np.asarray(queries)
    Y = np.asarray(neighbor_images)
    m = len(Q)
    if Q.ndim != 3 or Y.ndim != 4 or Y.shape[0] != m or Y.shape[1] < k or Y.shape[2:] != Q.shape[1:]:
        raise ParameterError(
            f"queries must be (m, H, W) and neighbor_images (m, >=k={k}, H, W); got {Q.shape} and {Y.shape}"
        )
    H, W = Q.shape[1:]
    cls = np.searchsorted(classes, labels[:, :k])
    voters = cls == winners[:, None]
    out = np.empty((m, len(FACTORS)))
    out[:, 0] = np.where(voters, distances[:, :k], np.inf).min(axis=1)
    patch = np.empty((m, k))
    turns = np.empty((m, k))
    neighbour_turns = _directions_once(Y[:, :k])  # (m, k, 8)
    step = max(1, SHAPE_CHUNK_PICTURES // k)
    for a in range(0, m, step):  # chunks of (step, k, 30, 30) float32: SHAPE_CHUNK_PICTURES pictures at most
        q = Q[a : a + step].astype(np.float32)
        y = Y[a : a + step, :k].astype(np.float32)
        diff = np.pad((q[:, None] - y) ** 2, ((0, 0), (0, 0), (1, 1), (1, 1)))
        box = np.zeros(diff.shape[:2] + (H, W), np.float32)  # the mean over each 3x3 patch
        for i in range(3):
            for j in range(3):
                box += diff[:, :, i : i + H, j : j + W]
        box /= 9
        patch[a : a + step] = box.reshape(len(q), k, -1).max(axis=2)
        turns[a : a + step] = np.abs(_directions(q)[:, None] - neighbour_turns[a : a + step]).sum(axis=2)
        pause_point()  # in a calibration (a background job): the server's requests first, and stop when cancelled
    out[:, 1] = np.where(voters, patch, np.inf).min(axis=1)
    out[:, 2] = np.sqrt(np.square(Q.reshape(m, -1).astype(np.float64)).sum(axis=1))
    out[:, 3] = np.where(voters, turns, np.inf).min(axis=1)
    out[:, 4] = np.maximum(_pieces(Q), 1)  # an empty drawing: one piece (no ratio of 0)
    return np.maximum(out, 1e-9)  # a ratio of 0 (an exact copy) stays a ratio


DIRECTION_BINS = 8


def _directions(images) -> np.ndarray:
    """(..., 8) the share of the edges' strength running in each of 8 directions (0-180 degrees, 22.5 each):
    squares, letters and zigzags have a few straight directions, handwritten digits curve through many."""
    a = np.asarray(images, np.float32)
    lead, (H, W) = a.shape[:-2], a.shape[-2:]
    a = a.reshape(-1, H, W)
    gy = np.zeros_like(a)
    gx = np.zeros_like(a)
    gy[:, 1:-1, :] = a[:, 2:, :] - a[:, :-2, :]
    gx[:, :, 1:-1] = a[:, :, 2:] - a[:, :, :-2]
    strength = np.hypot(gx, gy)
    edge = strength > 0  # most pixels are flat: directions only where an edge is (the cost of the calibration)
    which = np.nonzero(edge)[0]
    b = np.minimum((np.mod(np.arctan2(gy[edge], gx[edge]), np.pi) * (DIRECTION_BINS / np.pi)).astype(np.int64),
                   DIRECTION_BINS - 1)
    h = np.bincount(which * DIRECTION_BINS + b, weights=strength[edge], minlength=len(a) * DIRECTION_BINS)
    h = h.reshape(lead + (DIRECTION_BINS,))
    return h / np.maximum(h.sum(axis=-1, keepdims=True), 1e-9)


def _directions_once(images) -> np.ndarray:
    """`_directions` of (..., H, W) pictures, each distinct picture once: the validation digits' 50,000
    neighbours are about 27,000 distinct training digits (most of the calibration's time)."""
    a = np.ascontiguousarray(images)
    lead, (H, W) = a.shape[:-2], a.shape[-2:]
    flat = a.reshape(-1, H * W)
    keys = flat.view(np.dtype((np.void, H * W * flat.itemsize))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    h = np.concatenate([_directions(flat[first[i : i + 8192]].reshape(-1, H, W)) for i in range(0, len(first), 8192)])
    return h[inverse.ravel()].reshape(lead + (DIRECTION_BINS,))


PIECE_INK = 128  # a pixel with at least half the ink belongs to a piece


def _pieces(images) -> np.ndarray:
    """(m,) the number of separate pieces of ink (8-connected pixels of at least PIECE_INK): a 0 is one ring, a
    smiley a ring with two eyes and a mouth inside (3-4). One `ndimage.label` over the stack (no links
    between pictures, so each picture's labels are a run of numbers in scan order)."""
    from scipy import ndimage

    ink = np.asarray(images) >= PIECE_INK
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True  # 8-connected within a picture, never across pictures
    labels, _ = ndimage.label(ink, structure=structure)
    flat = labels.reshape(len(ink), -1)
    first = np.where(flat > 0, flat, np.iinfo(flat.dtype).max).min(axis=1)
    last = flat.max(axis=1)
    return np.where(last > 0, last - first + 1, 0)


DEFAULT_EXPONENTS = (1.0, 1.0, 1.0, 0.0, 0.0)  # a method without fitted exponents: distance x patch x ink, as before


def _score(ratios, exponents) -> np.ndarray:
    """The shape score: the product of the ratios, each to its exponent (DEFAULT_EXPONENTS when None)."""
    e = np.asarray(DEFAULT_EXPONENTS if exponents is None else exponents, np.float64)
    return np.exp(np.log(ratios) @ e)


def _limits(score, winners, share, budget, n_classes, gated=None) -> tuple[float, np.ndarray]:
    """(min_share, per-class limits on score) refusing `budget` of the calibration digits in all. gated: the
    calibration digits the digit gate refuses: they count in the budget, the limits are set on the others."""
    if gated is not None:
        keep = ~np.asarray(gated, bool)
        budget = max(budget - (1 - keep.mean()), 0.0) / max(keep.mean(), 1e-12)
        score, winners, share = score[keep], winners[keep], share[keep]
    min_share = _min_share(share, budget * AGREEMENT_BUDGET)
    keep = share >= min_share
    # The distance test refuses the rest of the budget among the digits the agreement test kept.
    level = 1 - (budget - (1 - keep.mean())) / max(keep.mean(), 1e-12)
    level = float(np.clip(level, 0.5, 1.0))
    overall = float(np.quantile(score[keep], level)) if keep.any() else float(np.inf)
    limits = np.full(n_classes, overall)
    for c in range(n_classes):
        mine = keep & (winners == c)
        if mine.sum() * (1 - level) >= TAIL_DIGITS:
            limits[c] = np.quantile(score[mine], level)
    return min_share, limits


def _per_class(values, winners, n_classes, stat) -> np.ndarray:
    """stat of values per winning class; a class with fewer than 10 calibration digits uses all of them."""
    overall = stat(values)
    return np.array([stat(values[winners == c]) if np.sum(winners == c) >= 10 else overall for c in range(n_classes)])


def _min_share(share: np.ndarray, budget: float) -> float:
    """The largest share threshold that refuses at most `budget` of the calibration digits."""
    values = np.unique(share)
    best = 0.0
    for v in values:  # ascending: refusing share < v
        if np.mean(share < v) <= budget:
            best = float(v)
        else:
            break
    return best


def _check_vote(k, weights, tie_break, shape) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive whole number; got {k!r}")
    if len(shape) != 2 or shape[1] < k:
        raise ParameterError(f"neighbour lists of shape {shape} hold fewer than k={k} neighbours per query")
    if weights not in WEIGHTS:
        raise ParameterError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    if tie_break not in TIE_BREAKS:
        raise ParameterError(f"unknown tie_break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}")
