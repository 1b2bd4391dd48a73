"""Resumable result folders: one JSON file per finished job, tagged with the settings' fingerprint.

A long study (cross-validation, ablation grid, identity study) writes each job's result as soon as it ends
(atomically, :func:`elim.fileio.write_json`), so the same command rerun after an interruption only
does the jobs that are missing. A folder started with other settings is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elim.errors import ElimError
from elim.fileio import read_json, write_json

__all__ = ["RESULTS", "ResultStore", "config_settings", "fingerprint", "result_path"]

#: the folder of a result folder's per-job JSON files
RESULTS = "results"


def fingerprint(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def config_settings(config: Any, **varied: Sequence[str]) -> dict[str, Any]:
    """The run configuration of ``config`` (``config.json`` layout) without what a study varies.

    Always dropped: ``seed``, ``elim_version``, ``train.method`` and ``train.progress``; plus,
    per section, the keys given as ``section=("key", ...)``.
    """
    from elim.runs.config import run_config

    drop = {"train": ("method", "progress", *varied.pop("train", ()))}
    drop.update(varied)
    out = {k: v for k, v in run_config(config).items() if k not in ("seed", "elim_version")}
    for section, keys in drop.items():
        out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def result_path(root: str | Path, job: str) -> Path:
    """Where the result of ``job`` is stored: ``<root>/results/<job>.json``."""
    return Path(root) / RESULTS / f"{job}.json"


class ResultStore:
    """``<root>/<meta_name>`` holds the settings; ``<root>/results/<job>.json`` one result each."""

    def __init__(self, root: str | Path, settings: dict[str, Any], meta_name: str,
                 command: str) -> None:
        self.root = Path(root)
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        meta = self.root / meta_name
        if meta.is_file() and read_json(meta).get("fingerprint") != self.fingerprint:
            raise ElimError(
                f"{meta}: this folder holds a {command} run with other settings; pass another "
                "--out (or delete the folder) to start a new one"
            )
        write_json(meta, {"fingerprint": self.fingerprint, **settings})

    def path(self, job: str) -> Path:
        return result_path(self.root, job)

    def get(self, job: str) -> dict[str, Any] | None:
        """The stored result of ``job`` when it was made with these settings, else ``None``."""
        path = self.path(job)
        if not path.is_file():
            return None
        stored = read_json(path)
        return stored if stored.get("fingerprint") == self.fingerprint else None

    def put(self, job: str, result: dict[str, Any]) -> dict[str, Any]:
        record = {"fingerprint": self.fingerprint, **result}
        write_json(self.path(job), record)
        return record
