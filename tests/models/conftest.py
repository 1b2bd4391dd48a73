"""Shared fixtures for the model tests: each backbone is built once per session (never pretrained)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from elim.models import create_backbone


@pytest.fixture(scope="session")
def built() -> Callable[[str], nn.Module]:
    """``built(name)`` → that backbone with default options, seeded, built once and reused."""
    cache: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = create_backbone(name, feature_dim=64, pretrained=False)
        return cache[name]

    return get
