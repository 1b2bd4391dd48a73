"""elim.matching: grouping, Gumbel-top-k (Eq. 7), masses (Eq. 8), ID shift (Eq. 3), Eq. 4."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elim.errors import ElimError
from elim.losses import main_loss
from elim.matching import IdentityMatching, gumbel_topk_mask, normalise_masses
from elim.ot import ParameterError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(counts, d=8, seed=0, dtype=torch.float32):
    """Random features, identity codes (non-contiguous) and labels for the given group sizes."""
    g = _gen(seed)
    codes = torch.cat([torch.full((c,), 100 + 7 * i) for i, c in enumerate(counts)])
    z = torch.randn(len(codes), d, generator=g, dtype=dtype)
    y = torch.rand(len(codes), 2, generator=g, dtype=dtype) * 2 - 1
    return z, codes, y


# ---------------------------------------------------------------- Gumbel-top-k (Eq. 7)
def test_gumbel_never_picks_zero_norm_while_others_exist():
    scores = torch.tensor([[0.0, 0.5, 0.0, 0.9, 0.2, 0.0, 0.7]]).repeat(200, 1)
    mask = torch.ones_like(scores, dtype=torch.bool)
    keep = gumbel_topk_mask(scores, mask, k=3, generator=_gen(1))
    assert (keep.sum(1) == 3).all()
    assert not keep[:, scores[0] == 0].any()
    # k larger than the non-zero count: all non-zero kept, zeros fill the remaining slots
    keep6 = gumbel_topk_mask(scores, mask, k=6, generator=_gen(2))
    assert keep6[:, scores[0] > 0].all() and (keep6.sum(1) == 6).all()


def test_gumbel_keeps_all_when_count_le_k_and_never_padding():
    scores = torch.tensor([[0.3, 0.0, 0.1, 0.0], [0.5, 0.2, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    keep = gumbel_topk_mask(scores, mask, k=3, generator=_gen())
    assert keep[0].tolist() == [True, True, True, False]
    assert keep[1, :2].all() and keep[1].sum() == 3


def test_gumbel_deterministic_for_seed():
    scores = torch.rand(50, 20, generator=_gen(3))
    mask = torch.ones_like(scores, dtype=torch.bool)
    a = gumbel_topk_mask(scores, mask, 5, _gen(7))
    b = gumbel_topk_mask(scores, mask, 5, _gen(7))
    c = gumbel_topk_mask(scores, mask, 5, _gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gumbel_inclusion_follows_label_norm():
    scores = torch.tensor([[0.1, 0.2, 0.4, 0.8, 1.6, 3.2]]).repeat(20000, 1)
    mask = torch.ones_like(scores, dtype=torch.bool)
    freq = gumbel_topk_mask(scores, mask, 2, _gen(4)).double().mean(0)
    assert (freq.diff() > 0).all()  # strictly increasing with ||y||
    # k = 1 is a single categorical draw: P(i) = pi_i (binomial 4-sigma band)
    first = gumbel_topk_mask(scores, mask, 1, _gen(5)).double().mean(0)
    pi = scores[0].double() / scores[0].sum()
    band = 4 * torch.sqrt(pi * (1 - pi) / 20000)
    assert ((first - pi).abs() < band).all()


def test_gumbel_all_zero_labels_fall_back_to_uniform():
    scores = torch.zeros(20000, 5)
    mask = torch.ones_like(scores, dtype=torch.bool)
    freq = gumbel_topk_mask(scores, mask, 2, _gen(6)).double().mean(0)
    assert torch.allclose(freq, torch.full((5,), 0.4, dtype=torch.float64), atol=0.02)


# ---------------------------------------------------------------- masses (Eq. 8)
def test_normalise_masses_floor_and_degenerate():
    w = torch.tensor([[0.0, 1.0, 3.0, 9.0], [0.0, 0.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, False]])
    out = normalise_masses(w, mask, floor=0.1)
    assert torch.allclose(out.sum(1), torch.ones(2))
    assert torch.allclose(
        out[0], torch.tensor([0.1 / 3, 0.9 / 4 + 0.1 / 3, 0.9 * 3 / 4 + 0.1 / 3, 0])
    )
    assert torch.allclose(out[1], torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0]))  # all zero: uniform


def test_relevance_and_self_masses():
    z, codes, y = _batch([4, 5], d=6, seed=1)
    z[:4, 0] = -5.0  # make some reference dot products negative
    for weights in ("relevance", "self"):
        layer = IdentityMatching(weights=weights, sampling="none", mass_floor=0.0)
        out = layer(z, codes, y, generator=_gen(0))
        zr = z[out.reference_index].double()
        zt = z[out.target_index[0]].double()
        if weights == "relevance":
            a_hat = (zr @ zt.mean(0)).clamp_min(0)
            b_hat = (zt @ zr.mean(0)).clamp_min(0)
        else:
            a_hat, b_hat = zr.norm(dim=1), zt.norm(dim=1)
        assert torch.allclose(out.a[0].double(), a_hat / a_hat.sum(), atol=1e-6)
        assert torch.allclose(out.b[0].double(), b_hat / b_hat.sum(), atol=1e-6)


# ---------------------------------------------------------------- layer behaviour
def test_single_identity_or_empty_batch_gives_empty_output():
    layer = IdentityMatching()
    z = torch.randn(6, 4, requires_grad=True)
    out = layer(z, torch.full((6,), 3), torch.rand(6, 2), generator=_gen())
    assert out.empty and out.z_hat.shape == (0, 4) and out.index.numel() == 0
    loss = main_loss(out.z_hat[:, :2], torch.zeros(0, 2))
    loss.backward()
    assert out.mu.numel() == 0 and out.reference == -1
    out0 = layer(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0, 2))
    assert out0.empty


def test_identity_subset_reference_and_targets():
    z, codes, y = _batch([3] * 15, d=5, seed=2)
    layer = IdentityMatching(n_identities=10, sampling="none")
    out = layer(z, codes, y, generator=_gen(11))
    again = layer(z, codes, y, generator=_gen(11))
    assert out.targets.numel() == 9 and out.reference not in out.targets.tolist()
    assert torch.equal(out.targets, again.targets) and out.reference == again.reference
    assert set(codes[out.index].tolist()) == set(out.targets.tolist())
    assert (codes[out.reference_index] == out.reference).all()
    assert torch.equal(codes[out.index], out.targets[out.target_of])
    assert out.z_hat.shape == (27, 5) and out.plan.shape == (9, 3, 3)
    refs = {layer(z, codes, y, generator=_gen(s)).reference for s in range(20)}
    assert len(refs) > 3


def test_gumbel_sampling_inside_layer():
    z, codes, y = _batch([8, 8, 2], d=6, seed=3)
    y[0:5] = 0.0  # identity 100: only 3 non-zero labels (rows 5, 6, 7)
    y[8:10] = 0.0  # identity 107: two zero labels among 8
    layer = IdentityMatching(k=3)
    for seed in range(10):
        out = layer(z, codes, y, generator=_gen(seed))
        rows = torch.cat([out.reference_index, out.index]).tolist()
        counts = {c: sum(codes[r].item() == c for r in rows) for c in (100, 107, 114)}
        assert counts == {100: 3, 107: 3, 114: 2}
        assert {r for r in rows if codes[r] == 100} == {5, 6, 7}
        assert not {8, 9} & set(rows)


def _expression_batch(n_expr=6, ids=3, d=16, seed=0):
    """Features = expression direction + identity offset; rows shuffled within each identity."""
    g = _gen(seed)
    basis = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]
    expr, offsets = basis[:n_expr], basis[n_expr : n_expr + ids]
    zs, codes, labels = [], [], []
    for i in range(ids):
        order = torch.randperm(n_expr, generator=g)
        zs.append(expr[order] + 0.6 * offsets[i])
        codes.append(torch.full((n_expr,), i))
        labels.append(order)
    return torch.cat(zs).float(), torch.cat(codes), torch.cat(labels)


@pytest.mark.parametrize(
    "solver", ["sinkhorn", "exact", pytest.param("qp", marks=pytest.mark.needs_qpth)]
)
def test_plan_pairs_same_expression(solver):
    z, codes, expr = _expression_batch()
    y = torch.ones(len(z), 2) * 0.5
    sinkhorn = {"eps": 0.02, "max_iter": 500, "tol": 1e-6} if solver == "sinkhorn" else {}
    layer = IdentityMatching(solver=solver, k=10, **sinkhorn)
    for seed in range(1 if solver == "qp" else 3):  # qpth's interior point is slow on CPU
        out = layer(z, codes, y, generator=_gen(seed))
        ref_expr = expr[out.reference_index]
        for t in range(out.targets.numel()):
            cols = out.target_index[t]
            matched = out.plan[t].argmax(dim=0)  # reference sample receiving most of column j
            assert torch.equal(ref_expr[matched], expr[cols])
        # matched pairs have small shift, mismatched would cost ~1
        assert (out.mu < 0.5).all()


def test_permuting_within_identities_permutes_outputs():
    z, codes, y = _batch([5, 4, 6], d=7, seed=4)
    layer = IdentityMatching(sampling="none", eps=0.1, max_iter=300, tol=1e-7)
    perm = torch.cat([torch.randperm(5), 5 + torch.randperm(4), 9 + torch.randperm(6)])
    out1 = layer(z, codes, y, generator=_gen(3))
    out2 = layer(z[perm], codes[perm], y[perm], generator=_gen(3))
    assert out1.reference == out2.reference
    rows1 = out1.index
    rows2 = perm[out2.index]  # back to the original batch rows
    o1, o2 = torch.argsort(rows1), torch.argsort(rows2)
    assert torch.equal(rows1[o1], rows2[o2])
    assert torch.allclose(out1.z_hat[o1], out2.z_hat[o2], atol=1e-5)
    assert torch.allclose(out1.mu[o1], out2.mu[o2], atol=1e-6)


def test_mu_is_per_sample_plan_weighted_cost():
    z, codes, y = _batch([6, 5, 7], d=9, seed=5)
    out = IdentityMatching(sampling="none")(z, codes, y, generator=_gen(1))
    assert out.mu.shape == (18 - len(out.reference_index),)
    assert out.mu.unique().numel() == out.mu.numel()  # a vector, not one scalar
    for t in range(out.targets.numel()):
        sel = out.target_of == t
        m = int(sel.sum())
        plan, cost = out.plan[t, :, :m].double(), out.cost[t, :, :m].double()
        expect = (plan * cost).sum(0) / plan.sum(0)
        assert torch.allclose(out.mu[sel].double(), expect, atol=1e-6)
        assert torch.allclose(plan.sum(0), out.b[t, :m].double(), atol=1e-3)
    assert ((out.mu >= 0) & (out.mu <= 2)).all()


def test_normalisation_follows_eq4():
    z, codes, y = _batch([5, 5, 5], d=12, seed=6)
    z = z * 3 + 1
    layer = IdentityMatching(sampling="none", norm_eps=1e-6)
    out = layer(z, codes, y, generator=_gen(2))
    zt = z[out.index].double()
    mu = out.mu.double().unsqueeze(1)
    sigma = torch.sqrt(((zt - mu) ** 2).mean(1, keepdim=True))
    assert torch.allclose(out.sigma.double(), sigma.squeeze(1), rtol=1e-5)
    assert torch.allclose(out.z_hat.double(), (zt - mu) / (sigma + 1e-6), atol=1e-5)
    rms = out.z_hat.double().pow(2).mean(1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-5)


def test_gradients_detach_and_autodiff():
    z0, codes, y = _batch([4, 4, 4], d=6, seed=7)
    w = torch.randn(6, generator=_gen(9))
    grads = {}
    for mode in ("detach", "autodiff"):
        z = z0.clone().requires_grad_(True)
        out = IdentityMatching(sampling="none", grad=mode, eps=0.2)(z, codes, y, generator=_gen(1))
        (out.z_hat @ w).pow(2).sum().backward()
        assert torch.isfinite(z.grad).all()
        assert z.grad[out.index].abs().sum() > 0
        # the reference receives gradient only through C in mu (detach) / C and X* (autodiff)
        assert z.grad[out.reference_index].abs().sum() > 0
        grads[mode] = z.grad.clone()
    assert not torch.allclose(grads["detach"], grads["autodiff"])


def test_detach_mode_treats_plan_as_constant():
    z0, codes, y = _batch([3, 4], d=5, seed=8)
    z = z0.clone().requires_grad_(True)
    out = IdentityMatching(sampling="none", eps=0.3)(z, codes, y, generator=_gen(0))
    out.mu.sum().backward()
    # recompute mu with the returned (constant) plan and compare gradients
    z2 = z0.clone().requires_grad_(True)
    zr = torch.nn.functional.normalize(z2[out.reference_index], dim=1)
    zt = torch.nn.functional.normalize(z2[out.target_index[0]], dim=1)
    cost = 1 - zr @ zt.T
    plan = out.plan[0]
    ((cost * plan).sum(0) / plan.sum(0)).sum().backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-5)


def test_degenerate_features_are_finite():
    codes = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    y = torch.zeros(8, 2)
    for z in (
        torch.zeros(8, 4),
        torch.ones(8, 4),
        torch.full((8, 4), 1e4),
        torch.full((8, 4), -1e-4),
    ):
        z = z.clone().requires_grad_(True)
        out = IdentityMatching()(z, codes, y, generator=_gen())
        assert torch.isfinite(out.z_hat).all() and torch.isfinite(out.mu).all()
        out.z_hat.sum().backward()
        assert torch.isfinite(z.grad).all()


def test_half_precision_input():
    z, codes, y = _batch([4, 4], d=8, seed=9)
    out = IdentityMatching()(z.half(), codes, y.half(), generator=_gen())
    assert out.z_hat.dtype == torch.float32 and torch.isfinite(out.z_hat).all()


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_extreme_feature_scales_follow_eq4(scale):
    z, codes, y = _batch([6, 5, 7], d=16, seed=11)
    layer = IdentityMatching(sampling="none")
    base = layer(z, codes, y, generator=_gen(4))
    zs = (z * scale).requires_grad_(True)
    out = layer(zs, codes, y, generator=_gen(4))
    # The cosine cost and the masses do not depend on the feature scale: same plan, same mu.
    for name in ("cost", "plan", "a", "b", "mu"):
        torch.testing.assert_close(getattr(out, name), getattr(base, name), atol=1e-6, rtol=1e-5)
    # Eq. 4 on the scaled features, evaluated in float64.
    zt = zs.detach()[out.index].double()
    mu = out.mu.double().unsqueeze(1)
    sigma = (zt - mu).pow(2).mean(1).sqrt()
    torch.testing.assert_close(out.sigma.double(), sigma, rtol=1e-5, atol=0)
    expect = (zt - mu) / (sigma.unsqueeze(1) + 1e-6)
    torch.testing.assert_close(out.z_hat.double(), expect, rtol=1e-5, atol=1e-5)
    assert out.z_hat.pow(2).mean(1).sqrt().min() > 0.99  # unit RMS, not all-zero
    out.z_hat.sum().backward()
    assert torch.isfinite(zs.grad).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_identities": 1}, "n_identities must be an integer >= 2, got 1"),
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"k": 2.5}, "k must be an integer >= 1, got 2.5"),
        ({"eps": 1e-300}, r"eps must be a finite number >= 0.0001 \(units of the cosine cost"),
        ({"eps": float("inf")}, "eps must be a finite number >= 0.0001"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
        ({"tol": -1.0}, "tol must be a finite number >= 0, got -1.0"),
        ({"norm_eps": -1}, "norm_eps must be a finite number > 0, got -1"),
        ({"mass_floor": 1.0}, r"mass_floor must be a finite number in \[0, 1\), got 1.0"),
        ({"cos_eps": 0.0}, "cos_eps must be a finite number > 0, got 0.0"),
        ({"weights": "l2"}, "weights must be one of 'relevance', 'self', got 'l2'"),
        ({"sampling": "top"}, "sampling must be one of 'gumbel', 'none', got 'top'"),
        ({"solver": "lp"}, "solver must be one of 'sinkhorn', 'exact', 'qp', got 'lp'"),
        ({"grad": "implicit"}, "grad must be one of 'detach', 'autodiff', got 'implicit'"),
        ({"solver": "exact", "grad": "autodiff"}, "grad must be 'detach' with solver 'exact'"),
        ({"solver": "exact", "eps": 0.1}, "eps must be left at its default 0.05 with solver"),
        ({"solver": "qp", "max_iter": 7}, "max_iter must be left at its default 100 with solver"),
    ],
)
def test_invalid_parameters_are_named_with_their_range(kwargs, message):
    with pytest.raises(ParameterError, match=message) as err:
        IdentityMatching(**kwargs)
    assert isinstance(err.value, ElimError) and isinstance(err.value, ValueError)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        IdentityMatching()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), None)


@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    sizes=st.lists(st.integers(1, 64), min_size=2, max_size=4),
    log_scale=st.floats(-4, 4),
    eps=st.floats(1e-3, 1.0),
    identical=st.booleans(),
    weights=st.sampled_from(["relevance", "self"]),
    seed=st.integers(0, 2**16),
)
def test_property_finite(sizes, log_scale, eps, identical, weights, seed):
    z, codes, y = _batch(sizes, d=8, seed=seed)
    z = z * 10.0**log_scale
    if identical:
        z = z[:1].expand_as(z).clone()
    layer = IdentityMatching(k=10, eps=eps, weights=weights, max_iter=50)
    out = layer(z, codes, y, generator=_gen(seed))
    n_kept = sum(min(s, 10) for s in sizes)
    assert out.z_hat.shape[0] + out.reference_index.numel() == n_kept
    for t in (out.z_hat, out.mu, out.sigma, out.plan, out.a, out.b):
        assert torch.isfinite(t).all()
    assert np.isfinite(out.seconds)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input_with_cpu_generator():
    z, codes, y = _batch([6, 5, 7], d=8, seed=10)
    cpu = IdentityMatching(k=4)(z, codes, y, generator=_gen(3))
    gpu = IdentityMatching(k=4)(z.cuda(), codes.cuda(), y.cuda(), generator=_gen(3))
    assert torch.equal(cpu.index, gpu.index.cpu())
    assert torch.allclose(cpu.z_hat, gpu.z_hat.cpu(), atol=1e-4)


# ---------------------------------------------------------------- vector shift (extension)
def _offset_pair(n=6, d=8, seed=11):
    """A reference identity (code 0) and a target (code 1) = the reference, permuted, plus an
    offset c orthogonal to every feature: relevance masses then correspond exactly."""
    g = _gen(seed)
    ref = torch.randn(n, d, generator=g, dtype=torch.float64)
    ref[:, -1] = 0.0
    ref[:, 0] += 2.0  # positive relevance for every face
    c = torch.zeros(d, dtype=torch.float64)
    c[-1] = 3.0
    perm = torch.randperm(n, generator=g)
    z = torch.cat([ref, ref[perm] + c])
    codes = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return z, codes, ref, perm, c


@pytest.mark.parametrize("solver, atol", [("exact", 1e-9), ("sinkhorn", 1e-6)])
def test_vector_shift_removes_a_pure_identity_offset(solver, atol):
    """Exactly with the network simplex; to Sinkhorn's marginal error otherwise."""
    z, codes, _, _, c = _offset_pair()
    options = {"eps": 0.01, "max_iter": 5000, "tol": 1e-12} if solver == "sinkhorn" else {}
    layer = IdentityMatching(n_identities=2, sampling="none", solver=solver, shift="vector",
                             **options)
    for seed in range(4):  # either identity may be drawn as the reference
        out = layer(z, codes, generator=_gen(seed))
        sign = 1.0 if out.reference == 0 else -1.0
        torch.testing.assert_close(out.shift_vector[0], sign * c, atol=atol, rtol=0)
        # Ẑ is Eq. 4 of z − δ; with the offset gone, z − δ are the reference identity's faces
        centred = out.z_hat * (out.sigma + layer.norm_eps).unsqueeze(1)
        torch.testing.assert_close(centred, z[out.index] - sign * c, atol=atol, rtol=0)
        gaps = torch.cdist(centred, z[out.reference_index]).min(dim=1).values
        assert gaps.max() < 10 * atol


def test_scalar_shift_leaves_the_offset_and_is_the_default():
    z, codes, _, _, _ = _offset_pair()
    layer = IdentityMatching(n_identities=2, sampling="none", solver="exact")
    assert layer.shift == "scalar"
    for seed in (0, 1):  # reference 0 (the target carries +c), then reference 1 (the reverse)
        out = layer(z, codes, generator=_gen(seed))
        assert out.reference == seed and out.shift_vector is None
        # μ_j is Eq. 3 of the returned plan and cost, and it is subtracted from every entry
        plan, cost = out.plan[0].double(), out.cost[0].double()
        torch.testing.assert_close(out.mu, (cost * plan).sum(0) / plan.sum(0))
        centred = out.z_hat * (out.sigma + layer.norm_eps).unsqueeze(1)
        torch.testing.assert_close(centred, z[out.index] - out.mu.unsqueeze(1))
        # so the offset c (|c| = 3) stays: no centred face is near a reference face (the vector
        # shift brings every one onto a reference face, test above)
        gaps = torch.cdist(centred, z[out.reference_index]).min(dim=1).values
        assert gaps.min() > 2


def test_vector_shift_is_the_difference_of_mass_weighted_means():
    z, codes, y = _batch([6, 5, 7], d=9, seed=8)
    layer = IdentityMatching(sampling="none", shift="vector", solver="exact")
    out = layer(z, codes, y, generator=_gen(2))
    zr = z[out.reference_index].double()
    for t in range(out.targets.numel()):
        m = int((out.target_of == t).sum())
        plan = out.plan[t, :, :m].double()
        rows, cols = plan.sum(1), plan.sum(0)
        zt = z[out.target_index[t, :m]].double()
        expect = cols @ zt / cols.sum() - rows @ zr / rows.sum()
        torch.testing.assert_close(out.shift_vector[t].double(), expect, atol=1e-5, rtol=1e-5)


def test_vector_shift_gradients_reach_the_features():
    z, codes, y = _batch([5, 5, 5], d=6, seed=9)
    z.requires_grad_(True)
    out = IdentityMatching(sampling="none", shift="vector")(z, codes, y, generator=_gen(0))
    main_loss(out.z_hat[:, :2], y[out.index]).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


# ---------------------------------------------------------------- test-time references
def test_normalise_to_references_is_the_training_layer_per_pair():
    z, codes, y = _batch([5, 6], d=7, seed=12)
    for shift in ("scalar", "vector"):
        layer = IdentityMatching(n_identities=2, sampling="none", shift=shift)
        out = layer(z, codes, y, generator=_gen(1))
        ref, tgt = z[out.reference_index], z[out.index]
        got = layer.normalise_to_references(tgt[None], torch.ones(1, len(tgt), dtype=bool),
                                            ref[None], torch.ones(1, len(ref), dtype=bool))
        torch.testing.assert_close(got.z_hat[0, 0], out.z_hat, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.mu[0, 0], out.mu, atol=1e-6, rtol=1e-5)


def test_normalise_to_references_batches_people_and_padding():
    g = _gen(3)
    layer = IdentityMatching(tol=1e-8, max_iter=3000)  # a batch iterates until all converge
    refs = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    ref_mask = torch.ones(3, 4, dtype=bool)
    ref_mask[1, 3] = False
    people = [torch.randn(n, 5, generator=g, dtype=torch.float64) for n in (2, 6)]
    z = torch.zeros(2, 6, 5, dtype=torch.float64)
    mask = torch.zeros(2, 6, dtype=bool)
    for i, p in enumerate(people):
        z[i, :len(p)], mask[i, :len(p)] = p, True
    z[0, 2:] = 99.0  # padding is ignored, whatever it holds
    both = layer.normalise_to_references(z, mask, refs, ref_mask)
    assert both.z_hat.shape == (2, 3, 6, 5) and both.converged
    for i, p in enumerate(people):
        alone = layer.normalise_to_references(p[None], torch.ones(1, len(p), dtype=bool), refs,
                                              ref_mask)
        torch.testing.assert_close(both.z_hat[i, :, :len(p)], alone.z_hat[0], atol=1e-5,
                                   rtol=1e-5)
    assert (both.z_hat[0, :, 2:] == 0).all()
    with pytest.raises(ValueError, match="one face"):
        layer.normalise_to_references(z, torch.zeros(2, 6, dtype=bool), refs, ref_mask)


def test_reference_bank_keeps_k_expressive_faces_and_round_trips(tmp_path):
    from elim.matching import ReferenceBank, reference_bank

    identity = np.array(["b"] * 6 + ["a"] * 3 + ["c"] * 8)
    labels = np.zeros((len(identity), 2))
    labels[:6, 0] = [0, 0, 0, 0.9, 0.8, 0.7]  # "b": three expressive faces, three neutral
    labels[6:, 1] = 0.5
    features = np.arange(len(identity) * 4, dtype=float).reshape(-1, 4)
    seen = []

    def features_of(rows):
        seen.append(rows)
        return features[rows]

    bank = reference_bank(identity, labels, features_of, k=3, seed=0)
    assert bank.identities == ["a", "b", "c"] and bank.features.shape == (3, 3, 4)
    assert bank.mask.sum(1).tolist() == [3, 3, 3]
    rows = seen[0]
    assert sorted(rows[(rows < 6)].tolist()) == [3, 4, 5]  # Eq. 7: never a zero label first
    torch.testing.assert_close(bank.features[bank.mask],
                               torch.as_tensor(features[rows], dtype=torch.float32))
    again = reference_bank(identity, labels, lambda r: features[r], k=3, seed=0)
    assert torch.equal(again.features, bank.features)
    path = bank.save(tmp_path / "bank.safetensors")
    loaded = ReferenceBank.load(path)
    assert loaded.identities == bank.identities and (loaded.k, loaded.seed) == (3, 0)
    assert torch.equal(loaded.features, bank.features) and torch.equal(loaded.mask, bank.mask)


def test_reference_bank_errors_name_the_file(tmp_path):
    from elim.errors import CheckpointError
    from elim.matching import ReferenceBank

    with pytest.raises(CheckpointError, match="no reference bank"):
        ReferenceBank.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        ReferenceBank.load(bad)
