"""Shared cases of the model tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import torch
from torch import nn

#: a tiny timm model exercising the ``timm:<model>`` family
TIMM_TINY = "timm:resnet10t"


def smallest_input(backbone: nn.Module, batch: int = 2) -> torch.Tensor:
    """A seeded batch at the smallest image size the backbone accepts."""
    size = backbone.fixed_size or backbone.min_size
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, size, size, generator=gen)
