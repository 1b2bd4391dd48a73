"""Crash-safe training checkpoints: atomic writes, safe loading, periodic saves, RNG states.

* :class:`SafeCheckpointIO` — Lightning's checkpoint I/O with two changes: a checkpoint is
  written to a temporary file in its own folder, flushed to disk and renamed over the old one
  (a crash never leaves a truncated ``.ckpt``), and it is read back only with
  ``torch.load(weights_only=True)`` and only from the run's ``logs/`` folder
  (:func:`elim.runs.load_training_checkpoint`), so resuming never unpickles code.
* :class:`ResumeCheckpoint` — keeps ``logs/checkpoints/last.ckpt`` current: every
  ``every_n_steps`` optimiser steps (mid-epoch progress survives a crash) and after each
  epoch's validation. ``elim train --resume RUN_DIR`` continues from it. Its callback state is
  the global random states of every process, restored at the first resumed batch. On a stop
  signal (SIGUSR1: SLURM's warning before the time limit) it writes the checkpoint at the next
  complete point, requeues a SLURM job (:func:`requeue_slurm_job`) and stops the fit
  (:class:`TrainingStopped`).
* :func:`capture_rng` / :func:`restore_rng` — torch (CPU and CUDA), numpy and python global
  random states as plain tensors, ints and lists (``weights_only``-compatible).
"""

from __future__ import annotations

import io
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from elim.errors import ElimError
from elim.fileio import atomic_write_bytes
from elim.runs import load_training_checkpoint
from elim.training.distributed import any_process, gather_objects

__all__ = [
    "ResumeCheckpoint",
    "SafeCheckpointIO",
    "TrainingStopped",
    "capture_rng",
    "requeue_slurm_job",
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


class TrainingStopped(ElimError):
    """Training stopped on request (a signal) after writing ``last.ckpt``; resume continues it."""


class ResumeCheckpoint(Checkpoint):
    """Write ``last.ckpt`` every ``every_n_steps`` steps (0: never mid-epoch) and at epoch ends;
    on ``stop_signal`` write it at the next such point and stop.

    Mid-epoch saves happen after the optimiser step of a batch; the last batch of an epoch is
    left to the end-of-epoch save, which comes after validation and after the module's own
    end-of-epoch bookkeeping (a :class:`Checkpoint` callback runs last), so a resumed run never
    redoes or skips a validation. The loggers are flushed with every save.

    Every checkpoint also carries the global random states of each process (:func:`capture_rng`);
    a resumed run restores its own at its first batch, after anything Lightning drew while
    restarting, so dropout and anything else drawing from them continue as if never stopped.

    ``stop_signal`` (e.g. SIGUSR1, which SLURM sends before a job's time limit with
    ``--signal=USR1@SECONDS``): the handler (installed in the main thread for the fit, the
    previous one restored afterwards) only notes the signal; at the next batch end or epoch end
    — a point where a checkpoint is complete — every process learns that one of them got it
    (:func:`~elim.training.distributed.any_process`), ``last.ckpt`` is written, ``on_stop``
    runs on process 0 (requeueing a SLURM job) and :class:`TrainingStopped` ends the fit.
    """

    def __init__(self, path: str | Path, every_n_steps: int = 0, *,
                 stop_signal: int | None = None,
                 on_stop: Callable[[], str] | None = None) -> None:
        self.path = Path(path)
        self.every_n_steps = int(every_n_steps)
        self.stop_signal = stop_signal
        self.on_stop = on_stop
        self._rank, self._world = 0, 1
        self._pending_rng: dict[str, Any] | None = None  # restored at the first resumed batch
        self._signalled = False
        self._previous_handler: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank, self._world = int(trainer.global_rank), int(trainer.world_size)
        self._signalled = False
        if self.stop_signal is not None and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(self.stop_signal, self._note_signal)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(self.stop_signal, self._previous_handler)
            self._previous_handler = None

    def _note_signal(self, signum: int, frame: Any) -> None:
        self._signalled = True

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
        if trainer.sanity_checking or batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's last batch is saved at the epoch's end
        stop = self._stop_requested(trainer)
        if stop or (self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0):
            self._save(trainer)
        if stop:
            self._stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)
        if self._stop_requested(trainer):
            self._stop(trainer)

    def _stop_requested(self, trainer: L.Trainer) -> bool:
        """Did any process get the stop signal? Collective (every process asks at the same
        points) when a stop signal is set."""
        return self.stop_signal is not None and any_process(trainer, self._signalled)

    def _stop(self, trainer: L.Trainer) -> None:
        done = self.on_stop() if self.on_stop is not None and trainer.is_global_zero else ""
        name = signal.Signals(self.stop_signal).name
        raise TrainingStopped(
            f"stopped on {name} at step {trainer.global_step} after writing {self.path}"
            f"{'; ' + done if done else ''}; continue with "
            f"`elim train --resume {self.path.parents[2]}`"
        )

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        for logger in trainer.loggers:  # logs up to the checkpoint survive a crash
            logger.save()


def requeue_slurm_job() -> str:
    """Requeue the SLURM job this process runs in (``scontrol requeue``, as Lightning's own
    auto-requeue does); returns what was done, for the stop message."""
    import os
    import subprocess

    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ.get(
        "SLURM_JOB_ID", "")
    if not job:
        return "not a SLURM job: not requeued"
    try:
        code = subprocess.call(["scontrol", "requeue", job])
    except OSError as err:
        return f"`scontrol requeue {job}` failed ({err})"
    return f"SLURM job {job} requeued" if code == 0 else (
        f"`scontrol requeue {job}` failed with exit status {code}")


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
