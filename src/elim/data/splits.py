"""Group-aware splits: no group (person, actor, video) on both sides of a split.

Identity-invariant evaluation needs test identities unseen during training, so folds and
train/val/test parts are formed from whole groups. Groups are visited in a seeded random
order and each goes to the part furthest below its target size, which keeps part sizes
within one group of their targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _groups(groups: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inverse codes per sample, sample count per group)."""
    arr = np.asarray(groups)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError("groups must be a non-empty 1-D sequence")
    _, inverse, counts = np.unique(arr.astype(str), return_inverse=True, return_counts=True)
    return inverse.ravel(), counts


def _assign(counts: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """Part of each group: random order, each group to the part with the largest deficit."""
    rng = np.random.default_rng(seed)
    filled = np.zeros(len(targets), dtype=np.float64)
    part = np.empty(len(counts), dtype=np.int64)
    for g in rng.permutation(len(counts)):
        # parts that have no group yet come first, so that none stays empty
        empty = filled == 0
        deficit = targets - filled
        j = int(np.argmax(np.where(empty, np.inf, deficit))) if empty.any() else int(np.argmax(deficit))
        part[g] = j
        filled[j] += counts[g]
    return part


def group_kfold(groups: Sequence | np.ndarray, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` pairs ``(train_idx, test_idx)`` of sorted int64 sample indices.

    Every sample is in exactly one test fold; a group's samples are all in the same fold;
    fold sizes (in samples) differ by at most about one group.
    """
    inverse, counts = _groups(groups)
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if len(counts) < n_folds:
        raise ValueError(f"{len(counts)} groups cannot fill {n_folds} folds")
    fold_of_group = _assign(counts, np.full(n_folds, counts.sum() / n_folds), seed)
    fold = fold_of_group[inverse]
    return [
        (np.flatnonzero(fold != k).astype(np.int64), np.flatnonzero(fold == k).astype(np.int64))
        for k in range(n_folds)
    ]


def group_split(
    groups: Sequence | np.ndarray,
    fractions: Sequence[float] | Mapping[str, float],
    seed: int = 0,
) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Split samples by group into parts of about ``fractions`` of the samples.

    ``fractions`` is a sequence (returns a list of index arrays) or a mapping such as
    ``{"train": 0.8, "val": 0.1, "test": 0.1}`` (returns a dict); they are normalised to sum
    to 1. Each group lands in exactly one part; every part gets at least one group.
    """
    names = list(fractions.keys()) if isinstance(fractions, Mapping) else None
    values = np.asarray(list(fractions.values()) if names else list(fractions), dtype=np.float64)
    if len(values) == 0 or (values <= 0).any() or not np.isfinite(values).all():
        raise ValueError(f"fractions must be positive, got {fractions}")
    inverse, counts = _groups(groups)
    if len(counts) < len(values):
        raise ValueError(f"{len(counts)} groups cannot fill {len(values)} parts")
    targets = values / values.sum() * counts.sum()
    part = _assign(counts, targets, seed)[inverse]
    parts = [np.flatnonzero(part == j).astype(np.int64) for j in range(len(values))]
    return dict(zip(names, parts)) if names else parts
