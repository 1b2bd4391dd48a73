"""Guarding the optimiser against non-finite losses and gradients (a Lightning callback).

A training step whose loss (L_va or L_main) or whose gradients are not finite is skipped —
no parameter, optimiser or BatchNorm state changes — and counted with where it happened (epoch,
batch, step, process, identities), so one bad batch cannot poison the weights with NaN. After
``max_consecutive`` bad steps in a row training stops with :class:`TrainingDiverged` (an
:class:`~elim.errors.ElimError`) naming the last one.

The work is shared with :class:`elim.training.module.ElimModule`, since only ``training_step``
can skip a step before its backward pass: the module returns ``None`` when a loss term is not
finite on any process (the decision is or-ed over the processes, so all of them skip the same
steps) and says why in ``skip_cause``. :class:`NonFiniteGuard` does the rest:

* ``on_train_batch_start`` keeps the module's buffers (BatchNorm statistics move in the forward
  pass) and where the batch is;
* ``on_train_batch_end`` of a skipped step restores those buffers, logs a warning (logger
  ``elim.training``), counts the step and raises after ``max_consecutive``;
* ``on_before_optimizer_step`` drops the update when a gradient is not finite (the gradients are
  already averaged over the processes, so every process decides alike); under 16-mixed precision
  the gradient scaler does this itself.

Its counts are callback state (``state_dict``), so they survive ``elim train --resume``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from elim.errors import ElimError
from elim.training.datamodule import identity_names

__all__ = ["NonFiniteGuard", "TrainingDiverged"]

log = logging.getLogger("elim.training")
_SHOWN_IDENTITIES = 12  # identities named in a warning; more are counted


class TrainingDiverged(ElimError):
    """Too many consecutive training steps had a non-finite loss or gradient."""


class NonFiniteGuard(Callback):
    """Counts skipped steps by cause (``L_va``, ``L_main``, ``gradient``, …) and consecutive runs.

    Parameters
    ----------
    max_consecutive
        Bad steps in a row that stop training (``<= 0``: never stop).
    max_examples
        Messages of skipped steps kept for :meth:`summary`.
    """

    def __init__(self, max_consecutive: int = 20, max_examples: int = 10) -> None:
        self.max_consecutive = int(max_consecutive)
        self.max_examples = int(max_examples)
        self.counts: Counter = Counter()
        self.consecutive = 0
        self.examples: list[str] = []
        self._buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._batch: tuple[int, int, int, torch.Tensor] | None = None  # epoch, index, step, ids

    # -- counting -----------------------------------------------------------------------------
    @property
    def skipped(self) -> int:
        return int(sum(self.counts.values()))

    def bad(self, cause: str, where: str) -> str:
        """Record a skipped step; returns its message. Raises :class:`TrainingDiverged` when
        ``max_consecutive`` steps in a row were bad (``max_consecutive <= 0``: never)."""
        self.counts[cause] += 1
        self.consecutive += 1
        message = f"non-finite {cause} at {where}; step skipped ({self.skipped} so far)"
        if len(self.examples) < self.max_examples:
            self.examples.append(message)
        if 0 < self.max_consecutive <= self.consecutive:
            raise TrainingDiverged(
                f"training stopped: {self.consecutive} consecutive steps with a non-finite loss "
                f"or gradient (last: {message}); lower the learning rate, set --grad-clip, or "
                "check the labels and images of those identities"
            )
        return message

    def good(self) -> None:
        self.consecutive = 0

    def summary(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped, "by_cause": dict(sorted(self.counts.items())),
                "examples": list(self.examples)}

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "consecutive": self.consecutive,
                "examples": list(self.examples)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = Counter({str(k): int(v) for k, v in state.get("counts", {}).items()})
        self.consecutive = int(state.get("consecutive", 0))
        self.examples = [str(e) for e in state.get("examples", [])]

    # -- Lightning hooks ----------------------------------------------------------------------
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._buffers = [(b, b.detach().clone()) for b in pl_module.buffers()]
        self._batch = (int(trainer.current_epoch), int(batch_idx), int(trainer.global_step),
                       batch[2])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        buffers, self._buffers = self._buffers, []
        cause = pl_module.skip_cause
        if cause is None:
            return
        log.warning(self.bad(cause, self._where(trainer)))
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        pl_module.log("train/skipped_steps", float(self.skipped), batch_size=1)

    def _where(self, trainer: L.Trainer) -> str:
        """Epoch, batch, step, process and identities of the batch begun last."""
        epoch, batch_idx, step, codes = self._batch
        names = identity_names(trainer, torch.unique(codes).tolist())
        shown = ", ".join(names[:_SHOWN_IDENTITIES])
        if len(names) > _SHOWN_IDENTITIES:
            shown += f", … ({len(names)} in all)"
        rank = f", process {trainer.global_rank}" if trainer.world_size > 1 else ""
        return f"epoch {epoch}, batch {batch_idx}, step {step}{rank} (identities {shown})"

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: Any) -> None:
        params = [p for p in pl_module.parameters() if p.grad is not None]
        if not params:  # the step's loss was skipped already
            return
        if str(trainer.precision).startswith("16"):
            self.good()
            return
        if not bool(torch.stack([torch.isfinite(p.grad).all() for p in params]).all()):
            for p in params:
                p.grad = None  # Adam leaves parameters without a gradient untouched
            where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
            log.warning(self.bad("gradient", where))
            return
        self.good()
