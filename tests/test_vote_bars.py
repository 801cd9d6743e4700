"""The Draw page's light vote bars (ui.vote_bars_html) show the vote knn_core explains."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import vote_bar_colours, vote_bars

import ui
from knn_core import KNNClassifier

X = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [20, 20]], dtype=np.uint8)
y = np.array([1, 1, 1, 7, 7, 4])


@pytest.mark.parametrize("weights, query, k", [("uniform", [5, 5], 5), ("distance", [5, 5], 5),
                                                ("uniform", [9, 9], 2), ("uniform", [1, 1], 1)])
def test_the_bars_show_each_classs_neighbours_and_share_of_the_explained_vote(weights, query, k):
    clf = KNNClassifier(k, weights=weights).fit(X, y)
    d, i = clf.kneighbors([query])
    vote = clf.explain(d[0], i[0])
    labels = y[i[0]]
    counts = [int(np.sum(labels == c)) for c in clf.classes_]
    text = ui.vote_bars_html(vote.scores, clf.classes_, vote.winner, counts=counts, tied=vote.tied_classes,
                             weights=weights)
    shown = vote_bars(text)
    assert sorted(shown) == clf.classes_.tolist()
    shares = vote.scores / vote.scores.sum()
    for c, n, share in zip(clf.classes_.tolist(), counts, shares):
        assert shown[c] == (n, round(100 * share))
    assert sum(n for n, _ in shown.values()) == k
    # the title says what the bars are, with a correct plural
    assert ("1/distance" in text) == (weights == "distance")
    if weights == "uniform":
        assert f"Votes of the {k} nearest neighbour{'s' if k != 1 else ''}<" in text


def test_a_tie_colours_the_tied_loser_orange_and_the_winner_green():
    two = np.array([[0, 0], [10, 10]], dtype=np.uint8)
    clf = KNNClassifier(2, tie_break="smallest").fit(two, [1, 7])
    d, i = clf.kneighbors([[5, 5]])
    vote = clf.explain(d[0], i[0])
    assert vote.was_tied and vote.winner == 1
    text = ui.vote_bars_html(vote.scores, clf.classes_, vote.winner, counts=[1, 1], tied=vote.tied_classes)
    assert vote_bar_colours(text) == {1: ui.WINNER_COLOUR, 7: ui.charts.TIED_COLOUR}
    assert "<script" not in text
