"""Identity matching layer of ELIM (paper Sec. 4.1–4.3; Eqs. 3, 4, 7, 8).

One forward pass, for a batch of features ``z`` grouped by identity:

1. **Grouping.** The identities present are shuffled with ``generator``; the first
   ``n_identities`` are kept, the first of those is the reference identity e₁ and the rest
   (in ascending code order) are the targets e₂…e_N. Samples are laid out as a padded
   ``(G, L)`` table of batch rows (reference first).
2. **Sampling (Eq. 7).** Per identity, k samples are drawn without replacement with probability
   ∝ ‖y‖ by Gumbel-top-k: key = log‖y‖ + Gumbel(0, 1), keep the k largest. Zero-norm labels rank
   after every non-zero one (they are only used to fill k slots, uniformly among themselves, so
   an identity whose labels are all zero falls back to a uniform draw); an identity with ≤ k
   samples keeps them all. ``sampling="none"`` keeps every sample.
3. **Masses (Eq. 8).** ``weights="relevance"``: â_i = [z_i^ref · mean_j z_j^tgt]_+ and
   b̂_j = [z_j^tgt · mean_i z_i^ref]_+ (raw dot products); ``weights="self"``: â_i = ‖z_i^ref‖,
   b̂_j = ‖z_j^tgt‖ (both computed on the batch's features divided by their largest absolute
   entry, which changes no mass but keeps the products finite). Each vector is turned into a
   probability vector (the two marginals of an OT problem must have equal totals, so we use
   Σ = 1 rather than Eq. 8's unit L2 norm) mixed with a small uniform floor:
   w = (1 − δ)·ŵ/Σŵ + δ/n with δ = ``mass_floor``; if Σŵ = 0 the masses are uniform. Every real
   sample therefore gets mass ≥ δ/n and nothing is ever NaN.
4. **Cost and plan (Eq. 2).** C_ij = 1 − cos(z_i^ref, z_j^tgt) ∈ [0, 2], computed on features
   divided by their largest absolute entry, so that any feature scale (1e-20 or 1e20 in
   float32) gives the same cost; a zero feature has cost 1 to everything (norms are clamped at
   ``cos_eps``). All targets form one padded ``(T, n, m_max)`` batch with column masks, solved
   by ONE call to :func:`elim.ot.solve`. ``eps``, ``max_iter`` and ``tol`` are Sinkhorn's
   options and are passed to the solver only when ``solver="sinkhorn"``; the ``exact``
   (network simplex, run to optimality) and ``qp`` (qpth, its own defaults) solvers take none
   of them, and a non-default value with those solvers is refused, never silently ignored.
5. **ID shift (Eq. 3).** One value per target sample, normalised by the plan's column mass:
   μ_j = Σ_i C_ij X_ij / Σ_i X_ij — the plan-weighted mean cost seen by target sample j. At
   convergence Σ_i X_ij = b_j; using the plan's own column sum keeps μ_j inside [min_i C_ij,
   max_i C_ij] ⊂ [0, 2] even when the solver stops early, and makes μ independent of the target's
   mass (Eq. 3 read literally scales μ_j by b_j ≈ 1/m).
6. **Normalisation (Eq. 4).** Per target sample: σ_j = sqrt(mean_d (z_jd − μ_j)²) and
   ẑ_j = (z_j − μ_j) / (σ_j + ``norm_eps``). σ_j is computed as s_j·sqrt(mean_d (c_jd / s_j)²)
   with c = z − μ and s_j = max_d |c_jd|, so that the squares cannot overflow (features ~1e20
   in float32) nor underflow; the value is that of Eq. 4.

Vector shift (an extension, ``shift="vector"``; ``"scalar"`` is the paper's). The paper's μ_j is
one number per sample, subtracted from all d features, so it cannot remove an identity's offset
along particular feature directions. The vector variant uses the plan's barycentric projection
instead: with column masses c_j = Σ_i X_ij and weights w_j = c_j / Σ_j c_j,

    δ^e = Σ_j w_j (z_j − Σ_i X_ij z_i^ref / c_j),        Ẑ_j = (z_j − δ^e) / (σ_j + ε),

one vector per target identity (from the same single solver call), then Eq. 4's per-sample
scaling with σ_j = sqrt(mean_d (z_jd − δ^e_d)²) — kept, so that the variant differs from the
paper's method in the shift alone. Summing the projections, Σ_j w_j Σ_i X_ij z_i / c_j =
Σ_i (r_i / Σc) z_i with the plan's row sums r_i (= a_i at convergence): δ^e is the difference of
the mass-weighted means of the target and the reference, E_b[z^tgt] − E_a[z^ref], and the plan
enters only through its marginals, i.e. the masses of Eq. 8. A pure per-identity offset
z^tgt = z^ref + c whose masses match (e.g. relevance masses with c orthogonal to the features)
is removed exactly: δ^e = c.

Test-time references (an extension). :class:`ReferenceBank` holds k features of each training
identity (chosen by Eq. 7's criterion, Gumbel-top-k ∝ ‖y‖; :func:`reference_bank`) and is saved
in the run directory; :meth:`IdentityMatching.normalise_to_references` normalises the faces of
identities seen at inference (a video's face track, a person's photos) against every bank
identity as the reference, with the same masses, cost, solver and Eqs. 3–4 as training (no
sampling of the target: labels are unknown there), all problems in one solver call
(:mod:`elim.inference.identity_norm` applies it).

Gradients. ``grad="detach"``: the solver sees detached costs and masses and the plan X* is a
constant, but μ_j = Σ_i C_ij X*_ij / Σ_i X*_ij is formed with the live cost C, so gradients
reach the backbone through Z in Eq. 4 and through C (both reference and target features) in μ.
``grad="autodiff"``: costs and masses are passed with their graph and the solver is asked for a
differentiable plan (``grad="autodiff"`` in :mod:`elim.ot`), so gradients also flow through X*
(and hence through the relevance masses).

The reference identity's features are not normalised (Eq. 4 only concerns targets); the trainer
supervises all samples through ``L_va`` and the matched targets through ``L_main``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elim import ot
from elim.errors import CheckpointError
from elim.fileio import atomic_write_bytes
from elim.ot.checks import Bounds, Grad, ParameterError, Solver, check_choice
from elim.ot.exact import AUTODIFF_REFUSED

__all__ = [
    "BANK_FORMAT",
    "DEFAULT_COS_EPS",
    "DEFAULT_EPS",
    "DEFAULT_GRAD",
    "DEFAULT_K",
    "DEFAULT_MASS_FLOOR",
    "DEFAULT_MAX_ITER",
    "DEFAULT_NORM_EPS",
    "DEFAULT_N_IDENTITIES",
    "DEFAULT_SAMPLING",
    "DEFAULT_SHIFT",
    "DEFAULT_SOLVER",
    "DEFAULT_TOL",
    "DEFAULT_WEIGHTS",
    "EPS_MIN",
    "SINKHORN_OPTIONS",
    "IdentityMatching",
    "MatchingOutput",
    "ReferenceBank",
    "ReferenceNormalised",
    "Sampling",
    "Shift",
    "Weights",
    "gumbel_topk_mask",
    "normalise_masses",
    "reference_bank",
]

#: OT masses: relevance weights (Eq. 8) or self-side weights ‖z‖ (paper Table 4).
Weights = Literal["relevance", "self"]
#: Samples per identity: Gumbel-top-k (Eq. 7) or every sample.
Sampling = Literal["gumbel", "none"]
#: ID shift subtracted in Eq. 4: the paper's scalar μ_j (Eq. 3) or the per-identity vector δ^e
#: of the plan's barycentric projection (an extension; module docstring).
Shift = Literal["scalar", "vector"]

# Defaults of IdentityMatching, and (imported) of elim.config.MatchingConfig.
DEFAULT_N_IDENTITIES = 10  # N identities matched per batch (paper Sec. 5.1)
DEFAULT_K = 10  # k of the Gumbel-top-k sampling (Sec. 5.1)
DEFAULT_EPS = 0.05  # Sinkhorn's ε, in units of the cosine cost (C ∈ [0, 2])
DEFAULT_MAX_ITER = 100  # Sinkhorn iterations at most (converges in tens on ELIM's costs)
DEFAULT_TOL = 1e-4  # Sinkhorn's relative L1 row-marginal tolerance
DEFAULT_WEIGHTS: Weights = "relevance"
DEFAULT_SAMPLING: Sampling = "gumbel"
DEFAULT_SOLVER: Solver = "sinkhorn"
DEFAULT_GRAD: Grad = "detach"
DEFAULT_SHIFT: Shift = "scalar"
DEFAULT_NORM_EPS = 1e-6  # ε of Eq. 4 (Sec. 5.1)
DEFAULT_MASS_FLOOR = 1e-3  # uniform share δ mixed into the masses
DEFAULT_COS_EPS = 1e-8  # clamp of the feature norms in the cosine cost
#: Smallest accepted ε: 5e-5 of the cosine cost's range [0, 2]. Below it Sinkhorn needs far more
#: than 1e4 iterations and float64 arithmetic, and the plan is the unregularised one anyway.
EPS_MIN = 1e-4
#: The Sinkhorn options of the layer and their defaults: passed to the solver only when
#: ``solver="sinkhorn"``; with another solver they must keep these values.
SINKHORN_OPTIONS: dict[str, float] = {
    "eps": DEFAULT_EPS,
    "max_iter": DEFAULT_MAX_ITER,
    "tol": DEFAULT_TOL,
}

_BOUNDS = {
    "n_identities": Bounds(ge=2, integer=True),
    "k": Bounds(ge=1, integer=True),
    "eps": Bounds(ge=EPS_MIN, unit="(units of the cosine cost, C in [0, 2])"),
    "max_iter": Bounds(ge=1, integer=True),
    "tol": Bounds(ge=0),
    "norm_eps": Bounds(gt=0),
    "mass_floor": Bounds(ge=0, lt=1),
    "cos_eps": Bounds(gt=0),
}


@dataclass
class MatchingOutput:
    """Result of :class:`IdentityMatching` (M matched target samples, T target identities).

    Attributes
    ----------
    z_hat : Tensor
        (M, d) normalised target features Ẑ (Eq. 4), on the graph of ``z``.
    index : Tensor
        (M,) batch rows they came from (``y[index]`` are their labels, the targets of Eq. 6).
    mu, sigma : Tensor
        (M,) per-sample ID shift μ_j (Eq. 3, divided by the column mass) and scale σ_j (Eq. 4).
    target_of : Tensor
        (M,) position of each sample's identity in ``targets``.
    reference : int
        Identity code of the reference e₁ (−1 when empty).
    targets : Tensor
        (T,) identity codes e₂…e_N.
    reference_index : Tensor
        (n,) batch rows of the sampled reference set.
    target_index : Tensor
        (T, m_max) batch rows of the sampled target sets (−1 = padding).
    plan, cost : Tensor
        (T, n, m_max) detached plans X* and costs C (Eq. 2), 0 on padding.
    a, b : Tensor
        (T, n), (T, m_max) masses of the OT problems (Eq. 8 or self-side, normalised).
    seconds : float
        Wall-clock time of the forward (asynchronous on CUDA: no device sync).
    n_iter : int
        Solver iterations (0 when the solver does not report them).
    converged : bool
        True when every OT problem converged.
    marginal_error : float
        Largest relative L1 row-marginal error over the problems.
    empty : bool
        True (M = 0) when the batch holds fewer than two identities; ``z_hat`` is then
        ``z[:0]``, still on the graph.
    shift_vector : Tensor or None
        (T, d) δ^e of each target identity with ``shift="vector"`` (on the graph), else None.
    """

    z_hat: Tensor
    index: Tensor
    mu: Tensor
    sigma: Tensor
    target_of: Tensor
    reference: int
    targets: Tensor
    reference_index: Tensor
    target_index: Tensor
    plan: Tensor
    cost: Tensor
    a: Tensor
    b: Tensor
    seconds: float
    n_iter: int = 0
    converged: bool = True
    marginal_error: float = 0.0
    empty: bool = False
    shift_vector: Tensor | None = None


@dataclass
class ReferenceNormalised:
    """Faces of G identities normalised against each of R reference identities (Eqs. 2–4).

    Attributes
    ----------
    z_hat : Tensor
        (G, R, m_max, d) Ẑ of every target face against every reference (0 on padding).
    mu, sigma : Tensor
        (G, R, m_max) μ_j (Eq. 3) and σ_j (Eq. 4).
    shift_vector : Tensor or None
        (G, R, d) δ^e with ``shift="vector"``, else None.
    mask : Tensor
        (G, m_max) bool, True for real target faces.
    converged : bool
        True when every OT problem converged.
    """

    z_hat: Tensor
    mu: Tensor
    sigma: Tensor
    shift_vector: Tensor | None
    mask: Tensor
    converged: bool


def _uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """U(0, 1) draws on the generator's device (CPU generators work for CUDA inputs too)."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float32)
    return u.to(device)


def gumbel_topk_mask(
    scores: Tensor, mask: Tensor, k: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Gumbel-top-k sampling without replacement (Eq. 7), row-wise on a padded table.

    Each row keeps the k entries with the largest keys :math:`g = \log \pi + \text{Gumbel}(0, 1)`,
    π = score / Σ score (the normaliser does not change the ranking), which draws k entries
    without replacement with probability ∝ score.

    Parameters
    ----------
    scores : Tensor
        (G, L) non-negative sampling scores (in the layer: the label norms ‖y‖).
    mask : Tensor
        (G, L) bool, True for real entries.
    k : int
        Entries to keep per row (min(k, count) are kept).
    generator : torch.Generator, optional
        Source of the Gumbel noise (any device).

    Returns
    -------
    Tensor
        (G, L) bool mask of the kept entries. Entries with score > 0 come first (by key);
        zero-score entries come after all positive ones, in uniformly random order; padding is
        never kept.
    """
    if scores.shape != mask.shape or scores.dim() != 2:
        raise ValueError("scores and mask must both be (G, L)")
    g_rows, length = scores.shape
    if length == 0:
        return mask.clone()
    u = _uniform((g_rows, length), generator, scores.device)
    tiny = torch.finfo(torch.float32).tiny
    gumbel = -torch.log(-torch.log(u.clamp_min(tiny)))
    positive = mask & (scores > 0)
    key = torch.where(positive, torch.log(scores.float().clamp_min(tiny)) + gumbel, gumbel)
    tier = positive.long() * 2 + (mask & ~positive).long()
    by_key = torch.argsort(key, dim=1, descending=True, stable=True)
    by_tier = torch.argsort(tier.gather(1, by_key), dim=1, descending=True, stable=True)
    order = by_key.gather(1, by_tier)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(length, device=order.device).expand(g_rows, length))
    return mask & (rank < k)


def normalise_masses(w: Tensor, mask: Tensor, floor: float) -> Tensor:
    r"""Non-negative weights → probability vectors over the real entries (Eq. 8, Sec. 4.3).

    .. math:: w'_i = (1 - \delta) \frac{w_i}{\sum_j w_j} + \frac{\delta}{\text{count}}

    on real entries and 0 on padding; uniform when Σw = 0 or is not finite. Eq. 8 divides by
    the L2 norm instead; OT needs marginals of equal totals, hence Σ = 1.

    Parameters
    ----------
    w : Tensor
        (…, n) non-negative weights (e.g. â or b̂ of Eq. 8).
    mask : Tensor
        (…, n) bool, True for real entries.
    floor : float
        δ ∈ [0, 1): uniform share, so that every real entry gets mass ≥ δ / count.

    Returns
    -------
    Tensor
        (…, n) masses summing to 1 over the real entries of each row.
    """
    maskf = mask.to(w.dtype)
    w = w * maskf
    total = w.sum(dim=-1, keepdim=True)
    count = maskf.sum(dim=-1, keepdim=True).clamp_min(1.0)
    uniform = maskf / count
    ok = (total > 0) & torch.isfinite(total)
    safe_total = torch.where(ok, total, torch.ones_like(total))
    mixed = (1.0 - floor) * w / safe_total + floor * uniform
    return torch.where(ok, mixed, uniform)


def _max_abs(x: Tensor, dim: int | None = None) -> Tensor:
    """Detached largest |x| (along ``dim``, kept as a size-1 axis; of all of ``x`` when None),
    with 1 where it is 0. Dividing by it changes no scale-free quantity (a cosine, a ratio of
    masses, σ_j / s_j) nor its gradient, and keeps squares and products of features finite."""
    magnitude = x.detach().abs()
    scale = magnitude.amax() if dim is None else magnitude.amax(dim, keepdim=True)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _layout(inverse: Tensor, chosen: Tensor) -> tuple[Tensor, Tensor]:
    """Batch rows of the chosen groups as a padded (G, L) table (−1 padding), batch order kept."""
    device = inverse.device
    n_groups = int(chosen.numel())
    rank = torch.full((int(inverse.max()) + 1,), -1, dtype=torch.long, device=device)
    rank[chosen] = torch.arange(n_groups, device=device)
    r = rank[inverse]
    rows = torch.nonzero(r >= 0).flatten()
    rr = r[rows]
    order = torch.argsort(rr, stable=True)
    rows, rr = rows[order], rr[order]
    counts = torch.bincount(rr, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(rows.numel(), device=device) - starts[rr]
    table = torch.full((n_groups, int(counts.max())), -1, dtype=torch.long, device=device)
    table[rr, pos] = rows
    return table, table >= 0


def _compact(table: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Move kept entries of each row to the front (original order kept) and trim the padding."""
    order = torch.argsort((~keep).long(), dim=1, stable=True)
    width = int(keep.sum(dim=1).max())
    table = table.gather(1, order)[:, :width]
    keep = keep.gather(1, order)[:, :width]
    return torch.where(keep, table, torch.full_like(table, -1)), keep


@dataclass
class _Solved:
    """Eqs. 2–4 of P padded (reference, target) problems (internal)."""

    z_hat: Tensor  # (P, m, d)
    mu: Tensor  # (P, m)
    sigma: Tensor  # (P, m)
    delta: Tensor | None  # (P, d) with shift="vector"
    cost: Tensor  # (P, n, m)
    plan: Tensor  # (P, n, m), masked
    a: Tensor
    b: Tensor
    result: ot.OTResult


class IdentityMatching(nn.Module):
    r"""ELIM identity matching: group by identity, match targets to a reference by OT, normalise.

    One forward (see the module docstring) samples k faces per identity (Eq. 7), weighs them
    (Eq. 8), solves one OT problem per target identity against the reference (Eq. 2), takes the
    per-sample ID shift (Eq. 3)

    .. math:: \mu_j = \frac{\sum_i C_{ij} X^*_{ij}}{\sum_i X^*_{ij}}

    and normalises each target sample (Eq. 4):
    :math:`\hat z_j = (z_j - \mu_j) / (\sigma_j + \epsilon)`,
    :math:`\sigma_j = \sqrt{\tfrac{1}{d} \sum_d (z_{jd} - \mu_j)^2}`.
    The module has no learnable parameters; it is deterministic given ``generator`` (which
    draws the identity subset, the reference and the Gumbel keys).

    Parameters
    ----------
    n_identities : int, default 10
        N >= 2 identities matched per batch (the first drawn is the reference).
    k : int, default 10
        Samples kept per identity by the Gumbel-top-k (>= 1; ``sampling="gumbel"`` only).
    eps : float, default 0.05
        Sinkhorn's entropic regularisation, in units of the cosine cost (C ∈ [0, 2]);
        >= :data:`EPS_MIN` (1e-4). Sinkhorn only (see below).
    max_iter : int, default 100
        Sinkhorn iterations at most (>= 1). Sinkhorn only.
    tol : float, default 1e-4
        Sinkhorn's relative L1 row-marginal tolerance (>= 0). Sinkhorn only.
    weights : {"relevance", "self"}, default "relevance"
        OT masses: relevance weights (Eq. 8) or self-side weights ‖z‖.
    sampling : {"gumbel", "none"}, default "gumbel"
        Gumbel-top-k per identity (Eq. 7, needs the labels ``y``) or every sample.
    solver : {"sinkhorn", "exact", "qp"}, default "sinkhorn"
        OT solver (:func:`elim.ot.solve`). ``eps``, ``max_iter``, ``tol`` are passed only to
        ``"sinkhorn"``; ``"exact"`` (network simplex, to optimality) and ``"qp"`` (qpth with its
        defaults) take none of them, and a value other than the default is refused with them.
    grad : {"detach", "autodiff"}, default "detach"
        ``"detach"``: a constant plan, gradients through Eq. 4 and the live cost in μ;
        ``"autodiff"``: also through the plan and the masses (not with ``solver="exact"``).
    norm_eps : float, default 1e-6
        ε of Eq. 4 (> 0).
    mass_floor : float, default 1e-3
        Uniform share δ ∈ [0, 1) of the masses (:func:`normalise_masses`).
    cos_eps : float, default 1e-8
        Clamp of the feature norms in the cosine cost (> 0); only a zero feature reaches it.
    shift : {"scalar", "vector"}, default "scalar"
        ID shift of Eq. 4: the paper's per-sample μ_j, or the per-identity vector δ^e of the
        plan's barycentric projection (an extension; see the module docstring).

    Raises
    ------
    ParameterError
        For a parameter of the wrong type or out of range; the message names it and its range.
    """

    def __init__(
        self,
        n_identities: int = DEFAULT_N_IDENTITIES,
        k: int = DEFAULT_K,
        eps: float = DEFAULT_EPS,
        max_iter: int = DEFAULT_MAX_ITER,
        tol: float = DEFAULT_TOL,
        weights: Weights = DEFAULT_WEIGHTS,
        sampling: Sampling = DEFAULT_SAMPLING,
        solver: Solver = DEFAULT_SOLVER,
        grad: Grad = DEFAULT_GRAD,
        norm_eps: float = DEFAULT_NORM_EPS,
        mass_floor: float = DEFAULT_MASS_FLOOR,
        cos_eps: float = DEFAULT_COS_EPS,
        shift: Shift = DEFAULT_SHIFT,
    ) -> None:
        super().__init__()
        given = {
            "n_identities": n_identities, "k": k, "eps": eps, "max_iter": max_iter, "tol": tol,
            "norm_eps": norm_eps, "mass_floor": mass_floor, "cos_eps": cos_eps,
        }
        checked = {name: _BOUNDS[name].check(name, value) for name, value in given.items()}
        self.weights: Weights = check_choice("weights", weights, Weights)
        self.sampling: Sampling = check_choice("sampling", sampling, Sampling)
        self.solver: Solver = check_choice("solver", solver, Solver)
        self.grad: Grad = check_choice("grad", grad, Grad)
        self.shift: Shift = check_choice("shift", shift, Shift)
        if solver == "exact" and grad == "autodiff":
            raise ParameterError("grad", AUTODIFF_REFUSED, grad)
        if solver != "sinkhorn":
            for name, default in SINKHORN_OPTIONS.items():
                if checked[name] != default:
                    raise ParameterError(
                        name, f"left at its default {default!r} with solver {solver!r}: it is an "
                        "option of the sinkhorn solver, which the other solvers do not take",
                        given[name],
                    )
        self.n_identities: int = checked["n_identities"]
        self.k: int = checked["k"]
        self.eps: float = checked["eps"]
        self.max_iter: int = checked["max_iter"]
        self.tol: float = checked["tol"]
        self.norm_eps: float = checked["norm_eps"]
        self.mass_floor: float = checked["mass_floor"]
        self.cos_eps: float = checked["cos_eps"]

    def extra_repr(self) -> str:
        sinkhorn = (
            f", eps={self.eps}, max_iter={self.max_iter}, tol={self.tol}"
            if self.solver == "sinkhorn" else ""
        )
        return (
            f"n_identities={self.n_identities}, k={self.k}, weights={self.weights!r}, "
            f"sampling={self.sampling!r}, solver={self.solver!r}, grad={self.grad!r}, "
            f"shift={self.shift!r}{sinkhorn}"
        )

    # -- pieces -------------------------------------------------------------------------------
    def _select(
        self, identity: Tensor, y: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Identity codes (reference first), sampled (G, L') row table and its mask."""
        codes, inverse = torch.unique(identity, sorted=True, return_inverse=True)
        n_all = int(codes.numel())
        if n_all < 2:
            return None
        gen_device = generator.device if generator is not None else identity.device
        perm = torch.randperm(n_all, generator=generator, device=gen_device).to(identity.device)
        picked = perm[: self.n_identities]
        chosen = torch.cat([picked[:1], torch.sort(picked[1:]).values])
        table, mask = _layout(inverse, chosen)
        if self.sampling == "gumbel":
            norms = torch.linalg.vector_norm(y.float()[table.clamp_min(0)], dim=-1)
            keep = gumbel_topk_mask(norms, mask, self.k, generator)
            table, mask = _compact(table, keep)
        return codes[chosen], table, mask

    def _masses(self, zr: Tensor, mask_r: Tensor, zt: Tensor, mask_t: Tensor
                ) -> tuple[Tensor, Tensor]:
        """Relevance (Eq. 8) or self-side weights → probability vectors a (P, n), b (P, m)."""
        scale = torch.maximum(_max_abs(zr), _max_abs(zt))  # one factor: the masses are unchanged
        zr, zt = zr / scale, zt / scale  # padding rows are zero
        if self.weights == "relevance":
            mean_t = zt.sum(dim=1) / mask_t.sum(dim=1, keepdim=True).to(zt.dtype)
            mean_r = zr.sum(dim=1) / mask_r.sum(dim=1, keepdim=True).to(zr.dtype)
            a_hat = torch.relu(torch.einsum("pnd,pd->pn", zr, mean_t))
            b_hat = torch.relu(torch.einsum("pmd,pd->pm", zt, mean_r))
        else:
            a_hat = torch.linalg.vector_norm(zr, dim=-1)
            b_hat = torch.linalg.vector_norm(zt, dim=-1)
        a = normalise_masses(a_hat, mask_r, self.mass_floor)
        b = normalise_masses(b_hat, mask_t, self.mass_floor)
        return a, b

    def _solve(self, cost: Tensor, a: Tensor, b: Tensor, mask_r: Tensor, mask_t: Tensor):
        if self.grad == "detach":
            cost, a, b = cost.detach(), a.detach(), b.detach()
        kwargs: dict = {"grad": self.grad}
        if self.solver == "sinkhorn":  # eps, max_iter, tol are Sinkhorn's options only
            kwargs.update(eps=self.eps, max_iter=self.max_iter, tol=self.tol)
        return ot.solve(cost, a, b, solver=self.solver, mask_a=mask_r, mask_b=mask_t, **kwargs)

    def _match(self, zr: Tensor, mask_r: Tensor, zt: Tensor, mask_t: Tensor) -> _Solved:
        """Eqs. 2, 3, 4, 8 for P problems: references zr (P, n, d) and targets zt (P, m, d),
        padding rows zero and False in ``mask_r`` (P, n) / ``mask_t`` (P, m); ONE solver call."""
        # Cosines of features divided by their largest entry: the same for any feature scale.
        rn = F.normalize(zr / _max_abs(zr, -1), dim=-1, eps=self.cos_eps)
        tn = F.normalize(zt / _max_abs(zt, -1), dim=-1, eps=self.cos_eps)
        cost = (1.0 - torch.einsum("pnd,pmd->pnm", rn, tn)).clamp(0.0, 2.0)  # (P, n, m)
        a, b = self._masses(zr, mask_r, zt, mask_t)

        result = self._solve(cost, a, b, mask_r, mask_t)
        plan = result.plan
        if self.grad == "detach":
            plan = plan.detach()
        plan = plan * (mask_r.unsqueeze(2) & mask_t.unsqueeze(1)).to(plan.dtype)

        # Eq. 3, normalised by each target sample's transported mass (see module docstring).
        col_mass = plan.sum(dim=1)
        has_mass = col_mass > 0
        safe_mass = torch.where(has_mass, col_mass, 1.0)
        weighted = (cost * plan).sum(dim=1)
        real_r = mask_r.unsqueeze(2).to(cost.dtype)
        fallback = (cost * real_r).sum(dim=1) / real_r.sum(dim=1)  # mean cost to the reference
        mu = torch.where(has_mass, weighted / safe_mass, fallback)

        delta = None
        if self.shift == "vector":  # δ^e: mass-weighted mean of z_j − barycentric projection
            projected = torch.einsum("pnm,pnd->pmd", plan, zr) / safe_mass.unsqueeze(-1)
            w = col_mass / col_mass.sum(dim=1, keepdim=True).clamp_min(torch.finfo(plan.dtype).tiny)
            delta = torch.einsum("pm,pmd->pd", w, zt - projected)
            centred = zt - delta.unsqueeze(1)
        else:
            centred = zt - mu.unsqueeze(-1)
        # Eq. 4, per target sample; σ = s·sqrt(mean((c/s)²)) with s = max|c|, so that the squares
        # neither overflow nor underflow (the clamp only acts on an all-zero c: σ = 0 there).
        scale = _max_abs(centred, -1)
        unit = centred / scale
        tiny = torch.finfo(unit.dtype).tiny
        sigma = scale.squeeze(-1) * torch.sqrt(unit.pow(2).mean(dim=-1).clamp_min(tiny))
        z_hat = centred / (sigma + self.norm_eps).unsqueeze(-1)
        return _Solved(z_hat, mu, sigma, delta, cost, plan, a, b, result)

    def _empty(self, z: Tensor, start: float) -> MatchingOutput:
        long0 = torch.zeros(0, dtype=torch.long, device=z.device)
        f0 = z.new_zeros(0)
        return MatchingOutput(
            z_hat=z[:0],
            index=long0,
            mu=f0,
            sigma=f0,
            target_of=long0,
            reference=-1,
            targets=long0,
            reference_index=long0,
            target_index=long0.view(0, 0),
            plan=z.new_zeros(0, 0, 0),
            cost=z.new_zeros(0, 0, 0),
            a=z.new_zeros(0, 0),
            b=z.new_zeros(0, 0),
            seconds=time.perf_counter() - start,
            empty=True,
        )

    # -- forward ------------------------------------------------------------------------------
    def forward(
        self,
        z: Tensor,
        identity: Tensor,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> MatchingOutput:
        """Match every target identity of the batch to a random reference (Eqs. 2, 3, 4, 7, 8).

        Parameters
        ----------
        z : Tensor
            (B, d) features f_φ(x). Half precision is processed in float32 with autocast
            disabled (costs, masses, the OT solve and the Eq. 3–4 statistics stay float32 under
            mixed precision; gradients flow back to the half-precision ``z``).
        identity : Tensor
            (B,) integer identity codes.
        y : Tensor, optional
            (B, 2) valence–arousal labels; needed only for ``sampling="gumbel"`` (Eq. 7 draws
            ∝ ‖y‖).
        generator : torch.Generator, optional
            Draws the identity subset, the reference and the Gumbel keys (a CPU generator is
            fine for CUDA inputs).

        Returns
        -------
        MatchingOutput
            Ẑ of the matched target samples with their batch rows, μ, σ and diagnostics;
            ``empty=True`` when the batch holds fewer than two identities.
        """
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z, identity, y, generator)

    def _forward(
        self, z: Tensor, identity: Tensor, y: Tensor | None, generator: torch.Generator | None
    ) -> MatchingOutput:
        start = time.perf_counter()
        if z.dim() != 2:
            raise ValueError(f"z must be (B, d), got {tuple(z.shape)}")
        if identity.shape != (z.shape[0],):
            raise ValueError(
                f"identity must be (B,) = ({z.shape[0]},), got {tuple(identity.shape)}"
            )
        if self.sampling == "gumbel" and (y is None or y.shape[0] != z.shape[0]):
            raise ValueError("sampling='gumbel' needs labels y of shape (B, 2)")
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        identity = identity.to(z.device).long()
        if z.shape[0] == 0:
            return self._empty(z, start)
        selected = self._select(identity, None if y is None else y.to(z.device), generator)
        if selected is None:
            return self._empty(z, start)
        group_codes, table, mask = selected

        ref_rows = table[0][mask[0]]
        tgt_table, mask_t = table[1:], mask[1:]
        n_t = tgt_table.shape[0]
        zr = z[ref_rows].unsqueeze(0).expand(n_t, -1, -1)  # (T, n, d): one reference for all
        mask_r = torch.ones(zr.shape[:2], dtype=torch.bool, device=z.device)
        zt = z[tgt_table.clamp_min(0)] * mask_t.unsqueeze(-1).to(z.dtype)  # (T, m, d), pads = 0
        solved = self._match(zr, mask_r, zt, mask_t)
        result = solved.result
        z_hat, mu, sigma = solved.z_hat, solved.mu, solved.sigma

        t_idx, j_idx = torch.nonzero(mask_t, as_tuple=True)
        return MatchingOutput(
            z_hat=z_hat[t_idx, j_idx],
            index=tgt_table[t_idx, j_idx],
            mu=mu[t_idx, j_idx],
            sigma=sigma[t_idx, j_idx],
            target_of=t_idx,
            reference=int(group_codes[0]),
            targets=group_codes[1:],
            reference_index=ref_rows,
            target_index=tgt_table,
            plan=solved.plan.detach(),
            cost=solved.cost.detach(),
            a=solved.a.detach(),
            b=solved.b.detach(),
            seconds=time.perf_counter() - start,
            n_iter=result.n_iter or 0,  # None: the solver does not report it (exact, qp)
            converged=result.all_converged,
            marginal_error=float(result.marginal_error.max()),
            shift_vector=solved.delta,
        )

    # -- test time ----------------------------------------------------------------------------
    @torch.no_grad()
    def normalise_to_references(
        self, z: Tensor, mask: Tensor, references: Tensor, reference_mask: Tensor
    ) -> ReferenceNormalised:
        """Normalise the faces of G identities against each of R reference identities.

        Every (target identity, reference identity) pair is one OT problem of the training
        layer (masses of Eq. 8 or self-side, cosine cost, this layer's solver and options, μ of
        Eq. 3 or δ^e, Eq. 4), all G·R problems in ONE solver call. Nothing is sampled (the
        labels of the targets are unknown): each target identity brings all its faces, each
        reference the faces of the bank.

        Parameters
        ----------
        z : Tensor
            (G, m_max, d) features of the target identities (padding rows anything).
        mask : Tensor
            (G, m_max) bool, True for real faces; every identity needs at least one.
        references : Tensor
            (R, n_max, d) reference features (e.g. :attr:`ReferenceBank.features`).
        reference_mask : Tensor
            (R, n_max) bool, True for real reference faces; every reference needs one.

        Returns
        -------
        ReferenceNormalised
            Ẑ (G, R, m_max, d), μ, σ (and δ^e) per target face and reference.
        """
        with torch.autocast(z.device.type, enabled=False):
            if z.dtype in (torch.float16, torch.bfloat16):
                z = z.float()
            refs = references.to(z.device, z.dtype)
            mask, ref_mask = mask.to(z.device).bool(), reference_mask.to(z.device).bool()
            if z.dim() != 3 or mask.shape != z.shape[:2]:
                raise ValueError(f"z must be (G, m, d) with mask (G, m); got {tuple(z.shape)}, "
                                 f"{tuple(mask.shape)}")
            if refs.dim() != 3 or ref_mask.shape != refs.shape[:2] or refs.shape[2] != z.shape[2]:
                raise ValueError(f"references must be (R, n, {z.shape[2]}) with mask (R, n); got "
                                 f"{tuple(refs.shape)}, {tuple(ref_mask.shape)}")
            if not bool(mask.any(1).all()) or not bool(ref_mask.any(1).all()):
                raise ValueError("every target identity and every reference needs one face")
            g, r = z.shape[0], refs.shape[0]
            zt = (z * mask.unsqueeze(-1)).repeat_interleave(r, dim=0)  # (G·R, m, d), g-major
            mask_t = mask.repeat_interleave(r, dim=0)
            zr = (refs * ref_mask.unsqueeze(-1)).repeat(g, 1, 1)  # (G·R, n, d)
            mask_r = ref_mask.repeat(g, 1)
            solved = self._match(zr, mask_r, zt, mask_t)
            m, d = z.shape[1:]
            keep = mask_t.unsqueeze(-1).to(solved.z_hat.dtype)
            return ReferenceNormalised(
                z_hat=(solved.z_hat * keep).view(g, r, m, d),
                mu=(solved.mu * mask_t).view(g, r, m),
                sigma=(solved.sigma * mask_t).view(g, r, m),
                shift_vector=None if solved.delta is None else solved.delta.view(g, r, d),
                mask=mask,
                converged=solved.result.all_converged,
            )


# -- test-time references ----------------------------------------------------------------------
#: Format tag of a saved :class:`ReferenceBank`.
BANK_FORMAT = "elim-reference-bank/1"


@dataclass
class ReferenceBank:
    """k features per training identity: the references of test-time identity normalisation.

    Attributes
    ----------
    features : Tensor
        (R, k_max, d) float32 features f_φ(x) of R training identities (0 on padding).
    mask : Tensor
        (R, k_max) bool, True for real faces.
    identities : list of str
        The R identity names.
    k : int
        Faces kept per identity at most.
    seed : int
        Seed of the Gumbel-top-k draw that chose them.
    """

    features: Tensor
    mask: Tensor
    identities: list[str]
    k: int
    seed: int

    def __len__(self) -> int:
        return len(self.identities)

    def save(self, path: str | Path) -> Path:
        """Write the bank as one safetensors file (atomically); returns ``path``."""
        from safetensors.torch import save

        meta = {"format": BANK_FORMAT, "identities": json.dumps(self.identities),
                "k": str(self.k), "seed": str(self.seed)}
        data = save({"features": self.features.detach().float().cpu().contiguous(),
                     "mask": self.mask.detach().bool().cpu().contiguous()}, metadata=meta)
        atomic_write_bytes(path, data)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceBank:
        """Read a bank written by :meth:`save` (CheckpointError naming the file otherwise)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"{path}: no reference bank; runs trained by this version of elim write one "
                "(retrain the run to use test-time identity normalisation)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                features, mask = f.get_tensor("features"), f.get_tensor("mask")
            identities = json.loads(meta["identities"])
            k, seed = int(meta["k"]), int(meta["seed"])
        except (SafetensorError, OSError, KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: not a reference bank written by elim ({err})") from None
        if meta.get("format") != BANK_FORMAT or features.dim() != 3 \
                or mask.shape != features.shape[:2] or len(identities) != features.shape[0]:
            raise CheckpointError(f"{path}: not a reference bank of format {BANK_FORMAT}")
        return cls(features.float(), mask.bool(), [str(i) for i in identities], k, seed)


def reference_bank(
    identity: np.ndarray,
    labels: np.ndarray,
    features_of: Callable[[np.ndarray], np.ndarray],
    k: int = DEFAULT_K,
    seed: int = 0,
) -> ReferenceBank:
    """Choose k faces per identity by Eq. 7's criterion and take their features.

    Per identity, :func:`gumbel_topk_mask` keeps k faces drawn without replacement ∝ ‖y‖ (faces
    with clear expressions, as the training layer samples its references); an identity with
    ≤ k faces keeps them all. Only the chosen faces go through ``features_of``.

    Parameters
    ----------
    identity : ndarray
        (N,) identity of every candidate face (e.g. the training faces of a run).
    labels : ndarray
        (N, 2) their valence–arousal labels.
    features_of : callable
        ``features_of(rows)`` → (len(rows), d) features of the faces at positions ``rows``.
    k : int
        Faces per identity (>= 1).
    seed : int
        Seed of the Gumbel draw.

    Returns
    -------
    ReferenceBank
        Identities in sorted order, their faces in position order.
    """
    k = _BOUNDS["k"].check("k", k)
    ids = np.asarray(identity).astype(str)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float32).reshape(len(ids), 2))
    if len(ids) == 0:
        raise ValueError("a reference bank needs at least one face")
    names, inverse = np.unique(ids, return_inverse=True)
    table, mask = _layout(torch.as_tensor(inverse.reshape(-1)),
                          torch.arange(len(names)))
    norms = torch.linalg.vector_norm(y[table.clamp_min(0)], dim=-1)
    keep = gumbel_topk_mask(norms, mask, k, torch.Generator().manual_seed(int(seed)))
    table, keep = _compact(table, keep)
    rows = table[keep].numpy()
    feats = torch.as_tensor(np.asarray(features_of(rows), dtype=np.float32))
    if feats.dim() != 2 or feats.shape[0] != len(rows):
        raise ValueError(f"features_of returned {tuple(feats.shape)} for {len(rows)} faces")
    features = feats.new_zeros(table.shape + (feats.shape[1],))
    features[keep] = feats
    return ReferenceBank(features, keep, names.tolist(), k, int(seed))
