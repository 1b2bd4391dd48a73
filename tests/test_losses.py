"""elim.losses against numpy formulas; gradients and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elim.losses import ccc, ccc_loss, main_loss, mse, pcc, pcc_loss, va_loss

RNG = np.random.default_rng(0)
P = RNG.uniform(-1, 1, size=(17, 2))
T = 0.6 * P + 0.3 * RNG.uniform(-1, 1, size=(17, 2)) + 0.1


def _np_stats(p, t):
    mp, mt = p.mean(0), t.mean(0)
    vp, vt = p.var(0, ddof=0), t.var(0, ddof=0)
    cov = ((p - mp) * (t - mt)).mean(0)
    return mp, mt, vp, vt, cov


def test_values_match_numpy():
    p, t = torch.tensor(P), torch.tensor(T)
    mp, mt, vp, vt, cov = _np_stats(P, T)
    assert mse(p, t).item() == pytest.approx(((P - T) ** 2).mean(0).sum(), rel=1e-12)
    np.testing.assert_allclose(pcc(p, t, eps=0).numpy(), cov / np.sqrt(vp * vt), rtol=1e-12)
    np.testing.assert_allclose(
        ccc(p, t, eps=0).numpy(), 2 * cov / (vp + vt + (mp - mt) ** 2), rtol=1e-12
    )
    # default eps changes values negligibly
    np.testing.assert_allclose(pcc(p, t).numpy(), cov / np.sqrt(vp * vt), rtol=1e-6)
    assert pcc_loss(p, t, eps=0).item() == pytest.approx(1 - (cov / np.sqrt(vp * vt)).mean())
    assert ccc_loss(p, t, eps=0).item() == pytest.approx(
        1 - (2 * cov / (vp + vt + (mp - mt) ** 2)).mean()
    )


def test_va_loss_weights_and_parts():
    p, t = torch.tensor(P), torch.tensor(T)
    loss, parts = va_loss(p, t, w_mse=2.0, w_pcc=0.5, w_ccc=0.25)
    assert set(parts) == {"mse", "pcc_loss", "ccc_loss"}
    expect = 2.0 * parts["mse"] + 0.5 * parts["pcc_loss"] + 0.25 * parts["ccc_loss"]
    assert loss.item() == pytest.approx(expect.item(), rel=1e-12)
    assert parts["mse"].item() == pytest.approx(mse(p, t).item())


def test_gradients_flow_and_are_finite_for_constant_predictions():
    t = torch.tensor(T, dtype=torch.float32)
    for pred0 in (torch.tensor(P, dtype=torch.float32), torch.full((17, 2), 0.3)):
        pred = pred0.clone().requires_grad_(True)
        loss, _ = va_loss(pred, t)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
        assert pred.grad.abs().sum() > 0
    const = torch.full((17, 2), 0.3)
    assert pcc_loss(const, t).item() == pytest.approx(1.0, abs=1e-4)
    assert ccc_loss(const, t).item() == pytest.approx(1.0, abs=1e-6)


def test_gradient_descent_on_va_loss_improves_ccc():
    t = torch.tensor(T, dtype=torch.float32)
    pred = 0.01 * torch.randn(17, 2, generator=torch.Generator().manual_seed(0))
    before = ccc_loss(pred, t).item()
    for _ in range(300):  # plain gradient descent
        pred.requires_grad_(True)
        (grad,) = torch.autograd.grad(va_loss(pred, t)[0], pred)
        pred = (pred - 0.05 * grad).detach()
    after = ccc_loss(pred, t).item()
    assert before > 0.8 and after < 0.05


def test_main_loss_and_empty():
    p = torch.tensor(P, requires_grad=True)
    t = torch.tensor(T)
    assert main_loss(p, t).item() == pytest.approx(((P - T) ** 2).mean(0).sum())
    empty = torch.zeros(0, 2, requires_grad=True)
    loss = main_loss(empty, torch.zeros(0, 2))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()  # must not raise
    with pytest.raises(ValueError):
        main_loss(torch.zeros(3, 2), torch.zeros(4, 2))
