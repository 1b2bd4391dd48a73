"""Property tests of elim.ot.sinkhorn over shapes, cost scales, eps, dtypes and padding."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elim.ot import sinkhorn


@st.composite
def problems(draw):
    n_batch = draw(st.integers(1, 3))
    n, m = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n_batch, n, 6, generator=gen), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(n_batch, m, 6, generator=gen), dim=-1)
    scale = 10.0 ** draw(st.floats(-4, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    cost = ((1.0 - x @ y.transpose(1, 2)) * scale).to(dtype)
    mask_a = torch.rand(n_batch, n, generator=gen) < 0.8
    mask_b = torch.rand(n_batch, m, generator=gen) < 0.8
    mask_a[:, 0] = True
    mask_b[:, -1] = True
    if not draw(st.booleans()):
        mask_a = mask_b = None
    eps = 10.0 ** draw(st.floats(-3, 0)) * scale
    return cost, mask_a, mask_b, eps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_always_finite_and_marginals_hold_when_converged(case):
    cost, mask_a, mask_b, eps = case
    tol = 1e-4
    res = sinkhorn(cost, eps=eps, tol=tol, max_iter=300, mask_a=mask_a, mask_b=mask_b)
    n_batch, n, m = cost.shape
    assert res.plan.shape == (n_batch, n, m) and res.f.shape == (n_batch, n)
    for out in (res.plan, res.f, res.g, res.value, res.marginal_error):
        assert torch.isfinite(out).all()
    assert (res.plan >= 0).all()
    real_a = torch.ones(n_batch, n, dtype=torch.bool) if mask_a is None else mask_a
    real_b = torch.ones(n_batch, m, dtype=torch.bool) if mask_b is None else mask_b
    assert (res.plan[~real_a] == 0).all()
    assert (res.plan.transpose(1, 2)[~real_b] == 0).all()
    a = real_a.to(cost.dtype) / real_a.sum(-1, keepdim=True)
    b = real_b.to(cost.dtype) / real_b.sum(-1, keepdim=True)
    rows = (res.plan.sum(-1) - a).abs().sum(-1)
    cols = (res.plan.sum(-2) - b).abs().sum(-1)
    slack = 1e-4 if cost.dtype == torch.float32 else 1e-9
    assert (cols <= slack).all()
    assert (rows[res.converged] <= tol + slack).all()
    assert res.converged.equal(res.marginal_error <= tol)
