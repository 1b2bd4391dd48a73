"""Group k-fold and group splits: no group on both sides, balanced, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from elim.config import DataConfig
from elim.data.splits import group_kfold, group_split, make_splits
from elim.errors import DataError


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
    with pytest.raises(DataError, match=r"3 identity-disjoint folds need at least 3 groups "
                                        r"\(identities\), one per fold, but there are only 2"):
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
    with pytest.raises(DataError, match="3 parts needs at least 3 groups.*only 2"):
        group_split(["a", "b"], [0.5, 0.3, 0.2])
    with pytest.raises(ValueError):
        group_split(["a", "b"], [1.0, 0.0])


def _table(identities, split=None):
    table = pd.DataFrame({"identity": identities, "valence": 0.0, "arousal": 0.0})
    if split is not None:
        table["split"] = split
    return table


@pytest.mark.parametrize("n_ids", [1, 2])
def test_too_few_identities_for_a_random_split_is_one_clear_line(n_ids):
    table = _table([f"p{i % n_ids}" for i in range(6)])
    with pytest.raises(DataError) as err:
        make_splits(table, DataConfig(dataset="csv", split_mode="random"))
    msg = str(err.value)
    assert "\n" not in msg and "dataset 'csv'" in msg
    assert "into 3 parts (train, val, test) needs at least 3 groups (identities)" in msg
    assert f"there are only {n_ids}" in msg and "data.fractions" in msg
    # with as many parts as identities it works
    fractions = [1.0, 0.0, 0.0] if n_ids == 1 else [0.5, 0.5, 0.0]
    splits = make_splits(table, DataConfig(split_mode="random", fractions=fractions))
    assert sum(splits.sizes().values()) == 6


@pytest.mark.parametrize("mode", ["auto", "official"])
def test_an_official_split_of_train_rows_only_says_how_to_proceed(mode):
    table = _table([f"p{i}" for i in range(6)], split=["train"] * 6)
    with pytest.raises(DataError, match="only 'train' rows, no val or test rows.*"
                                        "--split-mode random"):
        make_splits(table, DataConfig(dataset="csv", split_mode=mode))
    random = make_splits(table, DataConfig(dataset="csv", split_mode="random"))
    assert all(n > 0 for n in random.sizes().values())


def test_an_official_split_without_test_tests_on_val_and_carves_val_from_train():
    table = _table([f"p{i}" for i in range(8)], split=["train"] * 6 + ["val"] * 2)
    splits = make_splits(table, DataConfig(split_mode="official"))
    assert splits.test.tolist() == [6, 7] and len(splits.val) > 0
    assert splits.rule.startswith("official (test = official val); val carved from train")
