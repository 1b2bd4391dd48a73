"""Run directories and resumable result folders: their files, saving and safe loading.

- :mod:`elim.runs.layout` — every file name of a run directory;
- :mod:`elim.runs.store` — ``save_run`` / ``load_run`` (safetensors + JSON, never a pickle) and
  the safe reading of training checkpoints for ``--resume``;
- :mod:`elim.runs.lock` — ``RunLock``: one writer per run directory (a lock file with the pid;
  the lock of a dead process is stale and taken over);
- :mod:`elim.runs.claim` — ``claim_run_dir``: lock a folder and refuse to mix a fresh run into
  a finished run, a resumable one (unless ``overwrite``) or a folder of other files;
- :mod:`elim.runs.config` — ``run_config``, the one writer of a run's ``config.json``;
- :mod:`elim.runs.results` — ``ResultStore``: one JSON file per finished job of a long study,
  tagged with the settings' fingerprint (``elim cv``, ``elim ablate``, ``elim study``);
- :mod:`elim.runs.provenance` — ``environment()``: the software and machine, recorded next to
  the results of studies and analyses.
"""

from elim.runs.claim import claim_run_dir
from elim.runs.config import default_run_dir, run_config
from elim.runs.layout import (
    CHECKPOINT_SUFFIX,
    CONFIG,
    LOCK,
    LOGS,
    METRICS,
    SPLITS,
    WEIGHTS,
    rank_log_path,
    resume_checkpoint_path,
)
from elim.runs.lock import RunLock, lock_holder
from elim.runs.results import RESULTS, ResultStore, config_settings, fingerprint, result_path
from elim.runs.store import (
    latest_checkpoint,
    load_config,
    load_run,
    load_training_checkpoint,
    read_json,
    save_run,
)

__all__ = [
    "CHECKPOINT_SUFFIX",
    "CONFIG",
    "LOCK",
    "LOGS",
    "METRICS",
    "RESULTS",
    "SPLITS",
    "WEIGHTS",
    "ResultStore",
    "RunLock",
    "claim_run_dir",
    "config_settings",
    "default_run_dir",
    "fingerprint",
    "latest_checkpoint",
    "load_config",
    "load_run",
    "load_training_checkpoint",
    "lock_holder",
    "rank_log_path",
    "read_json",
    "result_path",
    "resume_checkpoint_path",
    "run_config",
    "save_run",
]
