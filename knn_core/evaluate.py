"""Accuracy, confusion, per-class report, k sweeps, leave-one-out and size curves."""
from __future__ import annotations

import numpy as np


def stratified_subset(labels, n: int, random_state: int = 0) -> np.ndarray:
    """Sorted indices of n items with the class proportions of `labels` (all of them when n >= len)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"a training subset needs at least 1 digit; got {n}")
    from sklearn.model_selection import train_test_split

    classes = np.unique(labels)
    if n < len(classes):
        rng = np.random.default_rng(random_state)
        return np.sort(rng.choice(len(labels), n, replace=False))
    idx, _ = train_test_split(
        np.arange(len(labels)), train_size=n, stratify=labels, random_state=random_state
    )
    return np.sort(idx)
