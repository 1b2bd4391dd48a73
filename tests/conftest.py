"""Settings shared by the whole test suite.

The tiny configuration: ``tests/tiny.yaml`` is the one small ELIM setting every test that trains
uses (a fit takes about a second on one core). Fixtures: ``tiny_yaml`` (its path, for the CLI),
``tiny_values`` (its mapping), ``tiny_config(**sections)`` (a fresh :class:`elim.config.Config`
with sections updated, e.g. ``tiny_config(train={"epochs": 1})``) and ``tiny_cache`` (its faces,
generated in memory once per session).

Threads: every test runs with one torch thread and restores the count afterwards (no test
depends on what an earlier one set).

Optional backends: a test that needs one is marked (``@pytest.mark.needs_qpth``) and is skipped
with a reason that names the install command when the backend is absent, never failed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from elim.deps import yaml

TINY_YAML = Path(__file__).with_name("tiny.yaml")
_TINY: dict[str, Any] = yaml.safe_load(TINY_YAML.read_text())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_qpth: needs the optional QP solver qpth (skipped when absent)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_qpth"):
        from elim.ot.qp import QPTH_INSTALL, qpth_available

        if not qpth_available():
            pytest.skip(f"optional solver qpth is not installed ({QPTH_INSTALL})")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs with one torch thread (tiny models: fastest, also on a busy shared CPU)
    and leaves torch's thread count as it found it, whatever the code under test set."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_yaml() -> Path:
    return TINY_YAML


@pytest.fixture(scope="session")
def tiny_values() -> dict[str, Any]:
    """The tiny configuration's mapping (as a YAML preset holds it); copy before changing it."""
    return copy.deepcopy(_TINY)


@pytest.fixture
def tiny_config():
    """``make(**sections)``: the tiny configuration with sections updated (``seed=`` an int)."""
    from elim.config import config_from_dict

    def make(**sections: Any):
        values = copy.deepcopy(_TINY)
        for section, updates in sections.items():
            if section == "seed":
                values["seed"] = updates
            else:
                values[section] = {**values.get(section, {}), **updates}
        return config_from_dict(values)

    return make


@pytest.fixture(scope="session")
def tiny_cache():
    """The faces of the tiny configuration's synthetic dataset, in memory."""
    from elim.datasets import open_dataset

    data = _TINY["data"]
    return open_dataset("synthetic", None, data["image_size"], **data["options"])
