"""Training progress for logs and files: plain lines instead of a redrawn progress bar.

A progress bar redraws itself with carriage returns many times a second; written to a file
(``elim train > train.log``, a batch job's output) that is hundreds of kilobytes of ``\\r``
updates. :func:`interactive` tells whether both standard streams are terminals; when they are
not, :func:`elim.training.fit` uses :class:`EpochLines` (a Lightning ``ProgressBar``) instead
of Lightning's bar: process 0 prints one line per epoch — epoch, steps, mean training loss,
validation CCC, seconds — and, in long epochs, one line at most every ``every_seconds``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

__all__ = ["EpochLines", "interactive"]


def interactive() -> bool:
    """True when stdout and stderr are both terminals (a redrawn progress bar is readable)."""
    return all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))


class EpochLines(ProgressBar):
    """Plain progress lines (see the module docstring).

    Parameters
    ----------
    every_seconds
        Least time between two lines inside an epoch (an epoch's end always prints).
    stream
        Where the lines go (default: standard error, at print time).
    """

    def __init__(self, every_seconds: float = 60.0, stream: TextIO | None = None) -> None:
        super().__init__()
        self.every_seconds = float(every_seconds)
        self.stream = stream
        self._enabled = True
        self._epoch_started = self._last_line = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(text, file=self.stream or sys.stderr, flush=True)

    def _where(self, trainer: L.Trainer) -> str:
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        return f"epoch {trainer.current_epoch + 1}{epochs}, step {trainer.global_step}"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = self._last_line = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.every_seconds:
            self._last_line = now
            self._print(trainer, f"{self._where(trainer)} "
                                 f"({batch_idx + 1}/{trainer.num_training_batches} batches): "
                                 f"loss {_mean_loss(pl_module)}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "val_history", None) or []
        val = ""
        if history and history[-1].get("epoch") == trainer.current_epoch:
            val = f", val ccc_mean {history[-1]['ccc_mean']:.4f}"
        seconds = time.monotonic() - self._epoch_started
        self._print(trainer, f"{self._where(trainer)}: loss {_mean_loss(pl_module)}{val} "
                             f"({seconds:.1f} s)")


def _mean_loss(pl_module: L.LightningModule) -> str:
    """The mean of the epoch's step losses so far, as :class:`elim.training.ElimModule` holds
    them (``_epoch_loss``; a callback's ``on_train_epoch_end`` runs before the module's, which
    empties the list); ``n/a`` before the first step."""
    losses = getattr(pl_module, "_epoch_loss", None) or []
    return f"{sum(losses) / len(losses):.4f}" if losses else "n/a"
