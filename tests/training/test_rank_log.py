"""RankLog: one line per epoch and process, fresh runs start afresh, resumes continue exactly."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from elim.runs import rank_log_path
from elim.training.rank_log import RankLog


def _trainer(rank=0, world=1, ckpt_path=None):
    return SimpleNamespace(global_rank=rank, world_size=world, is_global_zero=rank == 0,
                           ckpt_path=ckpt_path, current_epoch=0, datamodule=None)


def _batch(*codes):
    return torch.zeros(len(codes), 1), torch.zeros(len(codes), 2), torch.tensor(codes)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_the_identities_of_each_epoch(tmp_path):
    stale = rank_log_path(tmp_path, 3)  # of an earlier run with more processes
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    log, trainer = RankLog(tmp_path), _trainer(rank=1, world=2)
    log.setup(trainer, None, "fit")
    log.on_fit_start(trainer, None)
    assert stale.exists()  # process 0 (only) of a fresh run removes the earlier run's logs
    RankLog(tmp_path).on_fit_start(_trainer(rank=0, world=2), None)
    assert not stale.exists()
    for epoch, batches in enumerate([[(3, 1), (1, 2)], [(0,)]]):
        trainer.current_epoch = epoch
        for i, codes in enumerate(batches):
            log.on_train_batch_start(trainer, None, _batch(*codes), i)
        log.on_train_epoch_end(trainer, None)
    assert _lines(rank_log_path(tmp_path, 1)) == [
        {"epoch": 0, "rank": 1, "world_size": 2, "identities": ["1", "2", "3"]},
        {"epoch": 1, "rank": 1, "world_size": 2, "identities": ["0"]},
    ]


def test_a_resumed_epoch_keeps_the_identities_drawn_before_the_checkpoint(tmp_path):
    reference = RankLog(tmp_path / "a")
    trainer = _trainer()
    reference.setup(trainer, None, "fit")
    reference.on_fit_start(trainer, None)
    reference.on_train_batch_start(trainer, None, _batch(5, 6), 0)
    state = reference.state_dict()
    reference.on_train_batch_start(trainer, None, _batch(2), 1)
    reference.on_train_epoch_end(trainer, None)

    crashed = tmp_path / "b"
    rank_log_path(crashed, 0).parent.mkdir(parents=True)
    rank_log_path(crashed, 0).write_text("")  # written before the crash: kept on resume
    resumed, again = RankLog(crashed), _trainer(ckpt_path="last.ckpt")
    resumed.setup(again, None, "fit")
    resumed.load_state_dict(state)
    resumed.on_fit_start(again, None)
    resumed.on_train_batch_start(again, None, _batch(2), 1)
    resumed.on_train_epoch_end(again, None)
    assert rank_log_path(crashed, 0).read_text() == rank_log_path(tmp_path / "a", 0).read_text()
