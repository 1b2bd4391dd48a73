"""The dataset registry: one reader per published layout, imported on first use.

A reader is a function ``read(root, **options) -> ReadResult`` registered under a name with
:func:`register_dataset`. ``elim train --dataset NAME --root PATH`` looks it up here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from elim.data.records import ReadResult
from elim.errors import DataError

Reader = Callable[..., ReadResult]
_READERS: dict[str, Reader] = {}
# name -> module that registers it (imported lazily so that optional deps stay optional)
_MODULES = {
    "csv": "elim.datasets.csv_frames",
    "synthetic": "elim.datasets.synthetic",
    "afew-va": "elim.datasets.afew_va",
    "aff-wild": "elim.datasets.aff_wild",
    "aff-wild2": "elim.datasets.aff_wild2",
}


def register_dataset(name: str) -> Callable[[Reader], Reader]:
    """Decorator: register ``fn`` as the reader of dataset ``name``."""

    def deco(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    return sorted(_MODULES)


def get_reader(name: str) -> Reader:
    if name not in _READERS:
        module = _MODULES.get(name)
        if module is None:
            raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(list_datasets())}")
        importlib.import_module(module)
    return _READERS[name]


def read_dataset(name: str, root: str | Path | None = None, **options) -> ReadResult:
    """Read dataset ``name`` at ``root`` into a :class:`ReadResult`."""
    return get_reader(name)(root, **options)
