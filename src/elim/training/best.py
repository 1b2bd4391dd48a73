"""The weights of the best validation epoch, kept in memory (a Lightning callback).

:class:`BestWeights` watches the validation metrics the module computes once per validation
over the whole (gathered) validation set — ``ElimModule.val_history``, float64 — and keeps a CPU
copy of ``pl_module.model``'s weights whenever ``metric`` (``ccc_mean``) is higher than before
(ties keep the earlier epoch). ``fit`` loads them after training, so the saved run and its
``metrics.json`` (``best_epoch``) are those of the best epoch; Lightning's ``ModelCheckpoint``
writes the same epoch to ``best.ckpt`` when checkpoints are on. Without validation nothing is
kept and the last epoch stands. The best weights, epoch and score are callback state, so they
survive ``elim train --resume``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

__all__ = ["BestWeights"]


class BestWeights(Callback):
    """Keep the weights of the validation with the highest ``metric``.

    Parameters
    ----------
    metric
        Key of the module's validation records (``val_history`` entries) to maximise.
    """

    def __init__(self, metric: str = "ccc_mean") -> None:
        self.metric = metric
        self.state: dict[str, Tensor] | None = None  # weights of the best validation
        self.epoch: int | None = None
        self.score = float("-inf")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = pl_module.val_history
        if trainer.sanity_checking or not history:
            return
        record = history[-1]
        if record["epoch"] != trainer.current_epoch:  # this validation gave no record
            return
        if record[self.metric] > self.score:
            self.score = float(record[self.metric])
            self.epoch = int(record["epoch"])
            self.state = {k: v.detach().cpu().clone()
                          for k, v in pl_module.model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state, "epoch": self.epoch, "score": self.score}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.state = state_dict["state"]
        self.epoch = state_dict["epoch"]
        self.score = float(state_dict["score"])
