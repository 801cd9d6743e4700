"""Accuracy, confusion, per-class report, k sweeps, size curves, misclassified and suspicious digits.

Everything here starts from neighbour lists (`knn_core.lists`): one search
per (data, split, method) with the largest k anyone asks for, cached on
disk; the predictions for any k, weighting and tie rule are then a cheap vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from .lists import NeighborLists, neighbor_lists

DEFAULT_KS = (1, 3, 5, 9, 15, 25)

Progress = Optional[Callable[[int, int], None]]


@dataclass(frozen=True)
class Report:
    """Accuracy, confusion matrix and per-class precision / recall / F1."""

    labels: np.ndarray
    accuracy: float
    confusion: np.ndarray  # rows: true, columns: predicted
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    def table(self) -> str:
        lines = [f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}"]
        for i, c in enumerate(self.labels):
            lines.append(
                f"{c:>5} {self.precision[i]:9.4f} {self.recall[i]:7.4f} {self.f1[i]:7.4f} {self.support[i]:7d}"
            )
        return "\n".join(lines)

    def confusion_table(self) -> str:
        head = "true\\pred " + " ".join(f"{c:>5}" for c in self.labels)
        rows = [f"{c:>9} " + " ".join(f"{v:5d}" for v in self.confusion[i]) for i, c in enumerate(self.labels)]
        return "\n".join([head, *rows])


def report(y_true, y_pred, labels=None) -> Report:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.unique(np.concatenate([np.unique(y_true), np.unique(y_pred)])) if labels is None else np.asarray(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return Report(
        labels=labels,
        accuracy=float(accuracy_score(y_true, y_pred)),
        confusion=confusion_matrix(y_true, y_pred, labels=labels),
        precision=p,
        recall=r,
        f1=f,
        support=s,
    )


def misclassified(lists: NeighborLists, k: int, **vote_options) -> np.ndarray:
    """Indices of wrongly classified queries, the most confidently wrong first."""
    scores, pred, _ = lists.vote(k, **vote_options)
    wrong = np.flatnonzero(pred != lists.query_labels)
    conf = scores.max(axis=1)[wrong] / scores[wrong].sum(axis=1)
    return wrong[np.lexsort((wrong, -conf))]


def suspicious_labels(lists: NeighborLists, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Digits whose label most of their k neighbours disagree with, most disagreed first.

    Use leave-one-out lists for training digits (a digit must not vote for
    itself). Returns (indices, disagreement fractions) for those above 1/2.
    """
    disagree = np.mean(lists.neighbor_labels(k) != lists.query_labels[:, None], axis=1)
    mean_dist = lists.distances[:, :k].mean(axis=1)
    order = np.lexsort((mean_dist, -disagree))
    order = order[disagree[order] > 0.5]
    return order, disagree[order]


def choose_k(val_lists: NeighborLists, ks: Sequence[int], **vote_options) -> int:
    """The k with the best validation accuracy (the smallest such k on ties)."""
    acc = val_lists.sweep(ks, **vote_options)
    return int(np.asarray(ks)[int(np.argmax(acc))])


def size_curve(
    ds,
    sizes: Sequence[int],
    ks: Sequence[int],
    *,
    method="euclidean",
    progress: Progress = None,
    use_cache: bool = True,
    **vote_options,
) -> np.ndarray:
    """Test accuracy (len(sizes), len(ks)) for stratified training subsets of each size."""
    out = np.empty((len(sizes), len(ks)))
    for row, n in enumerate(sizes):
        lists = neighbor_lists(ds, method, "test", train_size=n, k_max=max(ks), use_cache=use_cache)
        out[row] = [lists.accuracy(k, **vote_options) if k <= lists.k_max else np.nan for k in ks]
        if progress is not None:
            progress(row + 1, len(sizes))
    return out


def wrong_votes(lists: NeighborLists, k: int, **vote_options) -> dict:
    """The misclassified queries, most confidently wrong first (the order of misclassified()):
    query index, true label, predicted label and confidence (the winner's share of the vote)."""
    scores, pred, _ = lists.vote(k, **vote_options)
    idx = misclassified(lists, k, **vote_options)
    share = scores[idx].max(axis=1) / scores[idx].sum(axis=1)
    return {"index": idx, "true": lists.query_labels[idx], "predicted": pred[idx], "confidence": share}


def label_doubts(lists: NeighborLists, k: int, **vote_options) -> dict:
    """suspicious_labels() with what the neighbours' vote says instead: query index, its label,
    the label kNN gives it from its neighbours, and the fraction of the k neighbours that disagree."""
    idx, frac = suspicious_labels(lists, k)
    pred = lists.predict(k, **vote_options)
    return {"index": idx, "label": lists.query_labels[idx], "predicted": pred[idx], "disagreement": frac}


def vote_shares(lists: NeighborLists, k: int, **vote_options) -> np.ndarray:
    """Each query's share of the vote per class (rows sum to 1), columns in lists.classes order."""
    scores, _, _ = lists.vote(k, **vote_options)
    return scores / scores.sum(axis=1, keepdims=True)


def label_issues(lists: NeighborLists, k: int, **vote_options) -> dict:
    """Likely label errors, found the confident-learning way (Northcutt et al. 2021, as cleanlab does).

    With leave-one-out lists, each digit's neighbours give it a share of the
    vote per class. A class's threshold is the share its own digits usually
    get (the mean over the digits labelled with it). A digit counts as
    confidently belonging to class j when j's share reaches j's threshold;
    it is a likely label error when the class it confidently belongs to most
    is not its label. So a clearly written 7 whose neighbours are half 1s is
    not flagged when 7s usually get most of their vote, while a digit whose
    neighbours are nearly all 4s is. Ranked by self-confidence (the label's
    share), lowest first.

    Returns query index, label, suggested label, self-confidence, the
    label's threshold, the suggested class's share, and the number of digits
    whose label was judged (for the headline: issues / judged).
    """
    shares = vote_shares(lists, k, **vote_options)
    classes = lists.classes
    given = np.searchsorted(classes, lists.query_labels)
    n, c = shares.shape
    thresholds = np.array([shares[given == j, j].mean() if np.any(given == j) else 1.0 for j in range(c)])
    confident = shares >= thresholds[None, :]
    best = np.where(confident, shares, -1.0).argmax(axis=1)
    has_any = confident.any(axis=1)
    self_conf = shares[np.arange(n), given]
    issue = np.flatnonzero(has_any & (best != given))
    order = issue[np.lexsort((issue, self_conf[issue]))]
    return {
        "index": order,
        "label": lists.query_labels[order],
        "suggested": classes[best[order]],
        "self_confidence": self_conf[order],
        "threshold": thresholds[given[order]],
        "suggested_share": shares[order, best[order]],
        "judged": n,
    }


def winners_by_k(lists: NeighborLists, ks: Sequence[int], **vote_options) -> np.ndarray:
    """Each query's predicted label at each k: (queries, len(ks))."""
    return np.stack([lists.predict(int(k), **vote_options) for k in ks], axis=1)


def k_flips(lists: NeighborLists, ks: Sequence[int] = range(1, 16), count: int = 6, around: int = 5,
            **vote_options) -> dict:
    """Queries whose answer at the smallest k of ks differs from the one at the largest: examples for a
    lesson on k, one click away.

    Only queries whose own label is one of the two answers (ambiguous
    digits, not ones every k misreads). The clearest stories first: the
    fewest changes of answer as k grows, then the change nearest to k =
    `around` (the default k: the answer a class sees first changes when
    they move k a little, not at k=2 where ties decide), then the query's
    index, so the same lists always give the same examples. The
    first examples are of different labels where there are enough.

    Returns query index, label, the winners at each k (count rows, len(ks) columns), and ks.
    """
    ks = [int(k) for k in ks]
    wins = winners_by_k(lists, ks, **vote_options)
    labels = lists.query_labels
    changed = wins[:, 1:] != wins[:, :-1]
    changes = np.count_nonzero(changed, axis=1)
    first_change = np.asarray(ks)[changed.argmax(axis=1) + 1]  # the k where the answer first changes
    off_centre = np.abs(first_change - around)
    flips = (wins[:, 0] != wins[:, -1]) & ((wins[:, 0] == labels) | (wins[:, -1] == labels))
    candidates = np.flatnonzero(flips)
    ranked = candidates[np.lexsort((candidates, off_centre[candidates], changes[candidates]))].tolist()
    first_of_label: dict[int, int] = {}
    for i in ranked:
        first_of_label.setdefault(int(labels[i]), i)
    firsts = set(first_of_label.values())
    chosen = ([i for i in ranked if i in firsts] + [i for i in ranked if i not in firsts])[:count]
    idx = np.array(chosen, dtype=np.int64)
    return {"index": idx, "label": labels[idx], "winners": wins[idx], "ks": np.array(ks)}
