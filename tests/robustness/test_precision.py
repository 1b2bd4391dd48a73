"""Mixed precision: the matching layer and Sinkhorn stay float32 under bf16 autocast (CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from elim.matching import IdentityMatching
from elim.ot import sinkhorn


def _batch(seed=0, sizes=(12, 9, 15), d=16):
    g = torch.Generator().manual_seed(seed)
    codes = torch.cat([torch.full((s,), i) for i, s in enumerate(sizes)])
    z = torch.randn(len(codes), d, generator=g).relu()
    y = torch.rand(len(codes), 2, generator=g) * 2 - 1
    return z, codes, y


def test_sinkhorn_under_autocast_is_float32_and_unchanged():
    cost = torch.rand(3, 20, 17, generator=torch.Generator().manual_seed(0)) * 2
    ref = sinkhorn(cost, eps=0.05, tol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sinkhorn(cost, eps=0.05, tol=1e-6)
    assert out.plan.dtype == torch.float32
    assert torch.equal(out.plan, ref.plan) and out.n_iter == ref.n_iter
    assert bool(out.converged.all())


def test_matching_under_bf16_autocast_matches_float32():
    z, codes, y = _batch()
    layer = IdentityMatching(n_identities=3, k=10, tol=1e-6, max_iter=500)
    backbone = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU())
    with torch.no_grad():
        ref = layer(backbone(z), codes, y, generator=torch.Generator().manual_seed(1))
    x = z.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = backbone(x)
        assert feats.dtype == torch.bfloat16  # autocast is really on
        out = layer(feats, codes, y, generator=torch.Generator().manual_seed(1))
    for t in (out.z_hat, out.mu, out.sigma, out.plan, out.a, out.b):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    assert out.converged and torch.equal(out.index, ref.index)
    # bf16 features carry ~3 significant digits; the float32 statistics follow them closely.
    torch.testing.assert_close(out.plan, ref.plan, atol=2e-3, rtol=0.05)
    torch.testing.assert_close(out.mu, ref.mu, atol=1e-2, rtol=0.02)
    torch.testing.assert_close(out.z_hat, ref.z_hat, atol=0.1, rtol=0.05)
    out.z_hat.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_matching_of_half_features_equals_float32_of_the_same_values():
    z, codes, y = _batch(seed=3)
    zb = z.bfloat16()
    layer = IdentityMatching(n_identities=3, k=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(zb, codes, y, generator=torch.Generator().manual_seed(2))
    ref = layer(zb.float(), codes, y, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out.z_hat, ref.z_hat) and torch.equal(out.plan, ref.plan)


# ------------------------------------------------------------------ through training
def test_training_step_under_bf16_autocast_matches_float32(tiny_cache, tiny_config):
    from elim.config import preprocess_for
    from elim.data.dataset import FaceDataset
    from elim.models import build_model
    from elim.training.module import ElimModule

    config = tiny_config(train={"warmup": 0.0})
    dataset = FaceDataset(tiny_cache)
    batch = dataset.__getitems__(list(range(36)))  # 4 identities of 9 faces
    losses = {}
    for name, autocast in (("fp32", False), ("bf16", True)):
        torch.manual_seed(0)
        module = ElimModule(build_model(config.model.to_model_dict()), config,
                            preprocess_for(config), augment=None, total_steps=10)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss, logs = module.compute_loss(batch, step=0)
        loss.backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads) and grads
        losses[name] = {k: float(logs[k]) for k in ("loss_va", "loss_main")}
    for key in ("loss_va", "loss_main"):
        assert losses["bf16"][key] == pytest.approx(losses["fp32"][key], rel=0.05), key


def test_bf16_mixed_training_run_is_finite(tiny_cache, tiny_config):
    from elim.training import fit

    result = fit(tiny_config(train={"epochs": 1, "precision": "bf16-mixed", "warmup": 0.0}),
                 None, cache=tiny_cache)
    assert result.metrics["skipped_steps"]["skipped_steps"] == 0
    assert all(math.isfinite(v) for part in ("val", "test")
               for v in result.metrics[part].values())
