"""Abstaining (knn_core.abstain, knn_core.nondigits) and explaining (knn_core.explain), #21."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from knn_core import KNNClassifier
from knn_core.abstain import (
    EXPONENTS,
    GATE_GRID,
    GATES,
    REFUSED,
    Abstainer,
    AbstainRule,
    abstain_rule,
    answered_accuracy,
    compared_pictures,
    fit_exponents,
    fit_gate_share,
    fit_method_gate_share,
    gate_inputs,
    shape_applies,
    shape_ratios,
)
from knn_core.errors import ParameterError
from knn_core.explain import difference, explain_neighbour, idm_match, pixel_contributions, why_not
from knn_core.lists import find_neighbors, neighbor_lists, split_data
from knn_core.methods import idm_distances, lp_distances
from knn_core.nondigits import KINDS, nondigit_drawings

pytestmark = pytest.mark.usefixtures("one_blas_thread")
SIZE = 2000  # training digits: quick searches, distances of the same kind as the full set's


@pytest.fixture(scope="module")
def rule(mnist):
    return abstain_rule(mnist, "euclidean", k=5, train_size=SIZE)


@pytest.fixture(scope="module")
def clf(mnist):
    part = split_data(mnist, "test", SIZE)
    return KNNClassifier(5).fit(part.train_images, part.train_labels)


def _named(name):
    return next(x for x in nondigit_drawings() if x.name == name)


# ------------------------------------------------------------------------------------------ abstain


def test_the_rule_is_calibrated_on_validation_digits_only(mnist, rule):
    """The same limits and usual values from the validation split searched by hand against the fit split;
    changing the test set changes nothing; the validation coverage is the one asked for."""
    part = split_data(mnist, "val", SIZE)
    assert not np.isin(part.train_rows, np.arange(len(mnist.fit_labels), len(mnist.train_labels))).any()
    by_hand = find_neighbors(part.train_images, part.train_labels, mnist.val_images, mnist.val_labels)
    expected = AbstainRule.calibrate(
        by_hand.distances, by_hand.neighbor_labels(50), k=5, classes=np.arange(10), distance_name="euclidean distance",
        queries=mnist.val_images, neighbor_images=part.train_images[by_hand.indices[:, :5]],
        exponents=EXPONENTS["euclidean"],  # fitted once on validation + design non-digits (below)
    )
    assert rule.uses_pictures
    np.testing.assert_array_equal(rule.exponents, EXPONENTS["euclidean"])
    np.testing.assert_array_equal(rule.limits, expected.limits)
    np.testing.assert_array_equal(rule.scales, expected.scales)
    assert rule.min_share == expected.min_share and rule.n_calibration == 10_000
    # the usual distance of a class is the median over the validation digits the vote gave to it
    winners = by_hand.predict(5)
    nearest = np.where(by_hand.neighbor_labels(5) == winners[:, None], by_hand.distances[:, :5], np.inf).min(axis=1)
    assert rule.scales[7, 0] == np.median(nearest[winners == 7])
    ink = np.sqrt(np.square(mnist.val_images[winners == 3].reshape(-1, 784).astype(float)).sum(axis=1))
    assert rule.scales[3, 2] == pytest.approx(np.median(ink), rel=1e-12)
    other_tests = dataclasses.replace(mnist, test_images=mnist.test_images[::-1].copy(), _fingerprint=[])
    assert other_tests.fingerprint != mnist.fingerprint
    other = abstain_rule(other_tests, "euclidean", k=5, train_size=SIZE)
    np.testing.assert_array_equal(other.limits, rule.limits)
    np.testing.assert_array_equal(other.scales, rule.scales)
    assert 0.992 <= rule.coverage <= 0.994  # asked 0.993 of the validation digits answered


def test_abstainer_fitted_on_validation_equals_the_rule(mnist, rule):
    part = split_data(mnist, "val", SIZE)
    fit = KNNClassifier(5).fit(part.train_images, part.train_labels)
    ab = Abstainer(fit).fit(mnist.val_images)
    np.testing.assert_allclose(ab.rule_.limits, rule.limits)
    np.testing.assert_allclose(ab.rule_.scales, rule.scales)
    pred = ab.predict(np.stack([mnist.test_images[0], _named("square t22").digit]))
    assert pred.tolist() == [7, REFUSED]
    distance_only = Abstainer(fit, pictures=False).fit(mnist.val_images)  # no pictures: the distance alone, as before
    assert not distance_only.rule_.uses_pictures
    np.testing.assert_allclose(
        distance_only.rule_.limits, abstain_rule(mnist, "euclidean", k=5, train_size=SIZE, pictures=False).limits
    )


def test_a_10x10_abstainer_compares_28x28_pictures_given_the_training_digits(mnist):
    part = split_data(mnist, "val", SIZE)
    fit = KNNClassifier(4, method="downsample", weights="distance").fit(part.train_images, part.train_labels)
    val = mnist.val_images[:3000]
    ab = Abstainer(fit, train_images=part.train_images).fit(val)
    assert ab.rule_.uses_pictures
    np.testing.assert_array_equal(ab.rule_.exponents, EXPONENTS["downsample"])
    square = _named("square t22").digit
    j = ab.judge(square[None])
    ink = np.sqrt(np.square(square.astype(float)).sum())  # the 28x28 drawing's ink, not its 10x10 picture's
    assert j.factors[0, 2] * ab.rule_.scales[np.searchsorted(ab.rule_.classes, j.winners[0]), 2] == pytest.approx(ink)
    assert not Abstainer(fit).fit(val).rule_.uses_pictures  # without 28x28 training digits: the distance alone


def _judge(rule, clf, mnist, queries):
    d, i = clf.kneighbors(queries)
    pictures = split_data(mnist, "test", SIZE).train_images[i]
    return rule.judge(d, clf.neighbor_labels(i), queries, pictures)


def test_a_nondigit_is_refused_with_a_reason_and_a_test_digit_answered(mnist, rule, clf):
    queries = np.stack([mnist.test_images[0], _named("square t22").digit, _named("M hershey-simplex 0.80 t36").digit])
    j = _judge(rule, clf, mnist, queries)
    assert j.refused.tolist() == [False, True, True]
    assert j.predictions[0] == 7 and j.reasons[0] == ""
    assert "unlike every digit" in j.reasons[1] and f"beyond the {j.limit[1]:.1f}" in j.reasons[1]
    assert (j.score[1:] > j.limit[1:]).all() and j.score[0] < j.limit[0]
    # the score is the product of its ratios, each against the winner's usual value, to the method's exponent
    assert j.factors.shape == (3, 5)
    np.testing.assert_allclose(j.score, np.prod(j.factors ** rule.exponents, axis=1))
    np.testing.assert_allclose(j.factors[:, 0], j.nearest / rule.scales[j.winners, 0])
    ink = np.sqrt(np.square(queries.reshape(3, -1).astype(float)).sum(axis=1))
    np.testing.assert_allclose(j.factors[:, 2], ink / rule.scales[j.winners, 2])
    assert f"{j.factors[1, 0]:.1f}x as far" in j.reasons[1]


def test_a_drawn_smiley_is_refused_for_its_pieces(mnist, rule, clf):
    """A smiley is a ring like a 0 (the first non-digit a student draws): its eyes and mouth, separate pieces
    inside the ring, are what a 0 lacks."""
    smileys = [x for x in nondigit_drawings(part="design") if x.name.startswith("smiling face")]
    assert len(smileys) == 3
    j = _judge(rule, clf, mnist, np.stack([x.digit for x in smileys]))
    assert j.refused.all() and (j.winners == 0).all()  # the nearest digits anyway: 0s
    assert (j.factors[:, 4] * rule.scales[0, 4] >= 3).all() and rule.scales[0, 4] == 1  # a usual 0: one piece
    assert all("separate pieces (a usual 0: 1)" in r for r in j.reasons)


def test_idms_shape_score_powers_only_its_distance_ink_and_pieces(mnist, rule, clf):
    """IDM's pixels move: its neighbours' patch and stroke directions are never given a power."""
    assert shape_applies("idm") and shape_ratios("idm").tolist() == [True, False, True, False, True]
    assert shape_ratios("euclidean").all()
    assert EXPONENTS["idm"][1] == 0 and EXPONENTS["idm"][3] == 0
    val = neighbor_lists(mnist, "euclidean", "val", train_size=SIZE)
    jv = rule.judge(val.distances, val.neighbor_labels(val.k_max), mnist.val_images,
                    mnist.train_images[val.neighbor_rows(5)])
    nd = [x for x in nondigit_drawings(part="design") if x.kind != "digit-like"][:60]
    jd = _judge(rule, clf, mnist, np.stack([x.digit for x in nd]))
    groups = [x.kind for x in nd]
    assert fit_exponents(rule, jv, jd, groups=groups, ratios=shape_ratios("idm"), grid=(1.0,)).tolist() == [1, 0, 1, 0, 1]
    assert fit_exponents(rule, jv, jd, groups=groups, grid=(1.0,)).tolist() == [1, 1, 1, 1, 1]
    e = fit_exponents(rule, jv, jd, groups=groups, ratios=shape_ratios("idm"), grid=(0.0, 0.5, 1.0))
    assert e[1] == 0 and e[3] == 0


@pytest.mark.slow
def test_a_drawn_smiley_is_refused_by_the_idm_rule(mnist):
    """IDM with its shape score (distance against all validation digits' usual one, ink): on a small
    training set, 300 validation digits (one overall limit), the smileys are refused, a test digit answered."""
    part = split_data(mnist, "val", SIZE)
    fit = KNNClassifier(4, method="idm", weights="distance").fit(part.train_images, part.train_labels)
    ab = Abstainer(fit).fit(mnist.val_images[:300])
    assert ab.rule_.uses_pictures
    np.testing.assert_array_equal(ab.rule_.exponents, EXPONENTS["idm"])
    assert (ab.rule_.scales[:, 0] == ab.rule_.scales[0, 0]).all()  # one usual distance for every class
    smileys = [x for x in nondigit_drawings(part="design") if x.name.startswith("smiling face")]
    j = ab.judge(np.stack([mnist.test_images[0]] + [x.digit for x in smileys]))
    assert j.refused.tolist() == [False, True, True, True] and j.predictions[0] == 7


@pytest.mark.slow
def test_every_design_face_is_refused_by_the_draw_pages_default_rule(mnist):
    """The Draw page's rule (euclidean, all 60,000 training digits, calibrated on the whole validation split)."""
    faces = [x for x in nondigit_drawings(part="design") if x.kind == "face"]
    queries = np.stack([x.digit for x in faces])
    full = KNNClassifier(5).fit(mnist.train_images, mnist.train_labels)
    d, i = full.kneighbors(queries)
    j = abstain_rule(mnist, "euclidean").judge(d, full.neighbor_labels(i), queries, mnist.train_images[i])
    assert len(faces) == 6 and j.refused.all()


def test_pieces_are_counted_8_connected_per_picture():
    from knn_core.abstain import _pieces

    face = np.zeros((28, 28), np.uint8)
    yy, xx = np.mgrid[:28, :28]
    face[np.abs(np.hypot(yy - 14, xx - 14) - 10) < 1.5] = 255  # a ring
    face[10:12, 10:12] = face[10:12, 16:18] = 200  # two eyes inside
    diagonal = np.zeros((28, 28), np.uint8)
    diagonal[np.arange(5, 20), np.arange(5, 20)] = 255  # one stroke touching only at corners
    faint = diagonal.copy()
    faint[5:8, 20:23] = 127  # less than half the ink: not a piece
    blank = np.zeros((28, 28), np.uint8)
    assert _pieces(np.stack([face, diagonal, faint, blank, face])).tolist() == [3, 1, 1, 0, 3]


def test_the_patch_difference_is_the_largest_3x3_mean_of_squared_differences(rule):
    """By hand on a drawing whose only difference from its neighbour is a 2x2 block of full ink."""
    y = np.zeros((28, 28), np.uint8)
    y[8:20, 12:15] = 255
    q = y.copy()
    q[3:5, 3:5] = 255
    d = np.full((1, 5), np.sqrt(4 * 255.0**2))
    j = rule.judge(d, np.full((1, 5), 1), q[None], np.repeat(y[None, None], 5, axis=1))
    assert j.winners[0] == 1
    patch = j.factors[0, 1] * rule.scales[1, 1]
    assert patch == pytest.approx(4 * 255.0**2 / 9)  # the 2x2 block fits in one 3x3 window


def test_a_recipe_is_judged_on_the_pictures_it_compared(mnist):
    """compared_pictures gives what the classifier compared: prepared, in the padded frame, at the shift."""
    from knn_core.abstain import compared_pictures

    X, y = mnist.train_images[:400], mnist.train_labels[:400]
    clf = KNNClassifier(3, method="deskew+blur+L3+shift1").fit(X, y)
    Q = mnist.test_images[:6]
    nb = clf.kneighbors_detail(Q)
    assert nb.shifts is not None and np.abs(nb.shifts).sum() > 0  # some neighbours matched shifted
    pics = compared_pictures(clf.method_, Q, X, nb.indices, nb.shifts)
    np.testing.assert_array_equal(pics["queries"], clf.transform(Q))
    for m in range(6):
        for r in range(3):
            expected = clf.training_image(int(nb.indices[m, r]), nb.shifts[m, r])
            np.testing.assert_array_equal(pics["neighbor_images"][m, r], expected)
    raw = compared_pictures("euclidean", Q, X, nb.indices)
    np.testing.assert_array_equal(raw["neighbor_images"], X[nb.indices])


def test_10x10_has_the_shape_score_at_28x28_and_idm_its_fitted_ratios(mnist):
    from knn_core.abstain import compared_pictures, shape_applies

    assert shape_applies("euclidean") and shape_applies("deskew+blur") and shape_applies("deskew+blur+L3+shift1")
    assert shape_applies("downsample") and shape_applies("idm")  # 10x10 compared at 28x28; IDM: its fitted ratios
    assert not shape_applies("idm+blur")  # an IDM recipe without fitted powers keeps the distance alone
    small = compared_pictures("downsample", mnist.test_images[:2], mnist.train_images, np.array([[0, 1], [2, 3]]))
    assert small["queries"].shape == (2, 28, 28) and small["neighbor_images"].shape == (2, 2, 28, 28)
    np.testing.assert_array_equal(small["neighbor_images"][1, 0], mnist.train_images[2])


def test_most_test_digits_answered_and_most_nondigits_refused(mnist, rule, clf):
    test = neighbor_lists(mnist, "euclidean", "test", train_size=SIZE)
    j = rule.judge_lists(test, mnist.test_images, mnist.train_images)
    assert j.coverage >= 0.99
    assert answered_accuracy(j, test.query_labels) > np.mean(j.winners == test.query_labels)
    nd = [x for x in nondigit_drawings() if x.kind != "digit-like"]
    assert _judge(rule, clf, mnist, np.stack([x.digit for x in nd])).refused.mean() > 0.5


def test_the_directions_ratio_compares_histograms_of_stroke_directions(rule):
    """A square's strokes run in 2 directions, a ring's in all: their direction histograms differ by hand."""
    from knn_core.abstain import _directions

    square = np.zeros((28, 28), np.uint8)
    square[6:22, 6:22] = 255
    square[9:19, 9:19] = 0
    h = _directions(square)
    assert h.shape == (8,) and h.sum() == pytest.approx(1)
    assert h[0] + h[4] > 0.9  # horizontal and vertical edges (bins 0 and 90 degrees) hold the strength
    yy, xx = np.mgrid[:28, :28]
    r = np.hypot(yy - 13.5, xx - 13.5)
    ring = (255 * np.exp(-((r - 7.5) ** 2) / 2)).astype(np.uint8)  # soft-edged, as handwriting is
    assert _directions(ring).max() < 0.2  # spread over the 8 directions
    d = np.full((1, 5), 2000.0)
    j = rule.judge(d, np.zeros((1, 5), int), square[None], np.repeat(ring[None, None], 5, axis=1))
    turn = j.factors[0, 3] * rule.scales[0, 3]
    assert turn == pytest.approx(np.abs(h - _directions(ring)).sum(), rel=1e-5)


def test_fit_exponents_picks_the_grid_point_refusing_the_most_design_nondigits():
    """On made-up ratios, checked against calibrating a rule for every grid point by hand."""
    from knn_core.abstain import Judgement, fit_exponents

    rng = np.random.default_rng(0)
    n = 3000
    vf = np.exp(rng.normal(0, 0.3, size=(n, 4)))  # validation digits: usual ratios around 1
    df = np.exp(rng.normal(0, 0.3, size=(200, 4)))
    df[:, 2] *= 3  # the design non-digits stand out on the ink only
    classes = np.arange(2)

    def judgement(f, winners):
        m = len(f)
        return Judgement(winners, np.zeros(m, bool), f[:, 0], np.ones(m), np.ones(m), ("",) * m, None, f)

    vw, dw = rng.integers(0, 2, n), rng.integers(0, 2, 200)
    rule = AbstainRule.calibrate(np.ones((n, 1)), vw[:, None], k=1, classes=classes)
    grid = (0.0, 1.0, 2.0)
    e = fit_exponents(rule, judgement(vf, vw), judgement(df, dw), grid=grid)
    assert e[0] == 1 and e[2] == 2  # the ink weighs most
    refused = {}
    for a in grid:
        for b in grid:
            for c in grid:
                x = np.array([1, a, b, c])
                by_hand = AbstainRule.calibrate(
                    np.exp(np.log(vf) @ x)[:, None], vw[:, None], k=1, classes=classes
                )  # the limits on the score, as a distance
                refused[(a, b, c)] = (np.exp(np.log(df) @ x) > by_hand.limits[dw]).mean()
    assert refused[tuple(e[1:])] == max(refused.values())


def _held_out_and_test_set_replaced(mnist, monkeypatch) -> tuple:
    """From here on every held-out non-digit is a white square; returns the dataset with its test set
    reversed, and the list of the `part`s the non-digits are asked for."""
    import knn_core.nondigits as nondigits

    real = nondigits.nondigit_drawings
    calls: list = []

    def only_design(*args, part=None, **kw):
        calls.append(part)
        items = real(*args, part=part, **kw)
        return tuple(x if x.part == "design" else dataclasses.replace(x, digit=np.full((28, 28), 255, np.uint8))
                     for x in items)

    monkeypatch.setattr(nondigits, "nondigit_drawings", only_design)
    return dataclasses.replace(mnist, test_images=mnist.test_images[::-1].copy(), _fingerprint=[]), calls


def test_exponents_come_from_validation_digits_and_design_nondigits_only(mnist, monkeypatch):
    """Replacing every held-out non-digit (and the test set) changes nothing in the fitted exponents."""
    from knn_core.abstain import fit_method_exponents

    before = fit_method_exponents(mnist, "euclidean", train_size=SIZE)
    other_tests, calls = _held_out_and_test_set_replaced(mnist, monkeypatch)
    after = fit_method_exponents(other_tests, "euclidean", train_size=SIZE)
    np.testing.assert_array_equal(before, after)
    assert calls == ["design"]
    assert before.shape == (5,) and before[0] == 1


@pytest.mark.slow
def test_the_exponents_in_the_code_are_refitted_from_validation_and_design(mnist):
    from knn_core.abstain import fit_method_exponents

    np.testing.assert_array_equal(fit_method_exponents(mnist, "euclidean"), EXPONENTS["euclidean"])


# ------------------------------------------------------------------------------------------ the digit gate

GATED_NONDIGIT = "triangle t22"  # deskew alone answers it (at SIZE training digits); the gate refuses it


@pytest.fixture(scope="module")
def deskew_rule(mnist):
    return abstain_rule(mnist, "deskew", train_size=SIZE)


def _raw(mnist, split, queries):
    """The digit gate's inputs from the euclidean lists of a split (at SIZE training digits)."""
    lists = neighbor_lists(mnist, "euclidean", split, train_size=SIZE)
    return gate_inputs(lists.distances, lists.neighbor_labels(lists.k_max), queries, mnist.train_images,
                       lists.neighbor_rows(5))


def _deskew_val(mnist):
    lists = neighbor_lists(mnist, "deskew", "val", train_size=SIZE)
    pics = compared_pictures("deskew", mnist.val_images, mnist.train_images, lists.neighbor_rows(3), lists.shifts)
    return dict(distances=lists.distances, neighbor_labels=lists.neighbor_labels(lists.k_max), **pics)


def test_the_digit_gate_and_the_method_are_calibrated_together_on_validation_digits_only(mnist, deskew_rule):
    """The gate is the euclidean rule on raw pixels refusing its share of the validation digits' refusals;
    the method's own limits are set on the digits the gate answers, so that together they answer the coverage
    asked for; its usual values are every validation digit's; another test set changes no number."""
    r, share = deskew_rule, GATES["deskew"]
    assert r.gate is not None and r.gate.pixels == "its raw pixels" and r.gate.k == 5
    np.testing.assert_array_equal(r.gate.exponents, EXPONENTS["euclidean"])
    raw = _raw(mnist, "val", mnist.val_images)
    by_hand = AbstainRule.calibrate(**raw, k=5, classes=np.arange(10), coverage=1 - share * (1 - 0.993),
                                    exponents=EXPONENTS["euclidean"])
    np.testing.assert_array_equal(r.gate.limits, by_hand.limits)
    np.testing.assert_array_equal(r.gate.scales, by_hand.scales)
    alone = abstain_rule(mnist, "deskew", train_size=SIZE, gate=False)
    assert alone.gate is None
    np.testing.assert_array_equal(r.scales, alone.scales)
    j = r.judge(**_deskew_val(mnist), gate=raw)
    assert j.coverage == pytest.approx(r.coverage) and 0.992 <= r.coverage <= 0.994  # together
    assert j.gate.refused.mean() == pytest.approx(1 - by_hand.coverage)
    own = (j.score > j.limit) | (j.share < r.min_share)
    gated = j.gate.refused.mean()  # the rest of the budget among what the gate answers (none when it used it all)
    assert own[~j.gate.refused].mean() == pytest.approx(max(1 - 0.993 - gated, 0) / (1 - gated), abs=0.002)
    other_tests = dataclasses.replace(mnist, test_images=mnist.test_images[::-1].copy(), _fingerprint=[])
    other = abstain_rule(other_tests, "deskew", train_size=SIZE)
    np.testing.assert_array_equal(other.limits, r.limits)
    np.testing.assert_array_equal(other.gate.limits, r.gate.limits)
    with pytest.raises(ParameterError, match="digit gate"):
        r.judge(j.nearest[:, None].repeat(3, axis=1), np.zeros((len(j.nearest), 3), int))


def test_fit_gate_share_picks_the_share_whose_calibrated_rules_refuse_the_most_design_nondigits(mnist):
    """For each share, calibrating the gated rule by hand (AbstainRule.calibrate) and judging the design
    non-digits refuses what the fit counted; the fit picks the best of them."""
    part = split_data(mnist, "val", SIZE)
    nd = [x for x in nondigit_drawings(part="design") if x.kind != "digit-like"]
    X, kinds = np.stack([x.digit for x in nd]), [x.kind for x in nd]
    val = _deskew_val(mnist)
    raw = _raw(mnist, "val", mnist.val_images)
    own = AbstainRule.calibrate(**val, k=3, weights="distance", classes=np.arange(10), exponents=EXPONENTS["deskew"])
    gate = AbstainRule.calibrate(**raw, k=5, classes=np.arange(10), exponents=EXPONENTS["euclidean"])
    dn = find_neighbors(part.train_images, part.train_labels, X, np.zeros(len(X), int), method="deskew")
    dpics = dict(distances=dn.distances, neighbor_labels=dn.neighbor_labels(dn.k_max),
                 **compared_pictures("deskew", X, part.train_images, dn.indices[:, :3], dn.shifts))
    gn = find_neighbors(part.train_images, part.train_labels, X, np.zeros(len(X), int))
    graw = gate_inputs(gn.distances, gn.neighbor_labels(gn.k_max), X, part.train_images, gn.indices[:, :5])
    grid = (0.2, 0.6, 1.0)
    share = fit_gate_share(own, own.judge(**val), own.judge(**dpics), gate, gate.judge(**raw), gate.judge(**graw),
                           grid=grid, groups=kinds)
    refused = {}
    for s in grid:
        r = AbstainRule.calibrate(**val, k=3, weights="distance", classes=np.arange(10),
                                  exponents=EXPONENTS["deskew"], gate=raw, gate_share=s)
        jd = r.judge(**dpics, gate=graw)
        by_kind = [jd.refused[np.array(kinds) == kd].mean() for kd in dict.fromkeys(kinds)]
        refused[s] = (min(by_kind), jd.refused.mean())
    assert refused[share] == max(refused.values())


def test_the_gate_share_comes_from_validation_digits_and_design_nondigits_only(mnist, monkeypatch):
    """Replacing every held-out non-digit (and the test set) changes no fitted share."""
    before = fit_method_gate_share(mnist, "deskew", train_size=SIZE)
    other_tests, calls = _held_out_and_test_set_replaced(mnist, monkeypatch)
    assert fit_method_gate_share(other_tests, "deskew", train_size=SIZE) == before
    assert calls == ["design", "design"] and before in GATE_GRID


@pytest.mark.slow
@pytest.mark.parametrize("method", ["deskew", "deskew+blur", "downsample"])
def test_the_gate_shares_in_the_code_are_refitted_from_validation_and_design(mnist, method):
    assert fit_method_gate_share(mnist, method) == GATES[method]


def test_a_nondigit_deskew_alone_answers_is_refused_by_the_gate_and_a_test_digit_answered(mnist, deskew_rule):
    part = split_data(mnist, "val", SIZE)
    fit = KNNClassifier(3, method="deskew", weights="distance").fit(part.train_images, part.train_labels)
    gated = Abstainer(fit, train_images=part.train_images).fit(mnist.val_images)
    alone = Abstainer(fit, train_images=part.train_images, gate=False).fit(mnist.val_images)
    np.testing.assert_allclose(gated.rule_.limits, deskew_rule.limits)
    np.testing.assert_allclose(gated.rule_.gate.limits, deskew_rule.gate.limits)
    assert alone.rule_.gate is None and Abstainer(fit).fit(mnist.val_images[:2000]).rule_.gate is None  # no pictures
    X = np.stack([mnist.test_images[0], _named(GATED_NONDIGIT).digit])
    assert alone.predict(X)[0] == 7 and alone.predict(X)[1] != REFUSED
    j = gated.judge(X)
    assert j.refused.tolist() == [False, True] and j.predictions[0] == 7 and j.reasons[0] == ""
    assert j.gate.refused[1] and j.reasons[1] == j.gate.reasons[1]
    assert j.reasons[1].startswith("unlike every digit in its raw pixels: its nearest ")


def test_bad_rule_parameters_are_named(rule):
    with pytest.raises(ParameterError, match="coverage"):
        AbstainRule.calibrate(np.ones((3, 5)), np.zeros((3, 5), int), k=5, coverage=1.5)
    with pytest.raises(ParameterError, match="fewer than k=5"):
        rule.judge(np.ones((2, 3)), np.zeros((2, 3), int))
    with pytest.raises(ParameterError, match="calibrated with pictures"):
        rule.judge(np.ones((2, 5)), np.zeros((2, 5), int))
    with pytest.raises(ParameterError, match="neighbor_images"):
        rule.judge(np.ones((2, 5)), np.zeros((2, 5), int), np.zeros((2, 28, 28)), np.zeros((2, 3, 28, 28)))


def test_nondigits_are_deterministic_and_go_through_the_drawing_path():
    from knn_core.normalize import MNIST_STROKE, canvas_to_mnist

    a = nondigit_drawings()
    nondigit_drawings.cache_clear()
    b = nondigit_drawings()
    assert len(a) == len(b) > 800 and {x.kind for x in a} == set(KINDS)
    assert all(np.array_equal(x.digit, y.digit) and x.name == y.name for x, y in zip(a[::37], b[::37]))
    x = a[5]
    assert x.canvas.shape == (280, 280, 4) and x.digit.shape == (28, 28)
    assert [y.name for y in nondigit_drawings(part="design")] == [y.name for y in a if y.part == "design"]
    np.testing.assert_array_equal(canvas_to_mnist(x.canvas, min_stroke=MNIST_STROKE), x.digit)
    assert not any(x.name[0] in "OoIlSZBg" and x.kind == "letter" for x in a)  # digit-like letters apart


def test_the_held_out_nondigits_are_disjoint_from_the_design_ones():
    """Split by font rendering and by seed: no held-out picture repeats (or nearly repeats) a design one."""
    from knn_core.nondigits import DESIGN_FONTS, HELD_OUT_FONTS, check_split, distinct

    items = nondigit_drawings()
    parts = {x.part for x in items}
    assert parts == {"design", "held-out"}
    design = [x for x in items if x.part == "design"]
    held = [x for x in items if x.part == "held-out"]
    assert not {x.name for x in design} & {x.name for x in held}
    for x in items:
        if x.kind in ("letter", "digit-like") and "hershey" in x.name:
            assert (x.name.split()[1] in DESIGN_FONTS) == (x.part == "design")
    assert not set(DESIGN_FONTS) & set(HELD_OUT_FONTS)
    pictures = {x.digit.tobytes() for x in design}
    assert not any(x.digit.tobytes() in pictures for x in held)
    assert check_split(items) > 500  # the nearest held-out picture to a design one, euclidean on 0-255 pixels
    # each part has every fair kind, and more than 150 distinct fair pictures
    for part in (design, held):
        fair = [x for x in distinct(part) if x.kind != "digit-like"]
        assert {x.kind for x in fair} == {"letter", "shape", "face", "scribble"} and len(fair) > 150
    # a copy is caught
    with pytest.raises(ValueError, match="near copy"):
        check_split((design[0], dataclasses.replace(design[0], part="held-out")))


# ------------------------------------------------------------------------------------------ explain


@pytest.mark.parametrize("metric, p", [("euclidean", 2), ("manhattan", 1), ("minkowski", 3)])
def test_pixel_contributions_add_up_to_the_distance(mnist, metric, p):
    X, y = mnist.train_images[:1500], mnist.train_labels[:1500]
    clf = KNNClassifier(5, metric=metric, p=3).fit(X, y)
    q = mnist.test_images[3]
    d, i = clf.kneighbors(q[None])
    for dist, j in zip(d[0], i[0]):
        e = explain_neighbour(clf, q, j, distance=dist)
        assert e.power == p
        assert np.isclose(e.contributions.sum(), dist**p, rtol=1e-9)
        assert e.contributions.sum() == pytest.approx(lp_distances(q.ravel()[None], X[j].ravel()[None], p)[0] ** p)
    extra, missing, common = difference(q, X[i[0, 0]])
    np.testing.assert_allclose(extra - missing + 0, q / 255 - X[i[0, 0]] / 255)
    assert (common <= np.minimum(q, X[i[0, 0]]) / 255 + 1e-12).all()
    assert pixel_contributions(q, q).sum() == 0


def test_contributions_of_a_recipe_are_on_the_pictures_it_compared(mnist):
    X, y = mnist.train_images[:800], mnist.train_labels[:800]
    clf = KNNClassifier(3, method="deskew+blur+L3+shift1").fit(X, y)
    q = mnist.test_images[8]
    nb = clf.kneighbors_detail(q[None])
    e = explain_neighbour(clf, q, nb.indices[0, 0], nb.shifts[0, 0], nb.distances[0, 0])
    assert e.power == 3 and np.isclose(e.contributions.sum(), nb.distances[0, 0] ** 3)


def test_the_idm_displacement_field_reproduces_the_idm_distance(mnist):
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, 1000, size=(4, 2)):
        q, y = mnist.test_images[a], mnist.train_images[b]
        disp, cost = idm_match(q, y, window=2, context=1)
        assert cost.sum() == pytest.approx(idm_distances(q, y[None])[0] ** 2, rel=1e-12)
        assert disp.shape == (28, 28, 2) and np.abs(disp).max() <= 2
    disp, cost = idm_match(q, q)
    assert cost.sum() == 0 and not disp.any()  # a digit matches itself in place
    X, y = mnist.train_images[:600], mnist.train_labels[:600]
    clf = KNNClassifier(4, method="idm").fit(X, y)
    nb = clf.kneighbors_detail(mnist.test_images[1][None])
    e = explain_neighbour(clf, mnist.test_images[1], nb.indices[0, 0], distance=nb.distances[0, 0])
    assert e.displacement is not None and np.isclose(e.contributions.sum(), nb.distances[0, 0] ** 2)


def test_why_not_shows_the_runner_up_beside_the_winner(mnist, clf):
    q = mnist.test_images[8]  # a 5 with a split vote
    w = why_not(clf, q)
    d, i = clf.kneighbors(q[None], 300)
    labels = clf.neighbor_labels(i[0])
    assert w.winner == clf.predict(q[None])[0] and w.other != w.winner
    assert w.winner_index == i[0][np.flatnonzero(labels == w.winner)[0]]
    assert w.other_index == i[0][np.flatnonzero(labels == w.other)[0]]
    assert w.other_distance >= w.winner_distance or w.other in labels[:5]
    assert f"nearest {w.other} is at" in w.describe()
    assert why_not(clf, q, other=3).other == 3


# ---------------------------------------------------------------------------------------------- CLI


def _cli(capsys, *argv):
    from knn_core.cli import main

    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_predict_says_not_a_digit_with_the_reason(mnist, rule, clf, capsys, tmp_path):
    from knn_core.testing import encode_png

    square = tmp_path / "square.png"
    square.write_bytes(encode_png(_named("square t22").canvas))
    seven = tmp_path / "seven.png"
    seven.write_bytes(encode_png(mnist.test_images[0]))
    status, out, err = _cli(capsys, "predict", str(square), str(seven), "--train-size", str(SIZE))
    assert status == 0, err
    refused, answered = out.splitlines()
    assert refused.startswith(f"{square}: not a digit (unlike every digit: its nearest ")
    assert "the nearest digits anyway: " in refused
    assert answered.startswith(f"{seven}: 7   neighbours: ")
    status, out, _ = _cli(capsys, "predict", str(square), "--train-size", str(SIZE), "--no-abstain")
    assert status == 0 and "not a digit" not in out


def test_cli_predict_asks_the_digit_gate_for_deskew(mnist, capsys, tmp_path):
    from knn_core.testing import encode_png

    x = tmp_path / "x.png"
    x.write_bytes(encode_png(_named(GATED_NONDIGIT).canvas))
    status, out, err = _cli(capsys, "predict", str(x), "--method", "deskew", "--train-size", str(SIZE))
    assert status == 0, err
    assert out.startswith(f"{x}: not a digit (unlike every digit in its raw pixels: its nearest ")


def test_cli_evaluate_abstain_with_the_digit_gate(mnist, deskew_rule, capsys):
    status, out, err = _cli(capsys, "evaluate", "--abstain", "--method", "deskew", "--train-size", str(SIZE))
    assert status == 0, err
    test = neighbor_lists(mnist, "deskew", "test", train_size=SIZE)
    j = deskew_rule.judge_lists(test, mnist.test_images, mnist.train_images,
                                neighbor_lists(mnist, "euclidean", "test", train_size=SIZE))
    assert j.gate is not None and j.coverage >= 0.99
    line = next(x for x in out.splitlines() if x.startswith("abstaining"))
    assert "with the digit gate (euclidean on raw pixels) asked too" in line
    assert f"coverage {j.coverage:.4f} ({int(j.refused.sum())} test digits refused)" in line


def test_cli_evaluate_abstain_prints_coverage_and_accuracy_on_the_answered(mnist, rule, capsys):
    status, out, err = _cli(capsys, "evaluate", "--abstain", "--train-size", str(SIZE))
    assert status == 0, err
    test = neighbor_lists(mnist, "euclidean", "test", train_size=SIZE)
    j = rule.judge_lists(test, mnist.test_images, mnist.train_images)
    line = next(x for x in out.splitlines() if x.startswith("abstaining"))
    assert f"coverage {j.coverage:.4f} ({int(j.refused.sum())} test digits refused)" in line
    assert f"accuracy on the answered {answered_accuracy(j, test.query_labels):.4f}" in line


def test_the_shape_factors_of_a_calibration_in_chunks_are_those_of_all_at_once(mnist, monkeypatch):
    """abstain_rule prepares the neighbours' pictures a chunk of digits at a time (all 10,000 validation
    digits' at once took 1-2 GB): the factors are the same numbers, for a method whose neighbours are
    matched at a shift too, and in chunks that do not divide the digits evenly."""
    import knn_core.abstain as ab

    method, k = "deskew+blur+L3+shift1", 4
    lists = neighbor_lists(mnist, method, "val", train_size=SIZE)
    part = slice(0, 700)
    sub = dataclasses.replace(lists, distances=lists.distances[part], indices=lists.indices[part],
                              shifts=None if lists.shifts is None else lists.shifts[part])
    assert sub.shifts is not None and (sub.shifts[:, :k] != 0).any()  # some neighbours matched at a shift
    Q = mnist.val_images[part]
    pics = compared_pictures(method, Q, mnist.train_images, sub.neighbor_rows(k), sub.shifts)
    d, labels = sub.distances.astype(np.float64), sub.neighbor_labels(sub.k_max)
    winners = ab._vote(d, labels, np.arange(10), k, "distance", "smallest")[0]
    whole = ab._shape_factors(pics["queries"], pics["neighbor_images"], d, labels, np.arange(10), winners, k)
    monkeypatch.setattr(ab, "CALIBRATION_CHUNK_PICTURES", 4 * 97)  # 97 digits a chunk
    monkeypatch.setattr(ab, "SHAPE_CHUNK_PICTURES", 4 * 13)
    chunked = ab.chunked_shape_factors(method, Q, mnist.train_images, sub, k, "distance", "smallest", np.arange(10))
    np.testing.assert_array_equal(chunked, whole)
