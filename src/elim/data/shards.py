"""The shards of a face cache seen as one array.

:class:`ShardedArray` is a read-only (N, …) view over several arrays (the memory-mapped
``shard_NNNNN.npy`` files of :mod:`elim.data.cache`), indexed along its first axis;
:func:`pack_memmap` / :func:`unpack_memmap` let a read-only memory map travel through pickle
(DataLoader workers, spawned processes) as a file reference that is mapped again, not copied.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from typing import Any

import numpy as np


def pack_memmap(array: Any) -> Any:
    """Picklable stand-in for a read-only file-backed memmap (re-mapped, not copied)."""
    if (
        isinstance(array, np.memmap)
        and isinstance(array.base, mmap.mmap)  # the mapping itself, not a view of it
        and array.filename
        and array.mode == "r"
    ):
        return ("memmap", array.filename, int(array.offset), tuple(array.shape), array.dtype.str)
    return array


def unpack_memmap(state: Any) -> Any:
    if isinstance(state, tuple) and len(state) == 5 and state[0] == "memmap":
        _, filename, offset, shape, dtype = state
        return np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
    return state


class ShardedArray:
    """Read-only (N, …) array-like over several arrays (e.g. memory-mapped shards).

    Supports ``len``, ``shape``, ``dtype``, ``ndim``, ``np.asarray`` and indexing along the
    first axis by int, slice, integer array or boolean mask (optionally followed by more
    indices), always returning in-memory numpy arrays. ``rows`` restricts and reorders the
    view without copying (what :meth:`FaceCache.subset` uses).
    """

    def __init__(self, parts: Sequence[np.ndarray], rows: np.ndarray | None = None):
        parts = [p for p in parts if len(p) > 0] or list(parts[:1])
        if not parts:
            raise ValueError("ShardedArray needs at least one part")
        self.parts = parts
        self._offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.dtype = parts[0].dtype
        self._item_shape = tuple(parts[0].shape[1:])
        for p in parts:
            if tuple(p.shape[1:]) != self._item_shape or p.dtype != self.dtype:
                raise ValueError("all parts must share item shape and dtype")

    def __len__(self) -> int:
        return int(len(self._rows) if self._rows is not None else self._offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self._item_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._item_shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def _positions(self, key: Any) -> tuple[np.ndarray, bool]:
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if int(key) < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(key)} out of range for length {n}")
            return np.array([i], dtype=np.int64), True
        if isinstance(key, slice):
            return np.arange(n, dtype=np.int64)[key], False
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise IndexError(f"boolean index of shape {arr.shape} for length {n}")
            return np.flatnonzero(arr).astype(np.int64), False
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64), False
        if not np.issubdtype(arr.dtype, np.integer):
            raise IndexError(f"cannot index with {arr.dtype} array")
        arr = arr.astype(np.int64).ravel()
        if (arr < -n).any() or (arr >= n).any():
            raise IndexError(f"index out of range for length {n}")
        return np.where(arr < 0, arr + n, arr), False

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        src = self._rows[pos] if self._rows is not None else pos
        if len(self.parts) == 1:
            return np.asarray(self.parts[0][src])
        part = np.searchsorted(self._offsets, src, side="right") - 1
        out = np.empty((len(src), *self._item_shape), dtype=self.dtype)
        for p in np.unique(part):
            sel = part == p
            out[sel] = self.parts[p][src[sel] - self._offsets[p]]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        pos, scalar = self._positions(key)
        out = self._gather(pos)
        if scalar:
            out = out[0]
            return out[rest] if rest else out
        return out[(slice(None), *rest)] if rest else out

    def take(self, indices: Sequence[int] | np.ndarray) -> ShardedArray:
        """A view of the rows ``indices`` (no copy)."""
        pos, _ = self._positions(np.asarray(indices, dtype=np.int64))
        rows = self._rows[pos] if self._rows is not None else pos
        return ShardedArray(self.parts, rows)

    def __getstate__(self) -> dict:
        # memory-mapped shards travel to DataLoader workers / spawned ranks as file references
        return {**self.__dict__, "parts": [pack_memmap(p) for p in self.parts]}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({**state, "parts": [unpack_memmap(p) for p in state["parts"]]})

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._gather(np.arange(len(self), dtype=np.int64))
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, parts={len(self.parts)})"
