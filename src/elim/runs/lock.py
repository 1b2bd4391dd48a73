"""One writer per run directory: a lock file holding the writer's process id.

``elim train`` (fresh or ``--resume``) holds ``<run>/.lock`` (:data:`elim.runs.layout.LOCK`)
while it writes the run. The file names the holder (``pid``, ``host``, ``started``,
``command``) and is locked with ``flock``, which the kernel releases when the holder dies, so
a lock left behind by a killed process (SIGKILL, a crash, a reboot) is recognised as stale
and taken over, while a live holder makes the second writer stop with a one-line
:class:`~elim.errors.ElimError` naming it. The processes of one multi-process run share the
lock: only process 0 takes it (:func:`elim.training.fit`), the others write only their own
files (rank logs) and start after it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from elim.errors import ElimError
from elim.runs.layout import LOCK

__all__ = ["RunLock", "lock_holder"]


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """What the lock file of ``run_dir`` says about its writer (None: no lock file or unreadable)."""
    try:
        value = json.loads((Path(run_dir) / LOCK).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class RunLock:
    """The lock of one run directory; :meth:`acquire` it before writing, :meth:`release` after.

    Parameters
    ----------
    run_dir
        The run directory (created by :meth:`acquire` when missing).

    Attributes
    ----------
    stale
        After :meth:`acquire`: the holder's record of a lock left behind by a dead process that
        was taken over (None when the lock was free).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise an ElimError naming the live process that holds it."""
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ElimError(self._busy_message()) from None
            try:  # the file may have been removed by its holder's release in between
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.read(fd, 65536)
        if previous.strip():
            try:
                self.stale = json.loads(previous)
            except ValueError:
                self.stale = {"pid": None}
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and let go of the lock (no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def _busy_message(self) -> str:
        holder = lock_holder(self.run_dir) or {}
        who = f"process {holder.get('pid', '?')}"
        if holder.get("host") and holder["host"] != socket.gethostname():
            who += f" on {holder['host']}"
        since = f" since {holder['started']}" if holder.get("started") else ""
        command = f" (`{holder['command']}`)" if holder.get("command") else ""
        return (f"{self.run_dir}: is being written by {who}{since}{command}; wait for it to "
                "finish or stop it, or pass another --out")
