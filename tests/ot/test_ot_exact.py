"""elim.ot.exact (network simplex), elim.ot.qp (qpth) and the elim.ot.solve entry point."""

from __future__ import annotations

import sys

import numpy as np
import ot
import pytest
import torch
from ot_cases import cosine_cost, random_masses

from elim.errors import ElimError
from elim.ot import (
    ParameterError,
    exact,
    qp,
    sinkhorn,
    solve,
    solver_options,
    solver_unavailable,
)


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
    with pytest.raises(ParameterError, match="grad must be 'detach' with solver 'exact'.*"
                       "not differentiable"):
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
    with pytest.raises(ElimError, match="solver must be one of 'sinkhorn', 'exact', 'qp'"):
        solve(cost, solver="lp")


@pytest.mark.parametrize(
    "solver, option, owner",
    [("exact", "eps", "sinkhorn"), ("exact", "tol", "sinkhorn, qp"), ("exact", "ridge", "qp"),
     ("qp", "eps", "sinkhorn"), ("sinkhorn", "ridge", "qp")],
)
def test_solve_refuses_options_of_other_solvers(solver, option, owner):
    cost = cosine_cost(1, 3, 3, seed=35)
    with pytest.raises(ElimError) as err:
        solve(cost, solver=solver, **{option: 0.1})
    message = str(err.value)
    assert f"solver {solver!r} has no option {option!r}" in message
    assert ", ".join(solver_options(solver)) in message  # the options it does take
    assert f"{option} is an option of {owner}" in message
    with pytest.raises(ElimError, match="no option 'typo'; its options are"):
        solve(cost, solver=solver, typo=1)


def test_each_solver_owns_its_options():
    assert solver_options("sinkhorn") == ("eps", "max_iter", "tol", "grad", "mask_a", "mask_b")
    assert solver_options("exact") == ("max_iter", "grad", "mask_a", "mask_b")
    assert solver_options("qp") == ("tol", "ridge", "max_iter", "grad", "mask_a", "mask_b")
    assert solver_unavailable("sinkhorn") is None and solver_unavailable("exact") is None


@pytest.mark.parametrize("solver", ["sinkhorn", "exact", "qp"])
def test_a_batch_of_no_problems_gives_an_empty_result(solver):
    for cost in (torch.zeros(0, 4, 3, dtype=torch.float64), np.zeros((0, 4, 3))):
        res = solve(cost, solver=solver)
        assert res.plan.shape == (0, 4, 3) and res.f.shape == (0, 4) and res.g.shape == (0, 3)
        assert res.value.shape == res.converged.shape == res.marginal_error.shape == (0,)
        assert res.plan.dtype == torch.float64 and res.solver == solver and res.all_converged
    masks = solve(torch.zeros(0, 2, 2), torch.zeros(0, 2), torch.zeros(0, 2), solver=solver,
                  mask_b=torch.zeros(0, 2, dtype=torch.bool))
    assert masks.plan.shape == (0, 2, 2)


@pytest.mark.parametrize(
    "function, kwargs, message",
    [
        (exact, {"max_iter": 0}, r"max_iter must be an integer >= 1, got 0"),
        (exact, {"max_iter": 2.5}, r"max_iter must be an integer >= 1, got 2.5"),
        (exact, {"grad": "implicit"}, r"grad must be one of 'detach', 'autodiff'"),
        (qp, {"ridge": 0.0}, r"ridge must be a finite number > 0 \(cost units\), got 0.0"),
        (qp, {"ridge": float("nan")}, r"ridge must be a finite number > 0"),
        (qp, {"tol": -1}, r"tol must be a finite number >= 0, got -1"),
        (qp, {"max_iter": True}, r"max_iter must be an integer >= 1, got True"),
    ],
)
def test_exact_and_qp_options_are_checked(function, kwargs, message):
    with pytest.raises(ElimError, match=message):
        function(cosine_cost(1, 3, 3, seed=36), **kwargs)


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
    out = qp(cost, a, b, grad="autodiff", mask_a=mask_a, mask_b=mask_b)
    (out.plan * torch.rand_like(out.plan)).sum().backward()
    assert torch.isfinite(cost.grad).all()
