"""The run directory of one fit: claimed and locked before anything is written, its failures
reported as one line.

:func:`writing_run` is the context :func:`elim.training.fit` trains in; it yields a
:class:`RunDir`. Every process calls :meth:`RunDir.claim` once it knows its rank (after the
``Trainer`` is built, before anything is written); on process 0
:func:`elim.runs.claim_run_dir` locks the folder and refuses a finished run, a resumable one
or a folder of other files (see there). The other processes of a multi-process run share
process 0's lock and claim nothing. On leaving the context the lock is released and

* a full disk (``OSError`` ENOSPC / EDQUOT, from a checkpoint, a log or the model) becomes an
  :class:`~elim.errors.ElimError` naming the folder and saying how to continue: checkpoints
  and the model are written atomically, so what is on disk is the previous complete version;
* Ctrl-C, which Lightning turns into ``SystemExit(1)``, becomes :class:`TrainingInterrupted`
  (a ``KeyboardInterrupt``) that says whether the run can be resumed.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elim.errors import ElimError
from elim.runs import RunLock, claim_run_dir, resume_checkpoint_path

__all__ = ["DISK_FULL", "RunDir", "TrainingInterrupted", "disk_full", "writing_run"]

#: errno values of a full disk or an exhausted quota
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(err: BaseException) -> bool:
    """True when ``err`` (or an exception it was raised from) reports a full disk or quota."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a fit; ``resumable`` when ``run_dir`` holds a checkpoint to continue from.

    Parameters
    ----------
    run_dir
        The run directory (None: the fit wrote none).
    rank
        The process that was interrupted (only process 0 reports).
    """

    def __init__(self, run_dir: Path | None, rank: int = 0) -> None:
        self.run_dir = run_dir
        self.rank = int(rank)
        self.resumable = run_dir is not None and resume_checkpoint_path(run_dir).is_file()
        super().__init__(self.hint())

    def hint(self) -> str:
        """What to tell the user: the ``--resume`` command when there is a checkpoint."""
        if self.resumable:
            return f"interrupted; continue with `elim train --resume {self.run_dir}`"
        return "interrupted (no checkpoint was written yet, nothing to resume)"


class RunDir:
    """The run directory one fit writes (``path`` None: a fit that writes nothing).

    Parameters
    ----------
    path
        The run directory.
    resume
        The fit continues from the folder's checkpoint.
    overwrite
        A fresh fit may replace a finished or resumable run there.
    """

    def __init__(self, path: str | Path | None, *, resume: bool = False,
                 overwrite: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.resume = resume
        self.overwrite = overwrite
        self.rank = 0
        self._lock: RunLock | None = None

    def claim(self, rank: int) -> None:
        """Called by every process once its rank is known: process 0 claims and locks the
        folder (:func:`elim.runs.claim_run_dir`), the others share its lock."""
        self.rank = int(rank)
        if self.path is not None and self.rank == 0 and self._lock is None:
            self._lock = claim_run_dir(self.path, resume=self.resume, overwrite=self.overwrite)

    def release(self) -> None:
        """Let go of the lock (no-op when this process holds none)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def disk_full_message(self, err: BaseException) -> str:
        """The one line reporting a full disk while this run was written."""
        where = self.path if self.path is not None else "the output folder"
        written = f" while writing {err.filename}" if getattr(err, "filename", None) else ""
        then = (f"free space and continue with `elim train --resume {self.path}`"
                if self.path is not None and resume_checkpoint_path(self.path).is_file()
                else "free space and start the run again")
        return (f"{where}: no space left on device{written}; checkpoints and the model are "
                f"written atomically, so nothing half-written was kept: {then}")


@contextmanager
def writing_run(path: str | Path | None, *, resume: bool = False, overwrite: bool = False
                ) -> Iterator[RunDir]:
    """The context of a fit writing ``path`` (see the module docstring): yields its
    :class:`RunDir`; on leaving, the lock is released and a full disk or Ctrl-C is reported."""
    run = RunDir(path, resume=resume, overwrite=overwrite)
    try:
        yield run
    except SystemExit as err:
        if not isinstance(err.__context__, KeyboardInterrupt):
            raise
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores it
        raise TrainingInterrupted(run.path, run.rank) from None
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        raise TrainingInterrupted(run.path, run.rank) from None
    except ElimError:
        raise
    except Exception as err:
        if disk_full(err):
            raise ElimError(run.disk_full_message(err)) from err
        raise
    finally:
        run.release()
