"""Seeded test problems shared by the OT tests: cosine-like costs and random masses."""

from __future__ import annotations

import torch


def cosine_cost(
    n_batch: int, n: int, m: int, *, dim: int = 8, seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """(B, n, m) costs 1 - cos between seeded random features (values in [0, 2])."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(
        torch.randn(n_batch, n, dim, generator=gen, dtype=dtype), dim=-1
    )
    y = torch.nn.functional.normalize(
        torch.randn(n_batch, m, dim, generator=gen, dtype=dtype), dim=-1
    )
    return 1.0 - x @ y.transpose(1, 2)


def random_masses(
    n_batch: int,
    n: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, n) positive masses summing to 1 over the real entries of ``mask``."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(n_batch, n, generator=gen, dtype=dtype) + 0.1
    if mask is not None:
        w = w * mask
    return w / w.sum(-1, keepdim=True)
