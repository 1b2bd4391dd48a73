"""BestWeights: the weights of the best validation, in memory and through a resume."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from elim.training.best import BestWeights


class _Module(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Linear(2, 2)
        self.val_history: list[dict] = []


def _validate(best, module, trainer, epoch, score):
    trainer.current_epoch = epoch
    with torch.no_grad():
        module.model.weight.fill_(float(epoch))
    module.val_history.append({"epoch": epoch, "step": 10 * epoch, "ccc_mean": score})
    best.on_validation_end(trainer, module)


def test_keeps_the_first_best_epoch_and_survives_a_resume():
    best, module = BestWeights("ccc_mean"), _Module()
    trainer = SimpleNamespace(current_epoch=0, sanity_checking=False)
    assert best.state is None and best.epoch is None
    for epoch, score in enumerate([0.1, 0.5, 0.3, 0.5]):  # a tie keeps the earlier epoch
        _validate(best, module, trainer, epoch, score)
    assert best.epoch == 1 and best.score == 0.5
    assert torch.equal(best.state["weight"], torch.ones(2, 2))
    assert best.state["weight"].data_ptr() != module.model.weight.data_ptr()  # a copy

    restored = BestWeights("ccc_mean")
    restored.load_state_dict(best.state_dict())
    _validate(restored, module, trainer, 4, 0.4)
    assert restored.epoch == 1 and torch.equal(restored.state["weight"], torch.ones(2, 2))
    _validate(restored, module, trainer, 5, 0.9)
    assert restored.epoch == 5 and torch.equal(restored.state["weight"], torch.full((2, 2), 5.0))


def test_ignores_sanity_checks_and_validations_without_a_record():
    best, module = BestWeights(), _Module()
    trainer = SimpleNamespace(current_epoch=0, sanity_checking=True)
    module.val_history.append({"epoch": 0, "ccc_mean": 0.2})
    best.on_validation_end(trainer, module)
    assert best.epoch is None
    trainer.sanity_checking, trainer.current_epoch = False, 3  # last record is of epoch 0
    best.on_validation_end(trainer, module)
    assert best.epoch is None and best.state is None
