"""``fit``: train one model with Lightning, pick the best epoch, test it, write the run directory.

``fit`` is wiring, Lightning's own split: configuration → faces and splits → initial model →
:class:`~elim.training.datamodule.FaceDataModule` (loaders) +
:class:`~elim.training.module.ElimModule` (the step, losses, validation metrics, optimiser) +
callbacks (:class:`~elim.training.guard.NonFiniteGuard`,
:class:`~elim.training.best.BestWeights`, :class:`~elim.training.rank_log.RankLog`, Lightning's
``ModelCheckpoint`` keeping the best epoch by ``val/ccc_mean`` in ``best.ckpt`` and
:class:`~elim.training.checkpoint.ResumeCheckpoint` keeping ``last.ckpt``) + loggers (CSV, plus
TensorBoard when it is installed) → ``Trainer`` (per-iteration LR scheduling, optional gradient
clipping, precision/accelerator switches, multi-process DDP via ``train.strategy`` /
``train.devices``, a wall-clock cap) → ``trainer.fit`` → the best epoch's weights evaluated on
the validation and test parts with :func:`elim.evaluation.infer` (the function ``elim evaluate``
uses, so a saved run reproduces its numbers exactly) → :func:`elim.runs.save_run`.
:func:`resume` continues an interrupted run from ``last.ckpt`` exactly. The run directory is
claimed and locked by process 0 before anything is written, and a full disk or Ctrl-C ends the
fit with one line (:mod:`elim.training.run_dir`); progress is Lightning's bar on a terminal and
plain lines otherwise (:mod:`elim.training.progress`).

The many fits of a study (cross-validation, the analyses) pass ``checkpoints=False`` (no
checkpoint files) and ``quiet=True`` (no progress bar, model summary, Lightning info lines or
TensorBoard files: only the CSV log, when ``out_dir`` is given).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elim.config import Config, config_from_dict, preprocess_for
from elim.data.cache import FaceCache
from elim.data.face_contract import contract_of_cache
from elim.data.splits import Splits, make_splits
from elim.errors import CheckpointError, ElimError
from elim.evaluation import infer
from elim.fileio import write_json
from elim.matching import ReferenceBank, reference_bank
from elim.metrics import va_metrics
from elim.runs import (
    LOGS,
    SPLITS,
    WEIGHTS,
    load_training_checkpoint,
    resume_checkpoint_path,
    run_config,
    save_run,
)
from elim.runs.layout import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    CSV_LOGS,
    REFERENCE_BANK,
    TENSORBOARD_LOGS,
)
from elim.training.best import BestWeights
from elim.training.checkpoint import ResumeCheckpoint, SafeCheckpointIO, requeue_slurm_job
from elim.training.data import open_cache
from elim.training.datamodule import FaceDataModule
from elim.training.guard import NonFiniteGuard
from elim.training.module import ElimModule
from elim.training.progress import EpochLines, interactive
from elim.training.rank_log import RankLog
from elim.training.run_dir import RunDir, writing_run

__all__ = ["FitResult", "fit", "resume", "training_bank"]

_INIT_LOCK = threading.Lock()
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (best epoch), its metrics and where it went."""

    model: torch.nn.Module
    config: dict[str, Any]
    metrics: dict[str, Any]
    run_dir: Path | None
    splits: Splits
    train_loss: list[float] = field(default_factory=list)
    val_history: list[dict[str, float]] = field(default_factory=list)
    global_rank: int = 0  # processes other than 0 of a DDP run neither evaluate nor save


@contextmanager
def _quiet_lightning(quiet: bool):
    """Silence Lightning's info lines and dataloader hints (always the latter)."""
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*Total length of `DataLoader` across ranks.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*litlogger.*")
        warnings.filterwarnings("ignore", message=".*The number of training batches.*")
        # mid-epoch resume is handled: the sampler position is restored from the checkpoint
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not")
        # skipped (non-finite) steps are reported by elim.training.guard
        warnings.filterwarnings("ignore", message=".*`training_step` returned `None`.*")
        # validation metrics are computed on predictions gathered from every process already
        warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed.*")
        if quiet:
            for name in _LIGHTNING_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _loggers(log_dir: Path | None, with_tensorboard: bool, resume_step: int | None = None
             ) -> list[Any] | bool:
    if log_dir is None:
        return False
    from elim.training.logs import ResumableCSVLogger

    loggers: list[Any] = [ResumableCSVLogger(str(log_dir), name="", version=CSV_LOGS,
                                             resume_step=resume_step)]
    if with_tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            pass
        else:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(str(log_dir), name="", version=TENSORBOARD_LOGS))
    return loggers


def _eval_device(config: Config) -> torch.device:
    acc = config.train.accelerator
    if acc in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _checkpoint_step(ckpt: str | Path | None, run_dir: Path | None) -> int | None:
    """The global step a resume continues from (None for a fresh run)."""
    if ckpt is None or run_dir is None:
        return None
    return int(load_training_checkpoint(ckpt, run_dir)["global_step"])


def _initial_model(config: Config) -> torch.nn.Module:
    """The model with its initial weights drawn from ``config.seed``."""
    from elim.models import build_model

    with _INIT_LOCK:  # fits in threads share torch's global RNG: draw the initial weights alone
        torch.manual_seed(int(config.seed))
        return build_model(config.model.to_model_dict())


def _file_callbacks(config: Config, run_dir: Path | None, checkpoints: bool, has_val: bool
                    ) -> list[Any]:
    """The callbacks writing files: rank log (with a run dir), best.ckpt and last.ckpt (with
    ``checkpoints``)."""
    callbacks: list[Any] = []
    if run_dir is not None:
        callbacks.append(RankLog(run_dir))
    if checkpoints:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(
            dirpath=str(run_dir / LOGS / CHECKPOINTS), filename=BEST_CHECKPOINT,
            monitor="val/ccc_mean" if has_val else None, mode="max", save_top_k=1,
            save_last=False, enable_version_counter=False,
        ))
        in_main_thread = threading.current_thread() is threading.main_thread()
        callbacks.append(ResumeCheckpoint(
            resume_checkpoint_path(run_dir), config.train.checkpoint_every,
            stop_signal=signal.SIGUSR1 if in_main_thread else None,
            on_stop=requeue_slurm_job if _on_slurm() else None,
        ))
    return callbacks


def _on_slurm() -> bool:
    """Inside a SLURM job that Lightning treats as one (``SLURMEnvironment.detect``)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def _plugins(run_dir: Path | None, checkpoints: bool) -> list[Any] | None:
    """Safe checkpoint I/O (with checkpoints); under SLURM, Lightning's ``SLURMEnvironment``
    without its own requeue handler (its mid-step ``hpc_ckpt`` could not be resumed exactly:
    :class:`~elim.training.checkpoint.ResumeCheckpoint` writes ``last.ckpt`` and requeues)."""
    plugins: list[Any] = [SafeCheckpointIO(run_dir)] if checkpoints else []
    if _on_slurm():
        from lightning.fabric.plugins.environments import SLURMEnvironment

        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins or None


def fit(
    config: Config,
    out_dir: str | Path | None = None,
    *,
    cache: FaceCache | None = None,
    splits: Splits | None = None,
    checkpoints: bool = True,
    quiet: bool = False,
    save: bool = True,
    resume_from: str | Path | None = None,
    overwrite: bool = False,
) -> FitResult:
    """Train ``config`` and evaluate its best epoch on the validation and test parts.

    Parameters
    ----------
    config
        What to train (validated here).
    out_dir
        The run directory (None: nothing written).
    cache, splits
        The faces and their parts; default: the dataset of ``config.data`` and its split rule
        (:func:`elim.data.splits.make_splits`).
    checkpoints
        Write ``logs/checkpoints/best.ckpt`` and the resume checkpoint ``last.ckpt`` (with
        ``out_dir``); ``False`` for the fits of a study, which are never resumed.
    quiet
        No progress bar, model summary, Lightning info lines or TensorBoard files (CSV logs
        only).
    save
        With ``out_dir``, write ``model.safetensors``, ``config.json``, ``metrics.json`` and
        ``splits.json`` beside ``logs/``.
    resume_from
        A checkpoint of this run's ``logs/`` to continue from (see :func:`resume`).
    overwrite
        A fresh run may replace a finished or resumable run in ``out_dir`` (refused otherwise;
        a folder holding other files is always refused: :func:`elim.runs.claim_run_dir`).

    Returns
    -------
    FitResult
        Under DDP every process runs this function; only process 0 evaluates and saves (the
        others return a result with empty metrics and ``global_rank`` > 0).

    Raises
    ------
    ElimError
        A folder that may not be written, a locked one, a full disk (one line each).
    elim.training.run_dir.TrainingInterrupted
        Ctrl-C; it says whether the run can be resumed.
    """
    with writing_run(out_dir, resume=resume_from is not None, overwrite=overwrite) as run:
        return _fit(config, run, cache=cache, splits=splits, checkpoints=checkpoints,
                    quiet=quiet, save=save, resume_from=resume_from)


def _fit(
    config: Config,
    run: RunDir,
    *,
    cache: FaceCache | None,
    splits: Splits | None,
    checkpoints: bool,
    quiet: bool,
    save: bool,
    resume_from: str | Path | None,
) -> FitResult:
    """:func:`fit` inside its run directory's context ``run``."""
    import lightning as L

    config.validate()
    if config.train.threads:
        torch.set_num_threads(int(config.train.threads))
    started, cpu_started = time.perf_counter(), time.process_time()
    progress = config.train.progress and not quiet
    bar = progress and interactive()  # else plain lines (EpochLines), no \r redraws in files
    run_dir = run.path
    log_dir = run_dir / LOGS if run_dir is not None else None
    checkpoints = checkpoints and run_dir is not None
    with _INIT_LOCK:  # not while a fit in another thread draws its initial weights
        L.seed_everything(int(config.seed), workers=True, verbose=False)
    if cache is None:
        cache = open_cache(config, progress=bar)
    if splits is None:
        splits = make_splits(cache.table, config.data)
    if len(splits.train) == 0:
        raise ElimError("the training split is empty; check data.split_mode / data.fractions")
    # face contract (issue 12): what the training faces looked like, replayed by predict;
    # measured (a detector on sampled crops) only for a run that is saved. It draws no random
    # numbers (evenly spaced rows, a deterministic detector), so skipping it leaves training
    # as it is. With data.align it is cheap (no detector) and checks the cache: always.
    saved = run_dir is not None and save
    face = (contract_of_cache(cache, splits.train, config.data.margin, config.data.align)
            if saved or config.data.align else None)
    preprocess = preprocess_for(config)
    model = _initial_model(config)
    data = FaceDataModule(config, cache, splits)
    has_val = len(splits.val) > 0
    guard, best = NonFiniteGuard(config.train.max_bad_steps), BestWeights("ccc_mean")
    callbacks = [guard, best, *_file_callbacks(config, run_dir, checkpoints, has_val)]
    if progress and not bar:
        callbacks.append(EpochLines())
    trainer_kwargs: dict[str, Any] = {
        "max_epochs": config.train.epochs,
        "max_steps": int(config.train.max_steps) if config.train.max_steps else -1,
        "accelerator": config.train.accelerator,
        "devices": config.train.devices,
        "num_nodes": config.train.num_nodes,
        "strategy": config.train.strategy,
        "precision": config.train.precision,
        "gradient_clip_val": config.train.grad_clip,
        "logger": _loggers(log_dir, not quiet, _checkpoint_step(resume_from, run_dir)),
        "callbacks": callbacks,
        "plugins": _plugins(run_dir, checkpoints),
        "enable_checkpointing": checkpoints,
        "enable_progress_bar": progress,
        "enable_model_summary": progress,
        "num_sanity_val_steps": 0,
        "check_val_every_n_epoch": max(1, config.train.val_every),
        "limit_val_batches": 1.0 if has_val else 0,
        "use_distributed_sampler": False,
        "default_root_dir": str(run_dir) if run_dir is not None else None,
    }
    if config.train.max_minutes:
        trainer_kwargs["max_time"] = timedelta(minutes=float(config.train.max_minutes))
    with _quiet_lightning(quiet or not progress):
        try:
            trainer = L.Trainer(**trainer_kwargs)
        except Exception as err:  # misconfigured accelerator / precision / devices
            if type(err).__name__ == "MisconfigurationException":
                raise ElimError(f"cannot set up training: {err}") from err
            raise
        rank, world = int(trainer.global_rank), int(trainer.world_size)
        run.claim(rank)  # process 0 locks the folder before anything is written
        steps_per_epoch = data.batches_per_epoch(world)
        trainer.log_every_n_steps = max(1, min(50, steps_per_epoch))
        total = steps_per_epoch * config.train.epochs
        if config.train.max_steps:
            total = min(total, int(config.train.max_steps))
        from elim.data.transforms import FaceAugment

        augment = FaceAugment.from_config(config.augment, preprocess.mean, preprocess.std)
        module = ElimModule(model, config, preprocess, augment=augment, total_steps=total)
        trainer.fit(module, datamodule=data,
                    ckpt_path=str(resume_from) if resume_from is not None else None)

    model.to(memory_format=torch.contiguous_format)
    if best.state is not None:
        model.load_state_dict(best.state)
    cfg_json = run_config(config, splits, face=face)
    if rank != 0:
        return FitResult(model.cpu().eval(), cfg_json, {}, None, splits, list(module.train_loss),
                         list(module.val_history), global_rank=rank)
    device = _eval_device(config)
    model.to(device)
    metrics: dict[str, Any] = {}
    for part in ("val", "test"):
        idx = getattr(splits, part)
        if len(idx):
            out = infer(model, preprocess, cache, idx, config.data.eval_batch_size, device)
            metrics[part] = va_metrics(out.predictions, out.labels)
    model.cpu().eval()
    metrics.update({
        "method": config.train.method,
        "best_epoch": best.epoch,
        "epochs_run": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "processes": world,
        "seconds": round(time.perf_counter() - started, 3),
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "matching_seconds": round(module.matching_seconds, 3),
        "sizes": splits.sizes(),
        "split_rule": splits.rule,
        "train_loss": [round(v, 6) for v in module.train_loss],
        "skipped_steps": guard.summary(),
        "data_skipped": cache.skipped.to_dict(),
    })
    if saved:
        save_run(run_dir, model, cfg_json, metrics)
        write_json(run_dir / SPLITS, splits.groups(cache.table))
        # test-time identity normalisation (elim.inference.identity_norm)
        training_bank(model, config, cache, splits.train).save(run_dir / REFERENCE_BANK)
    return FitResult(model, cfg_json, metrics, run_dir if save else None, splits,
                     list(module.train_loss), list(module.val_history))


def training_bank(model: torch.nn.Module, config: Config, cache: FaceCache, train: np.ndarray
                  ) -> ReferenceBank:
    """The reference bank of a fitted ``model`` (on the CPU): ``config.matching.k`` of the
    training faces (rows ``train`` of ``cache``) per identity, drawn with ``config.seed``
    (:func:`elim.matching.reference_bank`), their features inferred on the CPU."""
    preprocess = preprocess_for(config)
    table = cache.table
    return reference_bank(
        table["identity"].to_numpy()[train], table[["valence", "arousal"]].to_numpy()[train],
        lambda rows: infer(model, preprocess, cache, train[rows]).features,
        k=config.matching.k, seed=config.seed)


def resume(run_dir: str | Path, *, progress: bool = True, threads: int | None = None
           ) -> FitResult:
    """Continue the interrupted run in ``run_dir`` from ``logs/checkpoints/last.ckpt``.

    The configuration comes from the checkpoint (read with ``weights_only``); model, optimiser,
    LR schedule, sampler position, generators and global RNGs continue where they were, so the
    finished run equals an uninterrupted one bit for bit (same devices and thread count).
    """
    run_dir = Path(run_dir)
    ckpt = resume_checkpoint_path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: not a directory; pass the --out folder of the run")
    if not ckpt.is_file():
        raise CheckpointError(
            f"{ckpt}: not found; only runs started by `elim train --out {run_dir}` (with "
            "checkpoints) can be resumed"
        )
    if (run_dir / WEIGHTS).is_file():
        raise ElimError(f"{run_dir}: this run has finished ({WEIGHTS} exists); nothing to resume")
    state = load_training_checkpoint(ckpt, run_dir)
    extra = state.get("elim")
    values = extra.get("config") if isinstance(extra, dict) else None
    if not isinstance(values, dict):
        raise CheckpointError(f"{ckpt}: not written by `elim train` (no configuration inside)")
    config = config_from_dict(values, source=str(ckpt))
    config.train.progress = progress
    if threads:
        config.train.threads = int(threads)
    del state
    return fit(config, run_dir, resume_from=ckpt)
