"""Which identities each training process drew, per epoch (a Lightning callback).

:class:`RankLog` appends one JSON line per epoch to process r's file
:func:`elim.runs.rank_log_path` ``(run_dir, r)``: ``{"epoch", "rank", "world_size",
"identities"}`` (sorted names). Under DDP the identity shards of the processes are disjoint, which
these files let anyone check. A fresh fit removes the rank logs of an earlier run in the same
folder; a resumed one appends. The identities of the epoch in progress are callback state (of
every process), so a run resumed mid-epoch writes the same lines as one never stopped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from elim.runs import rank_log_path
from elim.training.datamodule import identity_names
from elim.training.distributed import gather_objects

__all__ = ["RankLog"]


class RankLog(Callback):
    """Write ``logs/ranks/rank-<r>.jsonl`` of ``run_dir`` (see the module docstring).

    Parameters
    ----------
    run_dir
        The run directory.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._rank, self._world = 0, 1
        self._epoch_ids: set[int] = set()  # identity codes drawn by this process this epoch

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank, self._world = int(trainer.global_rank), int(trainer.world_size)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None and trainer.is_global_zero:  # a fresh run: start afresh
            shutil.rmtree(rank_log_path(self.run_dir, 0).parent, ignore_errors=True)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._epoch_ids.update(int(c) for c in torch.unique(batch[2]).tolist())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {"epoch": int(trainer.current_epoch), "rank": self._rank,
                  "world_size": self._world,
                  "identities": sorted(identity_names(trainer, self._epoch_ids))}
        path = rank_log_path(self.run_dir, self._rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        self._epoch_ids = set()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_ids": gather_objects(sorted(self._epoch_ids), self._world)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._epoch_ids = {int(c) for c in state_dict["epoch_ids"][self._rank]}
