"""Non-finite losses and gradients never reach the optimiser; hostile batches train cleanly."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from elim.data.cache import FaceCache
from elim.data.splits import make_splits
from elim.errors import ElimError
from elim.models import build_model
from elim.training import fit
from elim.training.guard import NonFiniteGuard, TrainingDiverged


def _with_table(cache: FaceCache, table: pd.DataFrame) -> FaceCache:
    """The same faces with an edited record table (labels are not re-validated)."""
    return FaceCache(cache.images, table, cache.image_size, cache.meta)


def _train_ids(cache, config) -> list[str]:
    return sorted(set(cache.table["identity"].iloc[make_splits(cache.table, config.data).train]))


def _finite_model(model) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values()
               if t.is_floating_point())


def test_guard_counts_and_stops_after_consecutive_bad_steps():
    guard = NonFiniteGuard(max_consecutive=3)
    assert "non-finite L_va at epoch 0" in guard.bad("L_va", "epoch 0, batch 1")
    guard.good()
    guard.bad("L_main", "b")
    guard.bad("gradient", "c")
    with pytest.raises(TrainingDiverged, match=r"3 consecutive steps .*\(last: non-finite L_va"):
        guard.bad("L_va", "d")
    assert guard.summary()["by_cause"] == {"L_va": 2, "L_main": 1, "gradient": 1}
    restored = NonFiniteGuard(3)
    restored.load_state_dict(guard.state_dict())
    assert restored.summary() == guard.summary() and restored.consecutive == 3
    never = NonFiniteGuard(max_consecutive=0)
    for _ in range(50):
        never.bad("L_va", "x")


# ------------------------------------------------------------------ the callback in isolation
class _Module(torch.nn.Module):
    """What the guard uses of an ElimModule: parameters, buffers, ``skip_cause``, ``log``."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        self.skip_cause: str | None = None
        self.logged: dict[str, float] = {}

    def log(self, name, value, **kwargs):
        self.logged[name] = value


def _fake_trainer(world=1, precision="32-true"):
    return SimpleNamespace(current_epoch=2, global_step=17, global_rank=world - 1,
                           world_size=world, precision=precision, datamodule=None)


def _step(guard, module, trainer, cause, codes=(4, 1, 4)):
    batch = (torch.randn(len(codes), 3), torch.zeros(len(codes), 2), torch.tensor(codes))
    guard.on_train_batch_start(trainer, module, batch, 5)
    module.net(batch[0])  # the forward pass moves the BatchNorm statistics
    module.skip_cause = cause
    guard.on_train_batch_end(trainer, module, {"loss": None}, batch, 5)


def test_skipped_step_is_counted_named_and_leaves_batchnorm_untouched(caplog):
    guard, module, trainer = NonFiniteGuard(max_consecutive=2), _Module(), _fake_trainer(world=2)
    before = [b.clone() for b in module.buffers()]
    with caplog.at_level(logging.WARNING, logger="elim.training"):
        _step(guard, module, trainer, "L_main")
    assert all(torch.equal(a, b) for a, b in zip(before, module.buffers()))
    assert guard.summary()["by_cause"] == {"L_main": 1} and module.logged == {
        "train/skipped_steps": 1.0}
    message = guard.examples[0]
    assert message == ("non-finite L_main at epoch 2, batch 5, step 17, process 1 (identities "
                       "1, 4); step skipped (1 so far)")
    assert caplog.records[0].getMessage() == message
    _step(guard, module, trainer, None)  # a step taken: its statistics stay
    assert not all(torch.equal(a, b) for a, b in zip(before, module.buffers()))
    assert guard.skipped == 1 and guard.consecutive == 1
    with pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        _step(guard, module, trainer, "L_va")


def test_non_finite_gradient_drops_the_update_of_every_parameter():
    guard, module, trainer = NonFiniteGuard(), _Module(), _fake_trainer()
    guard.on_before_optimizer_step(trainer, module, None)  # no gradients: a skipped loss
    assert guard.skipped == 0
    module.net(torch.randn(4, 3)).sum().backward()
    guard.bad("L_va", "x")
    guard.on_before_optimizer_step(trainer, module, None)  # finite: a good step
    assert guard.consecutive == 0 and all(p.grad is not None for p in module.parameters())
    next(module.parameters()).grad[0, 0] = float("nan")
    guard.on_before_optimizer_step(trainer, module, None)
    assert all(p.grad is None for p in module.parameters())
    assert guard.counts["gradient"] == 1 and "epoch 2, step 17" in guard.examples[-1]
    module.net(torch.randn(4, 3)).sum().backward()
    next(module.parameters()).grad[0, 0] = float("inf")
    guard.on_before_optimizer_step(_fake_trainer(precision="16-mixed"), module, None)
    assert guard.consecutive == 0  # the gradient scaler skips such steps itself


def test_nan_labels_of_one_identity_skip_only_its_steps(tiny_cache, tiny_config, caplog):
    config = tiny_config(train={"epochs": 1})
    victim = _train_ids(tiny_cache, config)[0]
    table = tiny_cache.table.copy()
    table.loc[table["identity"] == victim, "valence"] = np.nan
    with caplog.at_level(logging.WARNING, logger="elim.training"):
        result = fit(config, None, cache=_with_table(tiny_cache, table))
    skipped = result.metrics["skipped_steps"]
    # every batch holding the identity (its 9 samples are 2 chunks: 2 batches) and no other
    assert skipped["skipped_steps"] == 2
    assert set(skipped["by_cause"]) <= {"L_va", "L_va and L_main"}
    assert all(victim in e for e in skipped["examples"])
    assert any(victim in r.getMessage() and "step skipped" in r.getMessage()
               for r in caplog.records)
    assert _finite_model(result.model)
    assert all(math.isfinite(v) for v in result.metrics["test"].values())
    assert len(result.train_loss) == 1 and math.isfinite(result.train_loss[0])


def test_l_main_alone_non_finite_is_named(tiny_cache, tiny_config, monkeypatch):
    from elim.training import module

    real = module.main_loss
    calls = {"n": 0}

    def flaky_main_loss(pred, y):
        calls["n"] += 1
        out = real(pred, y)
        return out * float("nan") if calls["n"] == 3 else out

    monkeypatch.setattr(module, "main_loss", flaky_main_loss)
    result = fit(tiny_config(train={"epochs": 1, "warmup": 0.0}), None, cache=tiny_cache)
    assert result.metrics["skipped_steps"]["by_cause"] == {"L_main": 1}
    assert _finite_model(result.model)


def test_non_finite_gradient_drops_the_update(tiny_cache, tiny_config, monkeypatch):
    from elim.training.module import ElimModule

    real = ElimModule.compute_loss

    def poisoned(self, batch, step):
        loss, logs = real(self, batch, step)
        if step == 2:  # finite loss, NaN gradient: d sqrt(x)/dx is inf at 0, times 0
            loss = loss + (next(self.model.head.parameters()).sum() * 0.0).sqrt()
        return loss, logs

    monkeypatch.setattr(ElimModule, "compute_loss", poisoned)
    result = fit(tiny_config(train={"epochs": 1}), None, cache=tiny_cache)
    assert result.metrics["skipped_steps"]["by_cause"] == {"gradient": 1}
    assert _finite_model(result.model)


def test_all_steps_bad_leave_weights_and_statistics_untouched(tiny_cache, tiny_config):
    config = tiny_config(train={"epochs": 1, "max_bad_steps": 0})
    table = tiny_cache.table.copy()
    table["arousal"] = np.inf
    table.loc[make_splits(table, config.data).val, "arousal"] = 0.0  # validation stays measurable
    table.loc[make_splits(table, config.data).test, "arousal"] = 0.0
    result = fit(config, None, cache=_with_table(tiny_cache, table))
    assert result.metrics["skipped_steps"]["skipped_steps"] == 7  # every batch of the epoch
    torch.manual_seed(config.seed)
    initial = build_model(config.model.to_model_dict()).state_dict()
    final = result.model.state_dict()
    assert all(torch.equal(initial[k], final[k]) for k in initial)  # parameters and BN stats


def test_consecutive_bad_steps_stop_training_with_a_clear_error(tiny_cache, tiny_config):
    config = tiny_config(train={"epochs": 2, "max_bad_steps": 3})
    table = tiny_cache.table.copy()
    table["valence"] = np.nan
    with pytest.raises(ElimError, match=r"training stopped: 3 consecutive steps .*non-finite"):
        fit(config, None, cache=_with_table(tiny_cache, table))


def test_train_command_reports_divergence_in_one_line(tmp_path, capsys, tiny_yaml, monkeypatch):
    from elim.cli import main
    from elim.training.module import ElimModule

    real = ElimModule.compute_loss

    def always_nan(self, batch, step):
        loss, logs = real(self, batch, step)
        logs["loss_va"] = logs["loss_va"] * float("nan")
        return loss * float("nan"), logs

    monkeypatch.setattr(ElimModule, "compute_loss", always_nan)
    code = main(["train", "--config", str(tiny_yaml), "--max-bad-steps", "2",
                 "--out", str(tmp_path / "run"), "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any(line.startswith("elim train: error: training stopped: 2 consecutive steps")
               for line in err)
    assert not any(line.startswith("Traceback") for line in err)


# ------------------------------------------------------------------ hostile but valid batches
def _cache_from(images: np.ndarray, identities: list[str], seed: int = 0) -> FaceCache:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"identity": identities,
                          "valence": rng.uniform(-1, 1, len(identities)),
                          "arousal": rng.uniform(-1, 1, len(identities))})
    return FaceCache.from_arrays(images, table)


def test_identities_with_a_single_sample_train(tiny_cache, tiny_config):
    identities = [f"p{i:02d}" for i in range(24)]  # 24 identities of one face each
    images = np.asarray(tiny_cache.images[:24])
    result = fit(tiny_config(train={"epochs": 1}), None, cache=_cache_from(images, identities))
    assert result.metrics["skipped_steps"]["skipped_steps"] == 0
    assert all(math.isfinite(v) for v in result.metrics["test"].values())


def test_batches_of_a_single_identity_skip_l_main_only(tiny_cache, tiny_config, monkeypatch):
    from elim.training import module

    calls = []
    monkeypatch.setattr(module, "main_loss", lambda *a: calls.append(1))
    config = tiny_config(data={"batch_identities": 1}, train={"epochs": 1, "warmup": 0.0})
    result = fit(config, None, cache=tiny_cache)
    assert result.metrics["skipped_steps"]["skipped_steps"] == 0
    assert calls == []  # every batch holds one identity: nothing to match, no L_main
    assert result.metrics["steps"] > 0 and math.isfinite(result.train_loss[0])


def test_all_black_images_give_finite_training(tiny_cache, tiny_config):
    """Identical (all-zero) inputs: constant features, zero-variance predictions."""
    images = np.zeros_like(np.asarray(tiny_cache.images))
    cache = FaceCache.from_arrays(images, tiny_cache.table.drop(columns=["record"],
                                                                errors="ignore"))
    result = fit(tiny_config(train={"epochs": 1, "warmup": 0.0}), None, cache=cache)
    assert result.metrics["skipped_steps"]["skipped_steps"] == 0
    assert _finite_model(result.model)
    assert all(math.isfinite(v) for v in result.metrics["test"].values())
