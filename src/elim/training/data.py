"""Data for training: open the face cache, split it, build the loaders.

The split rule is :func:`elim.data.splits.make_splits` (its one-line errors say when the
identities are too few to split, or an official split has nothing to test on).
:class:`elim.training.datamodule.FaceDataModule` serves the loaders to Lightning.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from elim.config import Config, preprocess_for
from elim.data.cache import FaceCache
from elim.data.dataset import FaceDataset
from elim.data.sampler import IdentityBatchSampler
from elim.errors import DataError

__all__ = ["eval_loader", "open_cache", "train_loader"]


def open_cache(config: Config, progress: bool = True) -> FaceCache:
    """Open (building on first use) the face cache of ``config.data`` at the model's image size."""
    from elim.datasets import open_dataset

    data = config.data
    size = preprocess_for(config).image_size
    return open_dataset(
        data.dataset, data.root, size, cache_dir=data.cache_dir, margin=data.margin,
        align=data.align, progress=progress, **data.options,
    )


def train_loader(
    cache: FaceCache, indices: np.ndarray, config: Config, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """Identity batches (P × K, :class:`IdentityBatchSampler`, seeded by ``config.seed``); process
    ``rank`` of ``world_size`` draws only its own share of the identities each epoch.

    The identity sampler is ``loader.batch_sampler.sampler``: there Lightning's fit loop calls
    ``set_epoch(epoch)`` at the start of every epoch (as it does for torch's ``BatchSampler``).
    """
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
    return DataLoader(dataset, batch_sampler=_EpochBatches(sampler),
                      collate_fn=FaceDataset.collate, num_workers=config.data.num_workers,
                      generator=generator)


class _EpochBatches(Sampler[list[int]]):
    """The batches of ``sampler``, which is exposed as ``.sampler`` for epoch control."""

    def __init__(self, sampler: IdentityBatchSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def eval_loader(cache: FaceCache, indices: np.ndarray, batch_size: int) -> DataLoader:
    """Sequential batches of ``indices`` (no shuffling, no augmentation)."""
    dataset = FaceDataset(cache, indices)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                      collate_fn=FaceDataset.collate, generator=torch.Generator())
