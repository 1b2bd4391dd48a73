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
(:mod:`elim.training.distributed`).

Faults (docs/scaling.md): a step whose loss (L_va or L_main) or gradient is not finite is skipped
on every process and counted with its epoch, batch and identities (:mod:`elim.training.guard`).
Checkpoints carry what a bit-exact resume needs beyond Lightning's own state: the sampler position
in batches *consumed*, the augmentation / matching generators and the global RNGs of every
process, the per-epoch bookkeeping and the best-epoch weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from elim.config import Config
from elim.errors import CheckpointError, ElimError
from elim.losses import main_loss, va_loss
from elim.metrics import va_metrics
from elim.training.checkpoint import capture_rng, restore_rng
from elim.training.distributed import gather_shards
from elim.training.guard import NonFiniteGuard
from elim.training.schedule import cosine_factor, lr_factor, warmup_weight

__all__ = ["ElimModule"]

log = logging.getLogger("elim.training")
_RANK_SEED_STRIDE = 1_000_003  # generator seeds of process r: the rank-0 seed + r * stride


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
            self.matching = config.matching.build()
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
        self.guard = NonFiniteGuard(config.train.max_bad_steps)
        self.identity_names: list[str] | None = None  # names of the sampler's identity codes
        self.rank_log_dir: Path | None = None  # where rank-<r>.jsonl go (set by fit)
        self._epoch_ids: set[int] = set()  # identity codes drawn by this process this epoch
        self._pending_rng: dict[str, Any] | None = None  # restored at the first resumed batch

    # -- randomness ---------------------------------------------------------------------------
    def generator(self, name: str, device: torch.device) -> torch.Generator:
        """A named generator on ``device`` seeded from the run seed and the process rank
        (augment, matching); process 0 of a multi-process run draws what a single process does."""
        key = f"{name}@{device}"
        gen = self._generators.get(key)
        if gen is None:
            offset = {"augment": 1, "matching": 2}.get(name, 3)
            gen = torch.Generator(device=device)
            rank = self.global_rank if self._trainer is not None else 0
            gen.manual_seed(int(self.config.seed) * 1000 + offset + rank * _RANK_SEED_STRIDE)
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
        # (the per-epoch lists are emptied at the epoch's end, so a mid-epoch resume keeps them)
        if self.train_sampler is not None and hasattr(self.train_sampler, "set_epoch"):
            self.train_sampler.set_epoch(int(self.current_epoch))

    def on_train_epoch_end(self) -> None:
        if self._epoch_loss:
            self.train_loss.append(float(sum(self._epoch_loss) / len(self._epoch_loss)))
        self._epoch_loss = []
        self._write_rank_log()
        self._epoch_ids = set()

    def _write_rank_log(self) -> None:
        """Append this process's identities of the epoch to ``rank-<r>.jsonl``."""
        if self.rank_log_dir is None:
            return
        names = self.identity_names
        ids = sorted(names[c] if names else str(c) for c in self._epoch_ids)
        record = {"epoch": int(self.current_epoch), "rank": int(self.global_rank),
                  "world_size": int(self.trainer.world_size), "identities": ids}
        self.rank_log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.rank_log_dir / f"rank-{self.global_rank}.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:  # first batch after a resume: continue the RNGs here,
            restore_rng(self._pending_rng)  # after anything Lightning drew while restarting
            self._pending_rng = None

    def _where(self, batch: Any, batch_idx: int) -> str:
        codes = torch.unique(batch[2]).tolist()
        names = [self.identity_names[c] if self.identity_names else str(c) for c in codes]
        shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
        rank = f", process {self.global_rank}" if self.trainer.world_size > 1 else ""
        return (f"epoch {self.current_epoch}, batch {batch_idx}, step {self.global_step}{rank} "
                f"(identities {shown})")

    def _any_process(self, flag: bool) -> bool:
        """``flag`` or-ed over all processes (every process must skip the same steps)."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return flag
        return bool(self.trainer.strategy.reduce_boolean_decision(flag, all=False))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        self._epoch_ids.update(int(c) for c in torch.unique(batch[2]).tolist())
        # BatchNorm statistics move in the forward pass: keep them to undo a skipped step.
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        loss, logs = self.compute_loss(batch, int(self.global_step))
        bad = [name for name, key in (("L_va", "loss_va"), ("L_main", "loss_main"))
               if key in logs and not bool(torch.isfinite(logs[key]))]
        if self._any_process(bool(bad)):
            cause = " and ".join(bad) if bad else "loss on another process"
            log.warning(self.guard.bad(cause, self._where(batch, batch_idx)))
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
            self.log("train/skipped_steps", float(self.guard.skipped), batch_size=1)
            return None  # no backward, no optimiser step
        self._epoch_loss.append(float(logs["loss"]))
        bs = int(batch[1].shape[0])
        self.log("train/loss", logs["loss"], prog_bar=True, batch_size=bs)
        for key in ("loss_va", "loss_main", "mse", "pcc_loss", "ccc_loss", "w_main"):
            if key in logs:
                self.log(f"train/{key}", logs[key], batch_size=bs)
        return loss

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """Drop the update when a gradient is not finite (identical on every DDP process, since
        gradients are already averaged); with 16-mixed the gradient scaler does this itself."""
        params = [p for p in self.parameters() if p.grad is not None]
        if not params:  # the step's loss was skipped already
            return
        if str(self.trainer.precision).startswith("16"):
            self.guard.good()
            return
        if not bool(torch.stack([torch.isfinite(p.grad).all() for p in params]).all()):
            for p in params:
                p.grad = None  # Adam leaves parameters without a gradient untouched
            where = f"epoch {self.current_epoch}, step {self.global_step}"
            log.warning(self.guard.bad("gradient", where))
            return
        self.guard.good()

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

    # -- checkpoints (``elim train --resume``) ------------------------------------------------
    def _process_state(self) -> dict[str, Any]:
        """What differs between processes: generators, global RNGs, identities of the epoch."""
        return {
            "generators": {k: g.get_state() for k, g in self._generators.items()},
            "rng": capture_rng(),
            "epoch_ids": sorted(self._epoch_ids),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what Lightning does not save itself (all of it ``weights_only``-loadable)."""
        world = self.trainer.world_size
        states = [self._process_state()]
        if world > 1:  # every process takes part in saving: collect their states on all
            states = [None] * world
            torch.distributed.all_gather_object(states, self._process_state())
        extra: dict[str, Any] = {
            "config": self.config.to_dict(),
            "world_size": int(world),
            "processes": states,
            "train_loss": list(self.train_loss),
            "epoch_loss": list(self._epoch_loss),
            "val_history": list(self.val_history),
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "matching_seconds": self.matching_seconds,
            "guard": self.guard.state_dict(),
        }
        if self.train_sampler is not None and hasattr(self.train_sampler, "state_dict"):
            sampler = self.train_sampler.state_dict()
            # Lightning fetches a batch ahead: record the batches training has *consumed*.
            consumed = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready
            sampler.update(epoch=int(self.current_epoch), position=int(consumed))
            extra["sampler"] = sampler
        checkpoint["elim"] = extra

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
        rank = self.global_rank if self._trainer is not None else 0
        own = extra["processes"][rank]
        for key, state in own["generators"].items():
            name, _, device = key.partition("@")
            self.generator(name, torch.device(device)).set_state(state)
        self._pending_rng = own["rng"]
        self._epoch_ids = {int(c) for c in own["epoch_ids"]}
        self.train_loss = [float(v) for v in extra["train_loss"]]
        self._epoch_loss = [float(v) for v in extra["epoch_loss"]]
        self.val_history = list(extra["val_history"])
        self.best_state = extra["best_state"]
        self.best_epoch = extra["best_epoch"]
        self.best_score = float(extra["best_score"])
        self.matching_seconds = float(extra["matching_seconds"])
        self.guard.load_state_dict(extra["guard"])
        if self.train_sampler is not None and "sampler" in extra:
            self.train_sampler.load_state_dict(extra["sampler"])
