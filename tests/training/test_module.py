"""One training step of each method: losses, gradients, the L_main skip and the warm-up."""

from __future__ import annotations

import pytest
import torch

from elim.config import preprocess_for
from elim.data.transforms import augment
from elim.models import build_model
from elim.training.module import ElimModule


def _batch(n_ids: int, per_id: int = 5, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b = n_ids * per_id
    images = torch.randint(0, 256, (b, size, size, 3), generator=g, dtype=torch.uint8)
    y = torch.rand(b, 2, generator=g) * 2 - 1
    identity = torch.arange(n_ids).repeat_interleave(per_id)
    return images, y, identity


def _module(config):
    torch.manual_seed(0)
    model = build_model(config.model.to_model_dict())
    return ElimModule(model, config, preprocess_for(config), augment=augment, total_steps=10)


@pytest.mark.parametrize("method", ["baseline", "elim"])
def test_loss_is_finite_and_reaches_backbone_and_head(tiny_config, method):
    config = tiny_config(train={"method": method, "warmup": 0.0})
    module = _module(config)
    loss, logs = module.compute_loss(_batch(3), step=0)
    assert torch.isfinite(loss)
    loss.backward()
    for part in (module.model.backbone, module.model.head):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    if method == "elim":
        assert logs["loss_main"] > 0
        assert loss.item() == pytest.approx((logs["loss_va"] + logs["loss_main"]).item(), rel=1e-5)
    else:
        assert "loss_main" not in logs
        assert loss.item() == pytest.approx(logs["loss_va"].item())


def test_elim_skips_l_main_with_a_single_identity(tiny_config):
    module = _module(tiny_config(train={"method": "elim", "warmup": 0.0}))
    loss, logs = module.compute_loss(_batch(1, per_id=8), step=0)
    assert "loss_main" not in logs
    assert loss.item() == pytest.approx(logs["loss_va"].item())


def test_l_main_gradient_reaches_the_backbone(tiny_config):
    """L_main alone (L_va weights 0) must train f_φ through the matched, normalised features."""
    config = tiny_config(train={"method": "elim", "warmup": 0.0, "w_mse": 0.0, "w_pcc": 0.0,
                                "w_ccc": 0.0})
    module = _module(config)
    loss, _logs = module.compute_loss(_batch(4), step=0)
    loss.backward()
    grads = [p.grad for p in module.model.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_warmup_weight_ramps_l_main(tiny_config):
    module = _module(tiny_config(train={"method": "elim", "warmup": 0.5}))  # 5 of 10 steps
    assert module.main_weight(0) == 0.0
    assert module.main_weight(2) == pytest.approx(0.4)
    assert module.main_weight(7) == 1.0
    _, logs = module.compute_loss(_batch(3), step=0)
    assert "loss_main" not in logs and logs["w_main"] == 0.0
    baseline = _module(tiny_config(train={"method": "baseline"}))
    assert baseline.main_weight(100) == 0.0 and baseline.matching is None


def test_optimiser_groups_and_step_schedule(tiny_config):
    config = tiny_config(train={"lr": 5e-5, "lr_head": 1e-5, "lr_decay_first": 3,
                                "lr_decay_every": 2, "lr_decay": 0.5})
    module = _module(config)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert [g["lr"] for g in opt.param_groups] == [5e-5, 1e-5]
    head = {id(p) for p in module.model.head.parameters()}
    assert {id(p) for p in opt.param_groups[1]["params"]} == head
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([5e-5, 5e-5, 5e-5, 2.5e-5, 2.5e-5, 1.25e-5])


def test_training_step_skips_a_non_finite_loss_and_names_the_term(tiny_config):
    module = _module(tiny_config(train={"method": "baseline"}))
    images, y, identity = _batch(3)
    y[identity == 0] = float("nan")
    assert module.training_step((images, y, identity), 0) is None
    assert module.skip_cause == "L_va" and module._epoch_loss == []
    y = torch.nan_to_num(y)
    loss = module.training_step((images, y, identity), 0)  # (no trainer: nothing is logged)
    assert torch.isfinite(loss) and module.skip_cause is None and len(module._epoch_loss) == 1
