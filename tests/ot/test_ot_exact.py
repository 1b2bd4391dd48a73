"""elim.ot.exact (network simplex, qpth) and the elim.ot.solve entry point."""

from __future__ import annotations

import sys

import numpy as np
import ot
import pytest
import torch
from ot_cases import cosine_cost, random_masses

from elim.errors import ElimError
from elim.ot import exact, sinkhorn, solve


def padded_batch(sizes, seed=0):
    n = max(s[0] for s in sizes)
    m = max(s[1] for s in sizes)
    mask_a = torch.zeros(len(sizes), n, dtype=torch.bool)
    mask_b = torch.zeros(len(sizes), m, dtype=torch.bool)
    for i, (ni, mi) in enumerate(sizes):
        mask_a[i, :ni], mask_b[i, :mi] = True, True
    cost = cosine_cost(len(sizes), n, m, seed=seed)
    a = random_masses(len(sizes), n, seed=seed + 1, mask=mask_a)
    b = random_masses(len(sizes), m, seed=seed + 2, mask=mask_b)
    return cost, a, b, mask_a, mask_b


def test_emd_matches_pot_with_unequal_sizes():
    sizes = [(4, 6), (6, 3), (5, 5)]
    cost, a, b, mask_a, mask_b = padded_batch(sizes, seed=30)
    res = exact(cost, a, b, mask_a=mask_a, mask_b=mask_b)
    assert res.solver == "exact" and res.n_iter is None and res.all_converged
    for i, (ni, mi) in enumerate(sizes):
        ref = ot.emd2(a[i, :ni].numpy(), b[i, :mi].numpy(), cost[i, :ni, :mi].numpy())
        assert abs(float(res.value[i]) - ref) < 1e-12
        torch.testing.assert_close(res.plan[i, :ni].sum(-1), a[i, :ni])
        torch.testing.assert_close(res.plan[i, :, :mi].sum(-2), b[i, :mi])
        assert (res.plan[i, ni:] == 0).all() and (res.plan[i, :, mi:] == 0).all()
    # Dual feasibility and complementary slackness on real entries.
    mask = mask_a[:, :, None] & mask_b[:, None, :]
    slack = (cost - res.f[:, :, None] - res.g[:, None, :])[mask]
    assert slack.min() > -1e-10
    assert slack[(res.plan > 0)[mask]].abs().max() < 1e-10
    assert (res.marginal_error < 1e-12).all()


def test_emd_value_gradient_is_the_plan_and_autodiff_is_refused():
    cost = cosine_cost(2, 4, 4, seed=31).requires_grad_()
    res = exact(cost)
    res.value.sum().backward()
    torch.testing.assert_close(cost.grad, res.plan)
    with pytest.raises(ElimError, match="not differentiable"):
        exact(cost, grad="autodiff")


def test_emd_float32_and_unbatched():
    cost = cosine_cost(1, 5, 3, seed=32, dtype=torch.float32)[0]
    res = exact(cost)
    assert res.plan.shape == (5, 3) and res.plan.dtype == torch.float32
    torch.testing.assert_close(res.plan.sum(0), torch.full((3,), 1 / 3))


def test_solve_dispatches_to_every_solver():
    cost = cosine_cost(2, 5, 5, seed=33)
    torch.testing.assert_close(solve(cost, solver="exact").plan, exact(cost).plan)
    torch.testing.assert_close(
        solve(cost, solver="sinkhorn", eps=0.1).plan, sinkhorn(cost, eps=0.1).plan
    )
    with pytest.raises(ElimError, match="solver"):
        solve(cost, solver="lp")
    with pytest.raises(ElimError, match="method"):
        exact(cost, method="simplex")


def test_qp_without_qpth_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "qpth", None)
    monkeypatch.setitem(sys.modules, "qpth.qp", None)
    with pytest.raises(ElimError, match="pip install --no-deps qpth"):
        solve(cosine_cost(1, 3, 3), solver="qp")


@pytest.mark.needs_qpth
def test_qp_matches_emd_with_padding_and_is_differentiable():
    sizes = [(4, 5), (5, 3)]
    cost, a, b, mask_a, mask_b = padded_batch(sizes, seed=34)
    ref = exact(cost, a, b, mask_a=mask_a, mask_b=mask_b)
    res = solve(cost, a, b, solver="qp", mask_a=mask_a, mask_b=mask_b)
    assert res.solver == "qp" and res.all_converged
    torch.testing.assert_close(res.value, ref.value, atol=1e-5, rtol=0)
    np.testing.assert_allclose(res.plan.numpy(), ref.plan.numpy(), atol=1e-4)
    mask = mask_a[:, :, None] & mask_b[:, None, :]
    assert (res.plan[~mask] == 0).all()
    # Potentials recovered on the support (up to the ridge term).
    gap = (res.f[:, :, None] + res.g[:, None, :] - cost)[(res.plan > 1e-6) & mask]
    assert gap.abs().max() < 1e-4

    cost = cost.clone().requires_grad_()
    out = exact(cost, a, b, method="qp", grad="autodiff", mask_a=mask_a, mask_b=mask_b)
    (out.plan * torch.rand_like(out.plan)).sum().backward()
    assert torch.isfinite(cost.grad).all()
