"""The faces of a dataset: its reader's records, decoded and cropped once into a face cache.

:func:`open_dataset` is the one entry point from a dataset name and root to a
:class:`elim.data.cache.FaceCache`: it dispatches to the registered reader
(:func:`elim.datasets.read_dataset`, whose :class:`elim.data.records.ReadResult` holds validated
records), fingerprints them once (:func:`elim.data.cache.plan_cache`), and builds (or reuses)
the cache folder named after that fingerprint.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from elim.config import DEFAULT_MARGIN
from elim.data.cache import FaceCache, plan_cache
from elim.datasets.registry import read_dataset
from elim.errors import DataError

__all__ = ["default_cache_root", "open_dataset"]


def _writable_dir(d: Path) -> bool:
    """Writable and not marked read-only (a directory without owner write permission is
    treated as read-only even for root, so shared data folders are left alone)."""
    try:
        return d.is_dir() and os.access(d, os.W_OK) and bool(d.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False


def default_cache_root(root: str | Path | None) -> Path:
    """Where :func:`open_dataset` keeps caches.

    ``$ELIM_CACHE_DIR`` if set; else ``<root>/.elim_cache`` (``root``'s folder when it is a
    file) when that is writable; else ``$XDG_CACHE_HOME/elim`` (default ``~/.cache/elim``).
    """
    env = os.environ.get("ELIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if root is not None:
        base = Path(root).expanduser().absolute()
        base = base if base.is_dir() else base.parent
        candidate = base / ".elim_cache"
        if _writable_dir(candidate) or (not candidate.exists() and _writable_dir(base)):
            return candidate
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "elim"


def open_dataset(
    name: str,
    root: str | Path | None,
    image_size: int,
    cache_dir: str | Path | None = None,
    margin: float = DEFAULT_MARGIN,
    *,
    align: bool = False,
    progress: bool = True,
    workers: int = 0,
    **reader_options: Any,
) -> FaceCache:
    """Faces of dataset ``name`` at ``root``, from a cache built on first use.

    ``synthetic`` without a root is generated in memory
    (``elim.datasets.synthetic.generate(image_size=…, **reader_options)``). Otherwise the
    reader's records are cached in ``<cache_dir>/<name>-<size>-<fingerprint[:12]>``, where
    ``cache_dir`` defaults to :func:`default_cache_root`; a changed dataset, size or margin
    gets a new folder. A dataset of which no record yields a face is a :class:`DataError`.
    ``align``: faces warped onto a measured five-point template (``elim.data.cache``).
    """
    if name == "synthetic" and root is None:
        from elim.datasets.synthetic import generate

        images, table = generate(image_size=image_size, **reader_options)
        meta = {"dataset": name, "source": "generated", "image_size": int(image_size),
                "options": {k: v for k, v in reader_options.items()}}
        return FaceCache.from_arrays(images, table, meta)
    result = read_dataset(name, root, **reader_options)
    plan = plan_cache(result, image_size, margin, align)
    parent = Path(cache_dir) if cache_dir is not None else default_cache_root(root)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    target = parent / f"{safe}-{int(image_size)}-{plan.fingerprint[:12]}"
    cache = plan.build(target, progress=progress, workers=workers, dataset=name)
    if len(cache) == 0:
        raise DataError(
            f"{result.source or root}: none of the {len(plan.records)} record(s) gave a face "
            f"({cache.skipped.summary()}); check the image files"
        )
    return cache
