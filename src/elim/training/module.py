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
the metrics are computed, so CCC is always global and never averaged over batches.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import lightning as L
import torch
from torch import Tensor

from elim.config import Config
from elim.losses import main_loss, va_loss
from elim.metrics import va_metrics
from elim.training.schedule import cosine_factor, lr_factor, warmup_weight

__all__ = ["ElimModule"]


class ElimModule(L.LightningModule):
    """Trains an :class:`elim.models.ElimModel` as configured by :class:`elim.config.Config`.

    ``preprocess`` maps uint8 NHWC batches to normalised float NCHW; ``augment`` (optional)
    randomises train batches with a ``torch.Generator``; ``total_steps`` sizes the L_main warm-up.
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
        self.augment = augment if config.data.augment else None
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = round(config.train.warmup * self.total_steps)
        self.matching = None
        if config.train.method == "elim":
            from elim.matching import IdentityMatching

            m = config.matching
            self.matching = IdentityMatching(
                n_identities=m.n_identities, k=m.k, eps=m.eps, max_iter=m.max_iter, tol=m.tol,
                weights=m.weights,
                sampling=m.sampling, solver=m.solver, grad=m.grad, norm_eps=m.norm_eps,
            )
        self._generators: dict[str, torch.Generator] = {}
        self._val_pred: list[Tensor] = []
        self._val_true: list[Tensor] = []
        self.val_history: list[dict[str, float]] = []
        self.train_loss: list[float] = []  # mean training loss of each epoch
        self._epoch_loss: list[float] = []
        self.best_state: dict[str, Tensor] | None = None  # weights of the best val epoch
        self.best_epoch: int | None = None
        self.best_score = float("-inf")
        self.train_sampler: Any = None  # IdentityBatchSampler, set by fit (epoch control)
        self.matching_seconds = 0.0

    # -- randomness ---------------------------------------------------------------------------
    def generator(self, name: str, device: torch.device) -> torch.Generator:
        """A named generator on ``device`` seeded from the run seed (augment, matching)."""
        key = f"{name}@{device}"
        gen = self._generators.get(key)
        if gen is None:
            offset = {"augment": 1, "matching": 2}.get(name, 3)
            gen = torch.Generator(device=device)
            gen.manual_seed(int(self.config.seed) * 1000 + offset)
            self._generators[key] = gen
        return gen

    # -- forward / losses ---------------------------------------------------------------------
    def _input(self, images: Tensor) -> Tensor:
        x = self.preprocess(images)
        if self.config.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """Inference: uint8 NHWC images → (B, 2) valence, arousal."""
        return self.model(self._input(images))

    def on_fit_start(self) -> None:
        if self.config.train.channels_last:
            self.model.to(memory_format=torch.channels_last)

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
            x = self.augment(x, self.generator("augment", x.device))
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
                out = self.matching(
                    z.float(), identity.long(), y, generator=self.generator("matching", z.device)
                )
            self.matching_seconds += time.perf_counter() - start
            if not out.empty:
                l_main = main_loss(self.model.head(out.z_hat).float(), y[out.index])
                loss = loss + weight * l_main
                logs["loss_main"] = l_main.detach()
        logs["loss"] = loss.detach()
        return loss, logs

    # -- Lightning hooks ----------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_loss = []
        if self.train_sampler is not None and hasattr(self.train_sampler, "set_epoch"):
            self.train_sampler.set_epoch(int(self.current_epoch))

    def on_train_epoch_end(self) -> None:
        if self._epoch_loss:
            self.train_loss.append(float(sum(self._epoch_loss) / len(self._epoch_loss)))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, logs = self.compute_loss(batch, int(self.global_step))
        self._epoch_loss.append(float(logs["loss"]))
        bs = int(batch[1].shape[0])
        self.log("train/loss", logs["loss"], prog_bar=True, batch_size=bs)
        for key in ("loss_va", "loss_main", "mse", "pcc_loss", "ccc_loss", "w_main"):
            if key in logs:
                self.log(f"train/{key}", logs[key], batch_size=bs)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_pred, self._val_true = [], []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, y = batch[0], batch[1]
        self._val_pred.append(self(images).detach().float())
        self._val_true.append(y.detach().float())

    def on_validation_epoch_end(self) -> None:
        if not self._val_pred:
            return
        pred, true = torch.cat(self._val_pred), torch.cat(self._val_true)
        if self.trainer.world_size > 1:  # global metrics: gather every rank's predictions
            pred = self.all_gather(pred).reshape(-1, 2)
            true = self.all_gather(true).reshape(-1, 2)
        self._val_pred, self._val_true = [], []
        if self.trainer.sanity_checking:
            return
        metrics = va_metrics(pred.cpu(), true.cpu())
        self.val_history.append({"epoch": int(self.current_epoch), "step": int(self.global_step),
                                 **metrics})
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, sync_dist=False)
        if metrics["ccc_mean"] > self.best_score:
            self.best_score = metrics["ccc_mean"]
            self.best_epoch = int(self.current_epoch)
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
            }
        self.log("val_ccc", metrics["ccc_mean"], prog_bar=True, logger=False)

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

    # -- checkpoints (room for a later ``--resume``) ------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what Lightning does not save itself: config, sampler position, generator states."""
        extra: dict[str, Any] = {
            "config": self.config.to_dict(),
            "generators": {k: g.get_state() for k, g in self._generators.items()},
        }
        loader = getattr(self.trainer, "train_dataloader", None)
        sampler = getattr(loader, "batch_sampler", None)
        if sampler is not None and hasattr(sampler, "state_dict"):
            extra["sampler"] = sampler.state_dict()
        checkpoint["elim"] = extra

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for key, state in checkpoint.get("elim", {}).get("generators", {}).items():
            name, _, device = key.partition("@")
            self.generator(name, torch.device(device)).set_state(state)
