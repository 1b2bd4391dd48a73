"""Every file name of a run directory, in one place.

::

    <run>/model.safetensors          weights (safetensors only, never a pickle)
    <run>/config.json                model, preprocess (the face contract), data, matching, train
    <run>/metrics.json               final metrics and the run's bookkeeping
    <run>/splits.json                group names of the train / val / test parts
    <run>/reference_bank.safetensors k training features per training identity (test-time
                                     identity normalisation, elim.inference.identity_norm)
    <run>/logs/csv/metrics.csv       per-step and per-epoch curves (Lightning CSV logger)
    <run>/logs/ranks/rank-<r>.jsonl  identities drawn by process r, one line per epoch
    <run>/logs/checkpoints/last.ckpt resume checkpoint (``elim train --resume``)
    <run>/logs/checkpoints/best.ckpt best validation epoch (Lightning's ModelCheckpoint)
    <run>/.lock                      held while a process writes the run (elim.runs.lock)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINTS",
    "CHECKPOINT_SUFFIX",
    "CONFIG",
    "CSV_LOGS",
    "LAST_CHECKPOINT",
    "LOCK",
    "LOGS",
    "LOG_ENTRIES",
    "METRICS",
    "RANK_LOGS",
    "REFERENCE_BANK",
    "RUN_ENTRIES",
    "SPLITS",
    "TENSORBOARD_LOGS",
    "WEIGHTS",
    "rank_log_path",
    "resume_checkpoint_path",
]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
SPLITS = "splits.json"
REFERENCE_BANK = "reference_bank.safetensors"
LOGS = "logs"
CSV_LOGS = "csv"  # under logs/
RANK_LOGS = "ranks"  # under logs/
CHECKPOINTS = "checkpoints"  # under logs/
TENSORBOARD_LOGS = "tensorboard"  # under logs/, when tensorboard is installed
CHECKPOINT_SUFFIX = ".ckpt"
LAST_CHECKPOINT = "last" + CHECKPOINT_SUFFIX
BEST_CHECKPOINT = "best"  # Lightning's ModelCheckpoint adds the suffix
LOCK = ".lock"
#: every top-level entry a training run writes besides its lock (what ``--overwrite`` replaces)
RUN_ENTRIES = (WEIGHTS, CONFIG, METRICS, SPLITS, REFERENCE_BANK, LOGS)
LOG_ENTRIES = (CSV_LOGS, RANK_LOGS, CHECKPOINTS, TENSORBOARD_LOGS)  # what a run writes in logs/


def resume_checkpoint_path(run_dir: str | Path) -> Path:
    """The checkpoint ``elim train --resume RUN_DIR`` continues from."""
    return Path(run_dir) / LOGS / CHECKPOINTS / LAST_CHECKPOINT


def rank_log_path(run_dir: str | Path, rank: int) -> Path:
    """The identity log of process ``rank``."""
    return Path(run_dir) / LOGS / RANK_LOGS / f"rank-{int(rank)}.jsonl"
