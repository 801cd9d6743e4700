"""evaluate.k_flips / winners_by_k: test digits whose answer changes with k, the Neighbour vote page's examples."""
from __future__ import annotations

import numpy as np
from helpers import lists_of

from knn_core.evaluate import k_flips, winners_by_k

# One query per row: its 5 neighbours' labels (nearest first) and its own label.
NEIGHBOURS = [
    [9, 4, 4, 4, 4],  # 0, a 4: k=1 says 9, then 4 (k=2 is a tie: the smallest label wins)
    [3, 3, 3, 8, 8],  # 1, a 3: 3 at every k, never flips
    [7, 7, 1, 1, 1],  # 2, a 1: 7 up to k=3, then 1 (k=4 a tie)
    [5, 5, 5, 5, 5],  # 3, a 2: flips never, and never says 2
    [6, 0, 0, 0, 0],  # 4, a 6: 6 at k=1, then 0
    [8, 5, 8, 5, 5],  # 5, an 8: 8, 5, 8, 5, 5: three changes
    [2, 2, 1, 1, 1],  # 6, a 1: like query 2, but a second 1
]
LABELS = [4, 3, 1, 2, 6, 8, 1]


def test_winners_by_k_are_the_votes_at_each_k():
    lists = lists_of(NEIGHBOURS, LABELS)
    wins = winners_by_k(lists, range(1, 6))
    assert wins.tolist()[0] == [9, 4, 4, 4, 4]
    assert wins.tolist()[2] == [7, 7, 7, 1, 1]
    assert wins.tolist()[5] == [8, 5, 8, 5, 5]
    for k in range(1, 6):
        np.testing.assert_array_equal(wins[:, k - 1], lists.predict(k))


def test_the_clearest_flips_come_first_one_label_each_first():
    lists = lists_of(NEIGHBOURS, LABELS)
    out = k_flips(lists, range(1, 6), count=6, around=4)
    # 2 and 6 change once, at k=4; 0 and 4 once, at k=2; 5 three times; 1 and 3 never flip.
    # 6 is a second 1, so it waits until every other label has had its example.
    assert out["index"].tolist() == [2, 0, 4, 5, 6]
    assert out["label"].tolist() == [1, 4, 6, 8, 1]
    assert out["winners"].tolist()[0] == [7, 7, 7, 1, 1]
    assert out["ks"].tolist() == [1, 2, 3, 4, 5]
    assert k_flips(lists, range(1, 6), count=2, around=4)["index"].tolist() == [2, 0]


def test_on_mnist_the_examples_flip_at_the_default_k(full_test_lists):
    out = k_flips(full_test_lists)  # k = 1..15, 6 examples, around k=5
    assert out["index"].tolist() == [412, 2430, 2721, 3384, 4665, 4785]
    assert len(set(out["label"].tolist())) == 6
    for i, label, wins in zip(out["index"], out["label"], out["winners"]):
        assert wins[0] != wins[-1] and label in (wins[0], wins[-1])
        np.testing.assert_array_equal(wins, [full_test_lists.predict(k)[i] for k in range(1, 16)])
