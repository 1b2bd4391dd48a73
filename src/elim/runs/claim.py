"""Taking a folder for a training run: what may be written where, decided before anything is.

:func:`claim_run_dir` locks the folder (:class:`elim.runs.lock.RunLock`) and then, for a fresh
run, looks at what the folder holds:

* nothing (or a new path) → used;
* any file that no training run writes (a "foreign" folder, or a run folder someone added
  files to) → refused, also with ``overwrite``: elim never mixes its files into, or deletes,
  what it did not write;
* a finished run (``model.safetensors``) → refused unless ``overwrite``;
* an unfinished run that can be resumed (``logs/checkpoints/last.ckpt``) → refused unless
  ``overwrite`` (the message gives the ``--resume`` command);
* what a run stopped before its first checkpoint left (logs, no weights, no checkpoint) →
  replaced: nothing there can be resumed or loaded.

With ``overwrite`` the previous run's entries (:data:`elim.runs.layout.RUN_ENTRIES`) are
removed before the new run starts, so no file of the old run survives next to the new one.
A resumed run (``resume=True``) only takes the lock.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from elim.errors import ElimError
from elim.runs.layout import (
    LOCK,
    LOG_ENTRIES,
    LOGS,
    RUN_ENTRIES,
    WEIGHTS,
    resume_checkpoint_path,
)
from elim.runs.lock import RunLock

__all__ = ["claim_run_dir"]


def _ours(name: str) -> bool:
    """A top-level name a training run writes (its files, the lock, atomic-write temporaries)."""
    return name in RUN_ENTRIES or name == LOCK or (name.startswith(".") and name.endswith(".tmp"))


def _foreign(run_dir: Path, names: list[str]) -> list[str]:
    """The entries of ``run_dir`` that no training run writes."""
    out = [n for n in names if not _ours(n)]
    logs = run_dir / LOGS
    if logs.is_dir() and not logs.is_symlink():
        out += [f"{LOGS}/{p.name}" for p in sorted(logs.iterdir()) if p.name not in LOG_ENTRIES]
    elif logs.exists() or logs.is_symlink():
        out.append(LOGS)
    return out


def _check_fresh(run_dir: Path, overwrite: bool) -> None:
    names = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
    if not names:
        return
    foreign = _foreign(run_dir, names)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise ElimError(f"{run_dir}: holds files that no elim run writes ({shown}); pass a new "
                        "or empty folder as --out")
    if not overwrite:
        if (run_dir / WEIGHTS).exists():
            raise ElimError(f"{run_dir}: holds a finished run ({WEIGHTS}); pass --overwrite to "
                            "replace it, or another --out")
        if resume_checkpoint_path(run_dir).exists():
            raise ElimError(
                f"{run_dir}: holds the checkpoint of an unfinished run; continue it with "
                f"`elim train --resume {run_dir}`, pass --overwrite to start afresh, or pass "
                "another --out"
            )
    for name in names:  # only run entries are left (checked above)
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def claim_run_dir(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False
                  ) -> RunLock:
    """Lock ``run_dir`` for writing and, unless ``resume``, make it ready for a fresh run.

    Parameters
    ----------
    run_dir
        The run directory (created when missing).
    resume
        The run continues from its checkpoint: only the lock is taken.
    overwrite
        Replace a finished or resumable run in ``run_dir`` (see the module docstring).

    Returns
    -------
    RunLock
        The held lock; release it when the run is written (or has failed).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ElimError(f"{run_dir}: exists and is not a folder; pass a folder as --out")
    lock = RunLock(run_dir).acquire()
    try:
        if not resume:
            _check_fresh(run_dir, overwrite)
    except BaseException:
        lock.release()
        raise
    return lock
