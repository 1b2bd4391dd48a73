"""Tiny synthetic data and configurations for the training tests (seconds per fit)."""

from __future__ import annotations

import pytest
import torch

from elim.config import config_from_dict
from elim.data.cache import FaceCache
from elim.datasets.synthetic import generate

TINY = {
    "model": {"backbone": "cnn-small", "feature_dim": 16, "options": {"channels": [8, 16]}},
    "data": {"dataset": "synthetic", "image_size": 16, "batch_identities": 4,
             "samples_per_identity": 6, "fractions": [0.6, 0.2, 0.2],
             "options": {"n_identities": 10, "clips_per_identity": 2, "frames_per_clip": 6}},
    "matching": {"n_identities": 4, "k": 4},
    "train": {"epochs": 2, "lr": 1e-2, "lr_head": 1e-2, "lr_decay_first": 0,
              "progress": False, "threads": 1},
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: one torch thread is fastest, and far faster on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_cache() -> FaceCache:
    images, table = generate(**TINY["data"]["options"], image_size=16)
    return FaceCache.from_arrays(images, table)


@pytest.fixture
def tiny_config():
    def make(**sections):
        values = {k: dict(v) for k, v in TINY.items()}
        for section, updates in sections.items():
            if section == "seed":
                values["seed"] = updates
            else:
                values[section] = {**values.get(section, {}), **updates}
        return config_from_dict(values)

    return make


@pytest.fixture(scope="session")
def tiny_values() -> dict:
    """The raw mapping of the tiny configuration (as a YAML preset would hold it)."""
    import copy

    return copy.deepcopy(TINY)
