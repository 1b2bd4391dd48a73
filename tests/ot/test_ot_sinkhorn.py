"""elim.ot.sinkhorn: agreement with POT, padding, marginals, float32 robustness, gradients."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from ot_cases import cosine_cost, random_masses

from elim.errors import ElimError
from elim.ot import OTResult, sinkhorn

TIGHT = {"tol": 1e-13, "max_iter": 20000}


def pot_plan(a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, eps: float) -> np.ndarray:
    return ot.sinkhorn(
        a.numpy(),
        b.numpy(),
        cost.numpy(),
        eps,
        method="sinkhorn_log",
        stopThr=1e-13,
        numItermax=100000,
    )


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_matches_pot_equal_sizes(eps):
    cost = cosine_cost(4, 7, 7, seed=1)
    a, b = random_masses(4, 7, seed=2), random_masses(4, 7, seed=3)
    res = sinkhorn(cost, a, b, eps=eps, **TIGHT)
    assert isinstance(res, OTResult) and res.solver == "sinkhorn"
    assert res.all_converged
    for i in range(4):
        np.testing.assert_allclose(
            res.plan[i].numpy(), pot_plan(a[i], b[i], cost[i], eps), atol=1e-6
        )
    # The documented form of the plan and of the value.
    gibbs = torch.exp((res.f[:, :, None] + res.g[:, None, :] - cost) / eps)
    torch.testing.assert_close(res.plan, gibbs, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(res.value, (cost * res.plan).sum((1, 2)))


def test_matches_pot_unequal_sizes_in_one_batch():
    sizes = [(3, 5), (6, 2), (4, 4), (1, 6)]
    n, m = 6, 6
    cost = cosine_cost(len(sizes), n, m, seed=4)
    mask_a = torch.zeros(len(sizes), n, dtype=torch.bool)
    mask_b = torch.zeros(len(sizes), m, dtype=torch.bool)
    for i, (ni, mi) in enumerate(sizes):
        mask_a[i, :ni], mask_b[i, :mi] = True, True
    cost = cost.masked_fill(~(mask_a[:, :, None] & mask_b[:, None, :]), float("nan"))
    a = random_masses(len(sizes), n, seed=5, mask=mask_a)
    b = random_masses(len(sizes), m, seed=6, mask=mask_b)
    res = sinkhorn(cost, a, b, eps=0.1, mask_a=mask_a, mask_b=mask_b, **TIGHT)
    for out in (res.plan, res.f, res.g, res.value, res.marginal_error):
        assert torch.isfinite(out).all()
    for i, (ni, mi) in enumerate(sizes):
        ref = pot_plan(a[i, :ni], b[i, :mi], cost[i, :ni, :mi], 0.1)
        np.testing.assert_allclose(res.plan[i, :ni, :mi].numpy(), ref, atol=1e-6)
        assert (res.plan[i, ni:] == 0).all() and (res.plan[i, :, mi:] == 0).all()
        assert (res.f[i, ni:] == 0).all() and (res.g[i, mi:] == 0).all()


def test_zero_mass_is_padding_without_masks():
    cost = cosine_cost(2, 5, 4, seed=7)
    mask_a = torch.tensor([[True] * 5, [True, True, False, True, False]])
    a = random_masses(2, 5, seed=8, mask=mask_a)
    b = random_masses(2, 4, seed=9)
    by_mass = sinkhorn(cost, a, b, eps=0.1, **TIGHT)
    by_mask = sinkhorn(cost, a, b, eps=0.1, mask_a=mask_a, **TIGHT)
    assert (by_mass.plan[1, ~mask_a[1]] == 0).all()
    torch.testing.assert_close(by_mass.plan, by_mask.plan)


def test_default_masses_are_uniform_over_real_entries():
    cost = cosine_cost(2, 4, 3, seed=10)
    mask_b = torch.tensor([[True, True, True], [True, False, True]])
    res = sinkhorn(cost, eps=0.1, mask_b=mask_b, **TIGHT)
    torch.testing.assert_close(res.plan.sum(-1), torch.full((2, 4), 0.25, dtype=torch.float64))
    torch.testing.assert_close(
        res.plan.sum(-2)[1], torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    )


def test_marginals_within_tolerance_float32_defaults():
    cost = cosine_cost(9, 10, 12, dim=64, seed=11, dtype=torch.float32)
    res = sinkhorn(cost)
    assert res.plan.dtype == torch.float32 and res.all_converged
    assert res.n_iter < 1000
    rows = (res.plan.sum(-1) - 0.1).abs().sum(-1)
    torch.testing.assert_close(res.marginal_error, rows, atol=1e-6, rtol=1e-3)
    assert (rows <= 1e-5).all()
    torch.testing.assert_close(res.plan.sum(-2), torch.full((9, 12), 1 / 12), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [10, 256])
def test_float32_small_eps_stays_finite(k):
    cost = cosine_cost(2, k, k, dim=16, seed=12, dtype=torch.float32)
    mask_b = torch.ones(2, k, dtype=torch.bool)
    mask_b[1, k // 2 :] = False
    res = sinkhorn(cost, eps=1e-3, max_iter=100, mask_b=mask_b)
    for out in (res.plan, res.f, res.g, res.value, res.marginal_error):
        assert torch.isfinite(out).all()
    assert (res.plan >= 0).all() and (res.plan[1, :, k // 2 :] == 0).all()
    # The last update is a column update: columns hold whatever the row error is.
    cols = res.plan.sum(-2)
    torch.testing.assert_close(cols[0], torch.full((k,), 1 / k), atol=1e-5, rtol=1e-3)
    assert res.marginal_error.max() < 0.5


def test_small_eps_approaches_exact_optimum():
    cost = cosine_cost(2, 6, 6, seed=13)
    res = sinkhorn(cost, eps=1e-3, tol=1e-9, max_iter=50000)
    a = np.full(6, 1 / 6)
    for i in range(2):
        assert abs(float(res.value[i]) - ot.emd2(a, a, cost[i].numpy())) < 5e-3


def test_permuting_samples_permutes_the_plan():
    cost = cosine_cost(3, 6, 5, seed=14)
    a, b = random_masses(3, 6, seed=15), random_masses(3, 5, seed=16)
    pr, pc = torch.randperm(6), torch.randperm(5)
    res = sinkhorn(cost, a, b, eps=0.07, **TIGHT)
    perm = sinkhorn(cost[:, pr][:, :, pc], a[:, pr], b[:, pc], eps=0.07, **TIGHT)
    torch.testing.assert_close(perm.plan, res.plan[:, pr][:, :, pc], atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(perm.value, res.value)


def test_cost_and_eps_scale_together():
    cost = cosine_cost(2, 5, 6, seed=17)
    base = sinkhorn(cost, eps=0.05, **TIGHT)
    scaled = sinkhorn(cost * 1e3, eps=50.0, **TIGHT)
    torch.testing.assert_close(scaled.plan, base.plan, atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(scaled.f, base.f * 1e3, atol=1e-6, rtol=1e-7)


def test_unbatched_input_gives_unbatched_result():
    cost = cosine_cost(1, 4, 3, seed=18)[0]
    res = sinkhorn(cost, eps=0.1)
    assert res.plan.shape == (4, 3) and res.f.shape == (4,) and res.g.shape == (3,)
    assert res.value.shape == () and res.converged.shape == () and bool(res.converged)


def test_max_iter_reached_reports_not_converged():
    cost = cosine_cost(2, 8, 8, seed=19)
    res = sinkhorn(cost, eps=1e-3, max_iter=3, tol=1e-9)
    assert res.n_iter == 3 and not res.converged.any()
    assert (res.marginal_error > 1e-9).all()


def test_half_precision_and_numpy_inputs():
    cost = cosine_cost(2, 4, 4, seed=20, dtype=torch.float32)
    half = sinkhorn(cost.half(), eps=0.1)
    assert half.plan.dtype == torch.float32
    from_numpy = sinkhorn(cost.numpy(), eps=0.1)
    torch.testing.assert_close(from_numpy.plan, sinkhorn(cost, eps=0.1).plan)


def test_detach_keeps_plan_constant_and_value_gradient_is_the_plan():
    cost = cosine_cost(2, 4, 5, seed=21).requires_grad_()
    res = sinkhorn(cost, eps=0.1, grad="detach")
    assert not res.plan.requires_grad and not res.f.requires_grad
    res.value.sum().backward()
    torch.testing.assert_close(cost.grad, res.plan)


def test_autodiff_gradcheck():
    cost = cosine_cost(2, 3, 4, seed=22).requires_grad_()
    a = random_masses(2, 3, seed=23).requires_grad_()
    mask_b = torch.tensor([[True, True, True, True], [True, True, False, True]])
    b = random_masses(2, 4, seed=24, mask=mask_b)

    def plan_and_value(c, mass_a):
        res = sinkhorn(c, mass_a, b, eps=0.1, tol=0.0, max_iter=25, grad="autodiff", mask_b=mask_b)
        return res.plan, res.value, res.f

    assert torch.autograd.gradcheck(plan_and_value, (cost, a), eps=1e-6, atol=1e-5)


def test_autodiff_gradients_finite_with_padding_and_small_eps():
    cost = cosine_cost(2, 5, 5, seed=25).requires_grad_()
    mask_a = torch.tensor([[True] * 5, [True, True, True, False, False]])
    res = sinkhorn(cost, eps=1e-3, max_iter=200, grad="autodiff", mask_a=mask_a)
    (res.plan * torch.rand(2, 5, 5, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(cost.grad).all()
    assert (cost.grad[1, 3:] == 0).all()


@pytest.mark.parametrize("scale", [1e8, 1e10])
def test_huge_cost_scales_stay_finite_in_float32(scale):
    """eps stays 0.05 while the cost grows: a nearly unregularised problem, run in float64
    (float32 cannot resolve C / eps ~ 1e11), finite, and not converged rather than NaN."""
    cost = cosine_cost(3, 6, 7, dim=4, seed=26, dtype=torch.float32) * scale
    res = sinkhorn(cost, max_iter=200)
    assert res.plan.dtype == torch.float32
    for out in (res.plan, res.f, res.g, res.value, res.marginal_error):
        assert torch.isfinite(out).all()
    assert (res.plan >= 0).all() and (res.marginal_error <= 2 + 1e-6).all()
    assert res.converged.equal(res.marginal_error <= 1e-5)
    torch.testing.assert_close(res.plan.sum(-2), torch.full((3, 7), 1 / 7), atol=1e-6, rtol=0)
    ref = sinkhorn(cost.double(), max_iter=200)  # the same problem solved in float64
    torch.testing.assert_close(res.plan.double(), ref.plan, atol=1e-6, rtol=0)


def test_cost_and_eps_scaled_by_1e8_in_float32_give_the_same_plan():
    cost = cosine_cost(2, 5, 6, seed=27, dtype=torch.float32)
    base = sinkhorn(cost, eps=0.05)
    scaled = sinkhorn(cost * 1e8, eps=0.05 * 1e8)
    assert scaled.all_converged
    torch.testing.assert_close(scaled.plan, base.plan, atol=1e-6, rtol=1e-4)


def test_eps_that_float64_cannot_resolve_is_refused_by_name():
    cost = cosine_cost(2, 4, 4, seed=28) * 1e20
    with pytest.raises(ElimError, match=r"eps = 0.05 is too small for costs up to 1.*e\+20"):
        sinkhorn(cost)
    scaled = sinkhorn(cost, eps=0.1 * 1e20)  # eps in cost units: the unscaled problem's plan
    torch.testing.assert_close(scaled.plan, sinkhorn(cost / 1e20, eps=0.1).plan)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": 0.0}, r"eps must be a finite number > 0 \(cost units\), got 0.0"),
        ({"eps": float("nan")}, "eps must be a finite number > 0"),
        ({"eps": "0.1"}, "eps must be a finite number > 0"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
        ({"max_iter": 1.5}, "max_iter must be an integer >= 1, got 1.5"),
        ({"tol": -1.0}, "tol must be a finite number >= 0, got -1.0"),
        ({"grad": "implicit"}, "grad must be one of 'detach', 'autodiff', got 'implicit'"),
        ({"a": torch.tensor([0.5, 0.6, -0.1])}, "non-negative"),
        ({"a": torch.tensor([0.2, 0.2, 0.2])}, "same total mass"),
        ({"a": torch.ones(4)}, "shape"),
        ({"mask_a": torch.zeros(3, dtype=torch.bool)}, "no real row"),
    ],
)
def test_user_errors(kwargs, message):
    cost = torch.rand(3, 2, dtype=torch.float64)
    with pytest.raises(ElimError, match=message):
        sinkhorn(cost, **kwargs)


def test_non_finite_cost_on_real_entries_is_an_error():
    cost = torch.rand(2, 3, 3)
    cost[1, 0, 2] = float("inf")
    with pytest.raises(ElimError, match="finite"):
        sinkhorn(cost)
    with pytest.raises(ElimError, match="shape"):
        sinkhorn(torch.rand(3))
