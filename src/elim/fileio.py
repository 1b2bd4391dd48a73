"""Safe file writing and JSON reading, shared by every layer that writes results.

Every file elim writes for later use (weights, configurations, metrics, cache shards, result
tables) goes through :func:`atomic_write_bytes`: a temporary file in the same folder, flushed and
fsynced, then renamed over the target with :func:`os.replace`. An interrupted or failed write
therefore never leaves a truncated file that is later trusted, and the previous version of the
file survives a failure (a full disk, a kill).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from elim.errors import ElimError

__all__ = ["atomic_write_bytes", "atomic_write_text", "read_json", "write_json"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path, error: type[ElimError] = ElimError, hint: str = "") -> Any:
    """Parse the JSON file ``path``; a missing or invalid file raises ``error`` naming it.

    ``hint`` is appended to the "not found" message (e.g. what the file should be).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: not found{'; ' + hint if hint else ''}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid JSON ({err})") from err
