"""Property tests of the identity matching layer and of Sinkhorn on matching-shaped problems.

Random identity sizes (1…256 samples), feature scales (1e-4…1e4), entropic eps (1e-3…1),
identities sharing identical features, non-negative (bn-relu-like) or signed features and the
masses of Eq. 8: every output is finite, every gradient is finite, and the marginals hold
whenever the solver reports convergence. Bounded (about 30 examples each, no deadline).
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elim.matching import IdentityMatching, normalise_masses
from elim.ot import sinkhorn

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLACK = 2e-5  # float32 rounding of plan sums over up to 256 entries


@st.composite
def batches(draw):
    """(z, identity codes, labels) with 2–3 identities of 1–256 samples each."""
    sizes = draw(st.lists(st.integers(1, 256), min_size=2, max_size=3))
    d = draw(st.sampled_from([4, 16, 32]))
    scale = 10.0 ** draw(st.floats(-4, 4))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    codes = torch.cat([torch.full((s,), 3 * i + 1) for i, s in enumerate(sizes)])
    z = torch.randn(len(codes), d, generator=gen)
    if draw(st.booleans()):
        z = z.relu()  # like the default bn-relu feature layer: z >= 0
    z = z * scale
    start = 0
    for s in sizes:  # some identities have one feature vector repeated
        if draw(st.booleans()):
            z[start:start + s] = z[start]
        start += s
    if draw(st.booleans()):  # two identities with exactly the same features
        z[-sizes[-1]:] = z[0] if sizes[0] < sizes[-1] else z[:sizes[-1]]
    y = torch.rand(len(codes), 2, generator=gen) * 2 - 1
    return z, codes, y, seed


def _check_marginals(out, tol: float) -> None:
    plan = out.plan.double()
    rows = (plan.sum(-1) - out.a).abs().sum(-1)
    cols = (plan.sum(-2) - out.b).abs().sum(-1)
    assert (cols <= SLACK).all()
    assert (rows <= tol + SLACK).all()


@SETTINGS
@given(case=batches(), eps=st.floats(1e-3, 1.0), weights=st.sampled_from(["relevance", "self"]),
       grad=st.sampled_from(["detach", "autodiff"]))
def test_matching_is_finite_and_balanced(case, eps, weights, grad):
    z, codes, y, seed = case
    tol = 1e-4
    layer = IdentityMatching(n_identities=3, k=256, eps=eps, weights=weights, sampling="none",
                             grad=grad, max_iter=20 if grad == "autodiff" else 100, tol=tol)
    z = z.clone().requires_grad_(True)
    out = layer(z, codes, y, generator=torch.Generator().manual_seed(seed))
    n_ref = int(out.reference_index.numel())
    assert out.z_hat.shape == (len(codes) - n_ref, z.shape[1])  # every target sample matched
    for t in (out.z_hat, out.mu, out.sigma, out.plan, out.cost, out.a, out.b):
        assert torch.isfinite(t).all()
    assert ((out.mu >= 0) & (out.mu <= 2)).all()
    assert (out.sigma >= 0).all()
    assert torch.isfinite(torch.as_tensor(out.marginal_error))
    if out.converged:
        _check_marginals(out, tol)
    (out.z_hat.square().mean() + out.mu.sum()).backward()
    assert torch.isfinite(z.grad).all()


@SETTINGS
@given(case=batches(), eps=st.floats(1e-3, 1.0), k=st.integers(1, 12))
def test_gumbel_sampled_matching_is_finite(case, eps, k):
    z, codes, y, seed = case
    layer = IdentityMatching(n_identities=3, k=k, eps=eps, max_iter=100)
    out = layer(z, codes, y, generator=torch.Generator().manual_seed(seed))
    assert out.z_hat.shape[0] <= (out.targets.numel()) * k
    assert torch.isfinite(out.z_hat).all() and torch.isfinite(out.plan).all()
    assert len(set(out.index.tolist())) == out.index.numel()  # without replacement


@st.composite
def ot_problems(draw):
    """Matching-shaped OT: cosine cost of (T, n, m) features with floored Eq. 8 masses."""
    n_t = draw(st.integers(1, 3))
    n = draw(st.integers(1, 256))
    m = draw(st.integers(1, 256))
    scale = 10.0 ** draw(st.floats(-4, 4))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    zr = torch.randn(n, 8, generator=gen).relu() * scale
    zt = torch.randn(n_t, m, 8, generator=gen).relu() * scale
    if draw(st.booleans()):
        zt[:] = zr[0]  # every target sample identical to a reference sample: zero-cost column
    mask_b = torch.rand(n_t, m, generator=gen) < 0.7
    mask_b[:, 0] = True
    zt = zt * mask_b.unsqueeze(-1)
    rn = torch.nn.functional.normalize(zr, dim=-1, eps=1e-8)
    tn = torch.nn.functional.normalize(zt, dim=-1, eps=1e-8)
    cost = (1 - torch.einsum("nd,tmd->tnm", rn, tn)).clamp(0, 2)
    mean_t = zt.sum(1) / mask_b.sum(1, keepdim=True)
    a = normalise_masses((mean_t @ zr.T).relu(), torch.ones(n_t, n, dtype=torch.bool), 1e-3)
    b = normalise_masses((zt @ zr.mean(0)).relu(), mask_b, 1e-3)
    return cost, a, b, mask_b


@SETTINGS
@given(problem=ot_problems(), eps=st.floats(1e-3, 1.0))
def test_sinkhorn_on_matching_problems(problem, eps):
    cost, a, b, mask_b = problem
    tol = 1e-4
    res = sinkhorn(cost, a, b, eps=eps, tol=tol, max_iter=200, mask_b=mask_b)
    for t in (res.plan, res.f, res.g, res.value, res.marginal_error):
        assert torch.isfinite(t).all()
    assert (res.plan >= 0).all()
    assert (res.plan.transpose(1, 2)[~mask_b] == 0).all()
    cols = (res.plan.double().sum(-2) - b).abs().sum(-1)
    rows = (res.plan.double().sum(-1) - a).abs().sum(-1)
    assert (cols <= SLACK).all()
    assert (rows[res.converged] <= tol + SLACK).all()
    assert res.converged.equal(res.marginal_error <= tol)
