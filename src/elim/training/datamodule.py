"""The data of one fit as a Lightning ``DataModule``: identity batches and the validation shard.

:class:`FaceDataModule` is built from ``(config, cache, splits)``. In ``setup`` — when the trainer
knows its global rank r and world size W — it builds

* the train loader (:func:`elim.training.data.train_loader`): a ``FaceDataset`` of the train
  part in P × K identity batches (:class:`~elim.data.sampler.IdentityBatchSampler`), process r
  drawing only its own share of the identities, with its own seeded generator (starting an
  epoch leaves the global RNG alone). Lightning's fit loop moves the sampler to each epoch
  (``set_epoch``);
* the validation loader over this process's strided shard of the validation part
  (:func:`elim.training.distributed.shard`; the module gathers the shards back).

Sampler position in checkpoints: the DataModule's own ``state_dict`` / ``load_state_dict``.
Lightning writes it into every checkpoint and restores it after ``setup`` and before the first
batch is drawn, which is what a mid-epoch resume needs. Since Lightning fetches one batch ahead, the
position saved is the number of batches training has *consumed*
(``batch_progress.current.ready``), with the trainer's epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from elim.config import Config
from elim.data.cache import FaceCache
from elim.data.sampler import IdentityBatchSampler
from elim.data.splits import Splits
from elim.errors import ElimError
from elim.training.data import eval_loader, train_loader
from elim.training.distributed import shard

__all__ = ["FaceDataModule", "identity_names"]


class FaceDataModule(L.LightningDataModule):
    """Train and validation loaders of ``splits`` over ``cache`` as configured by ``config``.

    Parameters
    ----------
    config
        The run's configuration (``data`` section and ``seed``).
    cache
        The faces.
    splits
        Row indices of the train / val / test parts (test is not used here).
    """

    def __init__(self, config: Config, cache: FaceCache, splits: Splits) -> None:
        super().__init__()
        self.config = config
        self.cache = cache
        self.splits = splits
        self._train: DataLoader | None = None
        self._val: DataLoader | None = None

    def _process(self) -> tuple[int, int]:
        """(global rank, world size) of the trainer; (0, 1) without one."""
        if self.trainer is None:
            return 0, 1
        return int(self.trainer.global_rank), int(self.trainer.world_size)

    def batches_per_epoch(self, world_size: int = 1) -> int:
        """Train batches per epoch with ``world_size`` processes (the same on every process:
        the sampler completes the shorter shards)."""
        return len(train_loader(self.cache, self.splits.train, self.config, 0, world_size))

    def setup(self, stage: str) -> None:
        rank, world = self._process()
        self._train = train_loader(self.cache, self.splits.train, self.config, rank, world)
        val = self.splits.val
        if 0 < len(val) < world:
            raise ElimError(f"{len(val)} validation faces cannot be shared by {world} "
                            "processes; use fewer devices or a larger validation part")
        self._val = eval_loader(self.cache, shard(val, rank, world),
                                self.config.data.eval_batch_size)

    def _loaders(self) -> tuple[DataLoader, DataLoader]:
        if self._train is None or self._val is None:
            raise RuntimeError("FaceDataModule: call setup() first (Lightning does)")
        return self._train, self._val

    def train_dataloader(self) -> DataLoader:
        return self._loaders()[0]

    def val_dataloader(self) -> DataLoader:
        return self._loaders()[1]

    @property
    def sampler(self) -> IdentityBatchSampler:
        """The identity batch sampler of this process."""
        return self.train_dataloader().batch_sampler.sampler

    @property
    def identity_names(self) -> list[str]:
        """Names of the training identities, indexed by the identity codes of train batches."""
        return self.train_dataloader().dataset.identities

    def state_dict(self) -> dict[str, Any]:
        """``{"sampler": state}`` with the epoch and the batches consumed so far."""
        state = self.sampler.state_dict()
        if self.trainer is not None:  # Lightning fetches a batch ahead: count the consumed ones
            consumed = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready
            state.update(epoch=int(self.trainer.current_epoch), position=int(consumed))
        return {"sampler": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue at the saved epoch, after its consumed batches (after :meth:`setup`)."""
        self.sampler.load_state_dict(state_dict["sampler"])


def identity_names(trainer: Any, codes: Iterable[int]) -> list[str]:
    """Names of the identity ``codes`` of ``trainer``'s train batches (the codes as text when the
    trainer has no :class:`FaceDataModule`)."""
    data = getattr(trainer, "datamodule", None)
    names = data.identity_names if isinstance(data, FaceDataModule) else None
    return [names[int(c)] if names else str(int(c)) for c in codes]
