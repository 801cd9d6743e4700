"""evaluate.label_issues: likely label errors the confident-learning way, against a direct computation."""
from __future__ import annotations

import numpy as np
from helpers import lists_of

from knn_core.evaluate import label_issues, vote_shares


def test_vote_shares_are_the_vote_divided_by_its_total():
    lists = lists_of([[1, 1, 7, 7, 7], [4, 4, 4, 4, 9]], [7, 4])
    # columns: the classes present, 1, 4, 7, 9
    np.testing.assert_allclose(vote_shares(lists, 5), [[0.4, 0.0, 0.6, 0.0], [0.0, 0.8, 0.0, 0.2]])


def test_a_digit_whose_class_usually_gets_such_a_share_is_not_flagged():
    # 7s usually get only 60% of their vote (1s look alike); the 7 at 40% for 1 and 60% for 7 is typical.
    neighbours = [[7, 7, 7, 1, 1]] * 4 + [[1, 1, 1, 1, 1]] * 4 + [[1, 1, 1, 1, 1]]
    labels = [7] * 4 + [1] * 4 + [7]  # the last one: a "7" whose neighbours are all 1s
    out = label_issues(lists_of(neighbours, labels), 5)
    assert out["index"].tolist() == [8]
    assert out["label"].tolist() == [7] and out["suggested"].tolist() == [1]
    # thresholds: class 7's mean share over the digits labelled 7 = (4 * 0.6 + 0) / 5
    np.testing.assert_allclose(out["threshold"], [(4 * 0.6 + 0.0) / 5])
    np.testing.assert_allclose(out["self_confidence"], [0.0])
    assert out["judged"] == 9


def test_the_flags_match_a_direct_confident_joint_on_random_votes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    # mostly agreeing neighbours, some noise
    neighbours = np.where(rng.random((300, 7)) < 0.7, labels[:, None], rng.integers(0, 3, (300, 7)))
    out = label_issues(lists_of(neighbours, labels), 7)
    shares = np.stack([(neighbours == c).mean(axis=1) for c in range(3)], axis=1)
    t = np.array([shares[labels == c, c].mean() for c in range(3)])
    expected = []
    for i in range(300):
        above = [c for c in range(3) if shares[i, c] >= t[c]]
        if above:
            j = max(above, key=lambda c: (shares[i, c], -c))
            if j != labels[i]:
                expected.append(i)
    assert sorted(out["index"].tolist()) == expected
    assert np.all(np.diff(out["self_confidence"]) >= 0)  # lowest self-confidence first
