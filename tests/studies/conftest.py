"""The tiny synthetic configuration of the analysis commands and its face cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from elim.config import Config, load_config_file

TINY = Path(__file__).parents[1] / "commands" / "tiny.yaml"


@pytest.fixture
def tiny_config() -> Config:
    """A fresh copy per test (tests modify it)."""
    return load_config_file(TINY)


@pytest.fixture(scope="session")
def tiny_cache():
    from elim.training.data import open_cache

    return open_cache(load_config_file(TINY), progress=False)
