"""Group k-fold and group splits: no group on both sides, balanced, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from elim.data.splits import group_kfold, group_split


def _groups():
    rng = np.random.default_rng(0)
    sizes = rng.integers(3, 15, size=40)
    return rng.permutation(np.concatenate([np.full(n, f"g{i}") for i, n in enumerate(sizes)]))


def test_group_kfold_partitions_by_group():
    groups = _groups()
    folds = group_kfold(groups, 5, seed=1)
    assert len(folds) == 5
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(len(groups)))  # each sample in one test fold
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(groups)
        assert np.all(np.diff(test) > 0) and train.dtype == np.int64
    sizes = [len(t) for _, t in folds]
    biggest_group = max(np.unique(groups, return_counts=True)[1])
    assert max(sizes) - min(sizes) <= biggest_group


def test_group_kfold_is_seeded():
    groups = _groups()
    same = group_kfold(groups, 4, seed=3)
    again = group_kfold(groups, 4, seed=3)
    other = group_kfold(groups, 4, seed=4)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(same, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(same, other))


def test_group_kfold_errors():
    with pytest.raises(ValueError):
        group_kfold(["a", "a", "b"], 3)
    with pytest.raises(ValueError):
        group_kfold(["a", "b"], 1)


def test_group_split_fractions():
    groups = _groups()
    parts = group_split(groups, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    assert list(parts) == ["train", "val", "test"]
    all_idx = np.concatenate(list(parts.values()))
    assert sorted(all_idx.tolist()) == list(range(len(groups)))
    sets = [set(groups[p]) for p in parts.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    biggest_group = max(np.unique(groups, return_counts=True)[1])
    for frac, idx in zip((0.7, 0.15, 0.15), parts.values()):
        assert abs(len(idx) - frac * len(groups)) <= biggest_group
    as_list = group_split(groups, [0.7, 0.15, 0.15], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(as_list, parts.values()))


def test_group_split_gives_every_part_a_group():
    parts = group_split(["a"] * 50 + ["b", "c"], [0.98, 0.01, 0.01], seed=0)
    assert all(len(p) > 0 for p in parts)
    with pytest.raises(ValueError):
        group_split(["a", "b"], [0.5, 0.3, 0.2])
    with pytest.raises(ValueError):
        group_split(["a", "b"], [1.0, 0.0])
