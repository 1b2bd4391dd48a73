"""Data for training: open the face cache, split it by identity, build the loaders.

Split rule (``data.split_mode``):

* ``auto`` — the dataset's official ``split`` column when it has one, else ``random``;
* ``official`` — the ``split`` column (``train``/``val``/``test``; ``validation`` is read as
  ``val``). A dataset whose labelled parts are only train + val (Aff-Wild2) tests on the
  official val part, as the paper does, and carves its own validation identities out of the
  official train part; a missing val part is carved the same way;
* ``random`` — an identity-disjoint :func:`elim.data.splits.group_split` of all samples into
  ``data.fractions`` (default 70/15/15 % of samples, by ``group``, seeded by ``split_seed``).

Carving uses the same ``group_split`` with the val/train proportion of ``data.fractions``.
Groups (default = identity) never straddle two parts, so validation and test identities are
never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from elim.config import Config
from elim.data.cache import FaceCache
from elim.data.dataset import FaceDataset
from elim.data.sampler import IdentityBatchSampler
from elim.data.splits import group_split
from elim.data.transforms import Preprocess
from elim.errors import DataError

__all__ = [
    "Splits",
    "eval_loader",
    "groups_of",
    "make_splits",
    "open_cache",
    "predict",
    "preprocess_for",
    "splits_from_groups",
    "train_loader",
]

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


def preprocess_for(config: Config) -> Preprocess:
    """The :class:`Preprocess` of a config (backbone defaults fill ``image_size/mean/std``)."""
    from elim.models import backbone_defaults

    d = backbone_defaults(config.model.backbone)
    data = config.data
    return Preprocess(
        int(data.image_size or d["image_size"]),
        tuple(data.mean or d["mean"]),
        tuple(data.std or d["std"]),
    )


def open_cache(config: Config, progress: bool = True) -> FaceCache:
    """Open (building on first use) the face cache of ``config.data`` at the model's image size."""
    from elim.data.cache import open_dataset

    data = config.data
    size = preprocess_for(config).image_size
    return open_dataset(
        data.dataset, data.root, size, cache_dir=data.cache_dir, margin=data.margin,
        progress=progress, **data.options,
    )


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


def make_splits(table: pd.DataFrame, config: Config) -> Splits:
    """Train / val / test row indices of ``table`` by the rule of ``config.data.split_mode``."""
    data = config.data
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
    got = group_split(groups, use, seed=data.split_seed)
    empty = np.zeros(0, dtype=np.int64)
    return Splits(got["train"], got.get("val", empty), got.get("test", empty),
                  f"group_split {fr} (seed {data.split_seed})")


def splits_from_groups(table: pd.DataFrame, parts: dict[str, list[str]]) -> Splits:
    """Rebuild a run's :class:`Splits` from the group names stored in its ``splits.json``."""
    groups = groups_of(table)
    idx = {k: np.flatnonzero(np.isin(groups, np.asarray(parts.get(k, []), dtype=str)))
           for k in ("train", "val", "test")}
    return Splits(idx["train"], idx["val"], idx["test"], "stored")


def train_loader(
    cache: FaceCache, indices: np.ndarray, config: Config, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """Identity batches (P × K, :class:`IdentityBatchSampler`, seeded by ``config.seed``); process
    ``rank`` of ``world_size`` draws only its own share of the identities each epoch."""
    dataset = FaceDataset(cache, indices)
    n_ids = len(dataset.identities)
    if world_size > n_ids:
        raise DataError(
            f"{n_ids} training identities cannot be shared by {world_size} processes (each "
            "process draws its own identities); use fewer devices or more identities"
        )
    sampler = IdentityBatchSampler(
        dataset.identity_codes, n_identities=config.data.batch_identities,
        samples_per_identity=config.data.samples_per_identity, seed=config.seed,
        rank=rank, world_size=world_size,
    )
    # An own generator: starting an epoch's iterator then leaves the global torch RNG alone,
    # which a bit-exact resume relies on.
    generator = torch.Generator().manual_seed(int(config.seed))
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=FaceDataset.collate,
                      num_workers=config.data.num_workers, generator=generator)


def eval_loader(cache: FaceCache, indices: np.ndarray, batch_size: int) -> DataLoader:
    """Sequential batches of ``indices`` (no shuffling, no augmentation)."""
    dataset = FaceDataset(cache, indices)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                      collate_fn=FaceDataset.collate, generator=torch.Generator())


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    preprocess: Preprocess,
    cache: FaceCache,
    indices: np.ndarray,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """``(predictions, labels)`` as float64 (N, 2) arrays for rows ``indices`` of ``cache``.

    The model runs in eval mode on sequential batches; the same function serves validation
    after training, the test split and ``elim evaluate``, so their numbers agree exactly.
    """
    was_training = model.training
    model.eval()
    preds, labels = [], []
    try:
        for images, y, _ in eval_loader(cache, indices, batch_size):
            x = preprocess(images.to(device))
            preds.append(model(x).float().cpu())
            labels.append(y.float())
    finally:
        model.train(was_training)
    if not preds:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return (torch.cat(preds).double().numpy(), torch.cat(labels).double().numpy())
