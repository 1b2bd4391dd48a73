"""Group-aware splits: no group (person, actor, video) on both sides of a split.

Identity-invariant evaluation needs test identities unseen during training, so folds and
train/val/test parts are formed from whole groups. Groups are visited in a seeded random
order and each goes to the part furthest below its target size, which keeps part sizes
within one group of their targets.

A dataset's train / val / test parts (:func:`make_splits`, rule ``data.split_mode``):

* ``auto`` — the dataset's official ``split`` column when it has one, else ``random``;
* ``official`` — the ``split`` column (``train``/``val``/``test``; ``validation`` is read as
  ``val``). A dataset whose labelled parts are only train + val (Aff-Wild2) tests on the
  official val part, as the paper does, and carves its own validation identities out of the
  official train part; a missing val part is carved the same way. A split column with only
  train rows is a :class:`DataError` that points to ``random`` (nothing would be tested);
* ``random`` — an identity-disjoint :func:`group_split` of all samples into ``data.fractions``
  (default 70/15/15 % of samples, by ``group``, seeded by ``split_seed``).

Carving uses the same ``group_split`` with the val/train proportion of ``data.fractions``.
Groups (default = identity) never straddle two parts, so validation and test identities are
never seen in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from elim.errors import DataError

if TYPE_CHECKING:
    from elim.config import DataConfig


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
    fold sizes (in samples) differ by at most about one group. Fewer groups than folds is a
    :class:`DataError` saying how many are needed and how many there are.
    """
    inverse, counts = _groups(groups)
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if len(counts) < n_folds:
        raise DataError(f"{n_folds} identity-disjoint folds need at least {n_folds} groups "
                        f"(identities), one per fold, but there are only {len(counts)}; use at "
                        f"most {len(counts)} folds or add identities")
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
    to 1. Each group lands in exactly one part; every part gets at least one group (fewer
    groups than parts is a :class:`DataError` saying how many are needed and there are).
    """
    names = list(fractions.keys()) if isinstance(fractions, Mapping) else None
    values = np.asarray(list(fractions.values()) if names else list(fractions), dtype=np.float64)
    if len(values) == 0 or (values <= 0).any() or not np.isfinite(values).all():
        raise ValueError(f"fractions must be positive, got {fractions}")
    inverse, counts = _groups(groups)
    if len(counts) < len(values):
        what = f" ({', '.join(names)})" if names else ""
        raise DataError(f"an identity-disjoint split into {len(values)} parts{what} needs at "
                        f"least {len(values)} groups (identities), one per part, but there are "
                        f"only {len(counts)}")
    targets = values / values.sum() * counts.sum()
    part = _assign(counts, targets, seed)[inverse]
    parts = [np.flatnonzero(part == j).astype(np.int64) for j in range(len(values))]
    return dict(zip(names, parts)) if names else parts


# ------------------------------------------------------------ a dataset's train / val / test
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "dev": "val", "test": "test", "testing": "test"}


@dataclass
class Splits:
    """Row indices of the cache per part, and how they were made."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    rule: str

    def groups(self, table: pd.DataFrame) -> dict[str, list[str]]:
        """Sorted group names of each part (what ``splits.json`` of a run stores)."""
        g = groups_of(table)
        return {name: sorted(set(g[idx].tolist())) for name, idx in
                (("train", self.train), ("val", self.val), ("test", self.test))}

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def groups_of(table: pd.DataFrame) -> np.ndarray:
    """The split unit of every row: ``group`` where set, else ``identity`` (as strings)."""
    ident = table["identity"].astype(str)
    if "group" not in table.columns:
        return ident.to_numpy()
    group = table["group"]
    return group.where(group.notna() & (group.astype(str) != ""), ident).astype(str).to_numpy()


def _carve(idx: np.ndarray, groups: np.ndarray, fractions: list[float], seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` by group into (train, val) with the val/train proportion of ``fractions``."""
    tr, va = fractions[0], fractions[1]
    if va <= 0 or len(np.unique(groups[idx])) < 2:
        return idx, idx[:0]
    parts = group_split(groups[idx], [tr, va], seed=seed)
    return idx[parts[0]], idx[parts[1]]


def make_splits(table: pd.DataFrame, data: DataConfig) -> Splits:
    """Train / val / test row indices of ``table`` by the rule of ``data.split_mode``
    (``data`` is a :class:`elim.config.DataConfig`, e.g. ``config.data``)."""
    groups = groups_of(table)
    has_official = "split" in table.columns and table["split"].notna().any() and (
        table["split"].astype(str).str.strip() != "").any()
    mode = data.split_mode
    if mode == "official" and not has_official:
        raise DataError(
            f"dataset {data.dataset!r} has no official 'split' column; use data.split_mode "
            "'random' (or 'auto')"
        )
    if mode in ("official", "auto") and has_official:
        raw = table["split"].astype(str).str.strip().str.casefold()
        names = raw.map(_SPLIT_ALIASES)
        unknown = sorted(set(raw[names.isna() & (raw != "") & (raw != "nan")]))
        if unknown:
            raise DataError(
                f"dataset {data.dataset!r}: unknown split names {unknown}; expected train/val/test"
            )
        idx = {p: np.flatnonzero((names == p).to_numpy()) for p in ("train", "val", "test")}
        if len(idx["train"]) == 0:
            raise DataError(f"dataset {data.dataset!r}: the official split has no 'train' rows")
        if len(idx["val"]) == 0 and len(idx["test"]) == 0:
            raise DataError(
                f"dataset {data.dataset!r}: the official split (its 'split' column) has only "
                "'train' rows, no val or test rows, so there is nothing to test on; use "
                "--split-mode random (data.split_mode: random) for an identity-disjoint split "
                "of all rows, or mark val/test rows in the 'split' column"
            )
        rule = "official"
        if len(idx["test"]) == 0:
            idx["test"], idx["val"] = idx["val"], idx["val"][:0]
            rule = "official (test = official val)"
        if len(idx["val"]) == 0:
            idx["train"], idx["val"] = _carve(idx["train"], groups, data.fractions, data.split_seed)
            rule += f"; val carved from train by group (seed {data.split_seed})"
        return Splits(idx["train"], idx["val"], idx["test"], rule)
    fr = data.fractions
    parts = {"train": fr[0], "val": fr[1], "test": fr[2]}
    use = {k: v for k, v in parts.items() if v > 0}
    try:
        got = group_split(groups, use, seed=data.split_seed)
    except DataError as err:
        raise DataError(f"dataset {data.dataset!r}: {err}; add identities, or give fewer parts "
                        f"a non-zero data.fractions (now {list(fr)})") from None
    empty = np.zeros(0, dtype=np.int64)
    return Splits(got["train"], got.get("val", empty), got.get("test", empty),
                  f"group_split {fr} (seed {data.split_seed})")


def splits_from_groups(table: pd.DataFrame, parts: dict[str, list[str]]) -> Splits:
    """Rebuild a run's :class:`Splits` from the group names stored in its ``splits.json``."""
    groups = groups_of(table)
    idx = {k: np.flatnonzero(np.isin(groups, np.asarray(parts.get(k, []), dtype=str)))
           for k in ("train", "val", "test")}
    return Splits(idx["train"], idx["val"], idx["test"], "stored")
