"""Crash-safe training checkpoints: atomic writes, safe loading, periodic saves, RNG states.

* :class:`SafeCheckpointIO` — Lightning's checkpoint I/O with two changes: a checkpoint is
  written to a temporary file in its own folder, flushed to disk and renamed over the old one
  (a crash never leaves a truncated ``.ckpt``), and it is read back only with
  ``torch.load(weights_only=True)`` and only from the run's ``logs/`` folder
  (:func:`elim.runs.load_training_checkpoint`), so resuming never unpickles code.
* :class:`ResumeCheckpoint` — keeps ``logs/checkpoints/last.ckpt`` current: every
  ``every_n_steps`` optimiser steps (mid-epoch progress survives a crash) and after each
  epoch's validation. ``elim train --resume RUN_DIR`` continues from it. Its callback state is
  the global random states of every process, restored at the first resumed batch.
* :func:`capture_rng` / :func:`restore_rng` — torch (CPU and CUDA), numpy and python global
  random states as plain tensors, ints and lists (``weights_only``-compatible).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from elim.fileio import atomic_write_bytes
from elim.runs import load_training_checkpoint
from elim.training.distributed import gather_objects

__all__ = [
    "ResumeCheckpoint",
    "SafeCheckpointIO",
    "capture_rng",
    "restore_rng",
]


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic ``torch.save`` to local files; ``weights_only`` loading from ``run_dir/logs`` only."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO writes local files only (no storage_options)")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_training_checkpoint(path, self.run_dir)  # always weights_only=True


class ResumeCheckpoint(Checkpoint):
    """Write ``last.ckpt`` every ``every_n_steps`` steps (0: never mid-epoch) and at epoch ends.

    Mid-epoch saves happen after the optimiser step of a batch; the last batch of an epoch is
    left to the end-of-epoch save, which comes after validation and after the module's own
    end-of-epoch bookkeeping (a :class:`Checkpoint` callback runs last), so a resumed run never
    redoes or skips a validation. The loggers are flushed with every save.

    Every checkpoint also carries the global random states of each process (:func:`capture_rng`);
    a resumed run restores its own at its first batch, after anything Lightning drew while
    restarting, so dropout and anything else drawing from them continue as if never stopped.
    """

    def __init__(self, path: str | Path, every_n_steps: int = 0) -> None:
        self.path = Path(path)
        self.every_n_steps = int(every_n_steps)
        self._rank, self._world = 0, 1
        self._pending_rng: dict[str, Any] | None = None  # restored at the first resumed batch

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank, self._world = int(trainer.global_rank), int(trainer.world_size)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": gather_objects(capture_rng(), self._world)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict["rng"][self._rank]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:
            restore_rng(self._pending_rng)
            self._pending_rng = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_steps <= 0 or trainer.sanity_checking:
            return
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        if not last_batch and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path)
        for logger in trainer.loggers:  # logs up to the checkpoint survive a crash
            logger.save()


def capture_rng() -> dict[str, Any]:
    """Global random states: torch CPU (and CUDA) tensors, numpy and python as lists/ints."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()),
                     p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
