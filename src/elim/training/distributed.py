"""Multi-process training helpers: evaluation shards, their exact reassembly, shared decisions.

Under DDP each process evaluates a strided shard of the validation set (:func:`shard`: rank r
takes positions r, r + W, r + 2W, …, so shard sizes differ by at most one). Metrics such as
CCC are not averages of per-process values, so the predictions themselves are gathered
(:func:`gather_shards`): every shard is padded to the longest one, all-gathered, and the
padding dropped while interleaving the shards back into the original order — exactly the
samples of the validation set, each once, in order, whatever the number of processes.

:func:`any_process` or-s a decision over the processes (a step is skipped on all of them or on
none) and :func:`gather_objects` collects a per-process state on every process, so that the
checkpoint written by process 0 holds the state of each (generators, random states, identities).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["any_process", "gather_objects", "gather_shards", "shard", "unshard"]


def shard(indices: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """The part of ``indices`` that process ``rank`` of ``world_size`` evaluates."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return np.asarray(indices)[rank::world_size]


def unshard(gathered: Tensor, counts: Tensor) -> Tensor:
    """(W, L, …) padded shards with ``counts`` (W,) real rows each → (Σ counts, …) in the
    original order (row i of shard r is position r + i·W)."""
    world, length = gathered.shape[:2]
    counts = counts.reshape(-1).to(torch.long).cpu()
    if counts.numel() != world or bool((counts > length).any()):
        raise ValueError(f"counts {counts.tolist()} do not fit shards of length {length}")
    real = torch.arange(length).unsqueeze(0) < counts.unsqueeze(1)  # (W, L)
    if not bool((counts.max() - counts.min() <= 1) and (counts[:-1] >= counts[1:]).all()):
        raise ValueError(f"counts {counts.tolist()} are not those of a strided split")
    interleaved = gathered.transpose(0, 1).reshape(world * length, *gathered.shape[2:])
    return interleaved[real.transpose(0, 1).reshape(-1).to(gathered.device)]


def gather_shards(local: Tensor, world_size: int,
                  all_gather: Callable[[Tensor], Tensor]) -> Tensor:
    """Every process's ``local`` (n_r, …) rows reassembled in original order (see module doc).

    ``all_gather(t)`` returns the (W, …) stack of ``t`` over processes (e.g.
    ``LightningModule.all_gather``); with ``world_size`` 1 ``local`` is returned as is.
    """
    if world_size <= 1:
        return local
    count = torch.tensor([local.shape[0]], device=local.device)
    counts = all_gather(count).reshape(world_size)
    length = int(counts.max())
    padded = local.new_zeros((length, *local.shape[1:]))
    padded[: local.shape[0]] = local
    return unshard(all_gather(padded).reshape(world_size, length, *local.shape[1:]), counts)


def any_process(trainer: Any, flag: bool) -> bool:
    """``flag`` or-ed over the processes of ``trainer`` (``flag`` itself without a trainer or in a
    single process). Collective: every process must call it."""
    if trainer is None or trainer.world_size <= 1:
        return bool(flag)
    return bool(trainer.strategy.reduce_boolean_decision(bool(flag), all=False))


def gather_objects(obj: Any, world_size: int) -> list[Any]:
    """``obj`` of every process in rank order (``[obj]`` with ``world_size`` 1). Collective."""
    if world_size <= 1:
        return [obj]
    out: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(out, obj)
    return out
