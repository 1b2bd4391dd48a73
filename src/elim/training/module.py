"""Lightning module training f_φ and f_θ with L_va (baseline) or L_va + w(t)·L_main (ELIM).

One training step (Algorithm 1, as one summed objective):

1. ``x`` = Preprocess(uint8 batch), randomly augmented (seeded generator);
2. ``z = f_φ(x)``, ``ŷ = f_θ(z)``; ``L_va = MSE + (1 − PCC) + (1 − CCC)`` on ``ŷ`` (line 8);
3. ``method=elim`` only: the identity-matching layer turns the same ``z`` into identity-normalised
   targets ``Ẑ`` (Eqs. 3, 4, 7, 8) and ``L_main = MSE(f_θ(Ẑ), y[index])`` (Eq. 6);
4. ``loss = L_va + w(t)·main_weight·L_main`` and a single backward pass through (φ, θ).

The reference code instead takes two optimiser steps per iteration (one per loss, with a second
forward pass); summing the two losses is what Algorithm 1 writes and halves the cost. ``w(t)``
ramps L_main in linearly over the first ``train.warmup`` fraction of the steps. When ``w(t) = 0``
or the batch holds fewer than two identities, the matching is skipped for that step (L_main
weight 0). Inference is ``f_θ(f_φ(x))`` for both methods.

Validation predictions are gathered over the whole validation set (and across processes) before
the metrics are computed, so CCC is always global and never averaged over batches: under DDP each
process predicts a strided shard of the validation set and the shards are reassembled exactly
(:mod:`elim.training.distributed`); ``val_history`` holds the float64 metrics of each validation.

What is not the step lives beside it, the Lightning way: the data in
:class:`~elim.training.datamodule.FaceDataModule`, and in callbacks the non-finite guard
(:class:`~elim.training.guard.NonFiniteGuard`: the module returns ``None`` for a step whose
L_va or L_main is not finite on any process and names the term in ``skip_cause``; the guard
counts it and restores BatchNorm), the best-epoch weights (:mod:`elim.training.best`), the
identity logs (:mod:`elim.training.rank_log`) and the resume checkpoint
(:mod:`elim.training.checkpoint`). Checkpoints get the module's own state in ``checkpoint["elim"]``:
the configuration, the world size, the named generators of every process
(:class:`~elim.training.generators.NamedGenerators`), the per-epoch losses, the validation history
and the matching time.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor

from elim.config import Config
from elim.errors import CheckpointError, ElimError
from elim.losses import main_loss, va_loss
from elim.metrics import va_metrics
from elim.training.distributed import any_process, gather_objects, gather_shards
from elim.training.generators import NamedGenerators
from elim.training.schedule import cosine_factor, lr_factor, warmup_weight

__all__ = ["ElimModule"]

_LOGGED = ("loss_va", "loss_main", "mse", "pcc_loss", "ccc_loss", "w_main")
_TERMS = (("L_va", "loss_va"), ("L_main", "loss_main"))  # loss terms the guard names


class ElimModule(L.LightningModule):
    """Trains an :class:`elim.models.ElimModel` as configured by :class:`elim.config.Config`.

    Parameters
    ----------
    model
        The model (``features`` = f_φ, ``head`` = f_θ).
    config
        The run's configuration (``train``, ``matching``, ``augment.enabled``, ``seed``).
    preprocess
        Maps uint8 NHWC batches to normalised float NCHW.
    augment
        Optional ``augment(x, generator)`` for train batches (used when ``augment.enabled``), e.g.
        :class:`elim.data.transforms.FaceAugment`.
    total_steps
        Steps of the whole run: sizes the L_main warm-up and the cosine schedule.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: Config,
        preprocess: Any,
        augment: Any | None = None,
        total_steps: int = 1,
    ) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.preprocess = preprocess
        self.augment = augment if config.augment.enabled else None
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = round(config.train.warmup * self.total_steps)
        self.matching = None
        if config.train.method == "elim":
            self.matching = config.matching.build()
        self.generators = NamedGenerators(config.seed)  # of process 0 until setup() knows ours
        self._val_pred: list[Tensor] = []
        self._val_true: list[Tensor] = []
        self.val_history: list[dict[str, float]] = []  # metrics of each validation (float64)
        self.train_loss: list[float] = []  # mean training loss of each epoch
        self._epoch_loss: list[float] = []
        self.matching_seconds = 0.0
        self.skip_cause: str | None = None  # why the last training step was skipped (None: not)

    def setup(self, stage: str) -> None:
        self.generators = NamedGenerators(self.config.seed, rank=self.global_rank)
        if self.config.train.threads:  # Lightning's DDP launcher sets its own count meanwhile
            torch.set_num_threads(int(self.config.train.threads))
        if self.config.train.channels_last:  # before DDP wraps the model: its gradient buckets
            self.model.to(memory_format=torch.channels_last)  # then match the weights' strides

    # -- forward / losses ---------------------------------------------------------------------
    def _input(self, images: Tensor) -> Tensor:
        x = self.preprocess(images)
        if self.config.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """Inference: uint8 NHWC images → (B, 2) valence, arousal."""
        return self.model(self._input(images))

    def on_fit_end(self) -> None:
        self.model.to(memory_format=torch.contiguous_format)

    def main_weight(self, step: int) -> float:
        """``w(t)·main_weight`` at iteration ``step`` (0 for the baseline)."""
        if self.matching is None:
            return 0.0
        t = self.config.train
        return warmup_weight(step, self.warmup_steps, t.warmup_start) * t.main_weight

    def compute_loss(self, batch: tuple[Tensor, Tensor, Tensor], step: int) -> tuple[Tensor, dict]:
        """Total loss and detached parts for one batch ``(uint8 images, y, identity codes)``."""
        images, y, identity = batch
        y = y.float()
        x = self.preprocess(images)
        if self.augment is not None:
            x = self.augment(x, self.generators.get("augment", x.device))
        if self.config.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        z = self.model.features(x)
        pred = self.model.head(z)
        t = self.config.train
        loss, parts = va_loss(pred.float(), y, w_mse=t.w_mse, w_pcc=t.w_pcc, w_ccc=t.w_ccc)
        logs: dict[str, Any] = {"loss_va": loss.detach(), **parts}
        weight = self.main_weight(step)
        if self.matching is not None:
            logs["w_main"] = weight
        if weight > 0:
            start = time.perf_counter()
            autocast_off = (
                torch.autocast(z.device.type, enabled=False)
                if torch.is_autocast_enabled(z.device.type) else contextlib.nullcontext()
            )
            with autocast_off:
                out = self.matching(z.float(), identity.long(), y,
                                    generator=self.generators.get("matching", z.device))
            self.matching_seconds += time.perf_counter() - start
            if not out.empty:
                l_main = main_loss(self.model.head(out.z_hat).float(), y[out.index])
                loss = loss + weight * l_main
                logs["loss_main"] = l_main.detach()
        logs["loss"] = loss.detach()
        return loss, logs

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        loss, logs = self.compute_loss(batch, int(self.global_step))
        bad = [name for name, key in _TERMS if key in logs and not bool(torch.isfinite(logs[key]))]
        self.skip_cause = None
        if any_process(self._trainer, bool(bad)):  # every process must skip the same steps
            self.skip_cause = " and ".join(bad) if bad else "loss on another process"
            return None  # no backward, no optimiser step
        self._epoch_loss.append(float(logs["loss"]))
        self._log_step(logs, int(batch[1].shape[0]))
        return loss

    def _log_step(self, logs: dict[str, Any], batch_size: int) -> None:
        """Log the step's loss terms, only on the steps the loggers write (Lightning's own test,
        ``should_update_logs``: every ``log_every_n_steps`` and when stopping) and, for
        Lightning's redrawn progress bar (``TQDMProgressBar``, which shows ``train/loss``),
        every step; :class:`~elim.training.progress.EpochLines` reads no logged metrics.
        ``self.log`` costs about a millisecond a call, a third of a small model's step on a
        CPU."""
        trainer = self._trainer
        if trainer is None:
            return
        written = bool(trainer._logger_connector.should_update_logs)
        if written or isinstance(trainer.progress_bar_callback, TQDMProgressBar):
            self.log("train/loss", logs["loss"], prog_bar=True, batch_size=batch_size)
        if written:
            self.log_dict({f"train/{key}": logs[key] for key in _LOGGED if key in logs},
                          batch_size=batch_size)

    def on_train_epoch_end(self) -> None:
        # (the per-epoch list is emptied at the epoch's end, so a mid-epoch resume keeps it)
        if self._epoch_loss:
            self.train_loss.append(float(sum(self._epoch_loss) / len(self._epoch_loss)))
        self._epoch_loss = []

    def configure_optimizers(self) -> Any:
        t = self.config.train
        head = list(self.model.head.parameters())
        head_ids = {id(p) for p in head}
        body = [p for p in self.model.parameters() if id(p) not in head_ids]
        optimizer = torch.optim.Adam(
            [{"params": body, "lr": t.lr, "name": "backbone"},
             {"params": head, "lr": t.lr_head, "name": "head"}],
            betas=tuple(t.betas), weight_decay=t.weight_decay,
        )
        if t.lr_schedule == "cosine":
            total = self.total_steps

            def factor(step: int) -> float:
                return cosine_factor(step, total)
        else:

            def factor(step: int) -> float:
                return lr_factor(step, t.lr_decay, t.lr_decay_first, t.lr_decay_every)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # -- validation ---------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_pred, self._val_true = [], []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, y = batch[0], batch[1]
        self._val_pred.append(self(images).detach().float())
        self._val_true.append(y.detach().float())

    def on_validation_epoch_end(self) -> None:
        world = self.trainer.world_size
        if not self._val_pred and world <= 1:
            return
        empty = torch.zeros(0, 2, device=self.device)
        pred = torch.cat(self._val_pred) if self._val_pred else empty
        true = torch.cat(self._val_true) if self._val_true else empty
        # global metrics: every process's shard, reassembled in the original order
        pred = gather_shards(pred, world, self.all_gather)
        true = gather_shards(true, world, self.all_gather)
        self._val_pred, self._val_true = [], []
        if len(pred) == 0:
            return
        if self.trainer.sanity_checking:
            return
        if not (bool(torch.isfinite(pred).all()) and bool(torch.isfinite(true).all())):
            raise ElimError(
                f"validation at epoch {self.current_epoch}: the model's predictions (or labels) "
                "are not finite; training diverged — lower the learning rate or set --grad-clip"
            )
        metrics = va_metrics(pred.cpu(), true.cpu())
        self.val_history.append({"epoch": int(self.current_epoch), "step": int(self.global_step),
                                 **metrics})
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, sync_dist=False)
        self.log("val_ccc", metrics["ccc_mean"], prog_bar=True, logger=False)

    # -- checkpoints (``elim train --resume``) ------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what Lightning does not save itself (all of it ``weights_only``-loadable)."""
        world = int(self.trainer.world_size)
        checkpoint["elim"] = {
            "config": self.config.to_dict(),
            "world_size": world,
            "generators": gather_objects(self.generators.state_dict(), world),  # per process
            "train_loss": list(self.train_loss),
            "epoch_loss": list(self._epoch_loss),
            "val_history": list(self.val_history),
            "matching_seconds": self.matching_seconds,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("elim")
        if not isinstance(extra, dict):
            raise CheckpointError("not a checkpoint written by elim train (no 'elim' section)")
        world = self.trainer.world_size if self._trainer is not None else 1
        if int(extra.get("world_size", 1)) != world:
            raise CheckpointError(
                f"the checkpoint was written by {extra.get('world_size')} process(es); resume "
                f"with the same number (--devices {extra.get('world_size')}), not {world}"
            )
        self.generators.load_state_dict(extra["generators"][self.generators.rank])
        self.train_loss = [float(v) for v in extra["train_loss"]]
        self._epoch_loss = [float(v) for v in extra["epoch_loss"]]
        self.val_history = list(extra["val_history"])
        self.matching_seconds = float(extra["matching_seconds"])
