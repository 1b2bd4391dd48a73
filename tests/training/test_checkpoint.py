"""ResumeCheckpoint's callback state: the global random states, restored at the first batch."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import torch

from elim.training.checkpoint import ResumeCheckpoint


def _draws():
    return torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random()


def test_global_random_states_continue_after_a_resume(tmp_path):
    trainer = SimpleNamespace(global_rank=0, world_size=1)
    saving = ResumeCheckpoint(tmp_path / "last.ckpt", every_n_steps=2)
    saving.setup(trainer, None, "fit")
    torch.manual_seed(1)
    state = saving.state_dict()
    assert len(state["rng"]) == 1  # one entry per process
    expected = _draws()

    resumed = ResumeCheckpoint(tmp_path / "last.ckpt", every_n_steps=2)
    resumed.setup(trainer, None, "fit")
    resumed.load_state_dict(state)
    torch.manual_seed(99)  # what restarting draws is overridden at the first batch
    resumed.on_train_batch_start(trainer, None, None, 0)
    assert _draws() == expected
    later = _draws()
    torch.manual_seed(5)
    resumed.on_train_batch_start(trainer, None, None, 1)  # only the first batch restores
    assert _draws() != later
