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

import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elim import ot
from elim.ot.checks import Bounds, Grad, ParameterError, Solver, check_choice

__all__ = [
    "DEFAULT_COS_EPS",
    "DEFAULT_EPS",
    "DEFAULT_GRAD",
    "DEFAULT_K",
    "DEFAULT_MASS_FLOOR",
    "DEFAULT_MAX_ITER",
    "DEFAULT_NORM_EPS",
    "DEFAULT_N_IDENTITIES",
    "DEFAULT_SAMPLING",
    "DEFAULT_SOLVER",
    "DEFAULT_TOL",
    "DEFAULT_WEIGHTS",
    "EPS_MIN",
    "SINKHORN_OPTIONS",
    "IdentityMatching",
    "MatchingOutput",
    "Sampling",
    "Weights",
    "gumbel_topk_mask",
    "normalise_masses",
]

#: OT masses: relevance weights (Eq. 8) or self-side weights ‖z‖ (paper Table 4).
Weights = Literal["relevance", "self"]
#: Samples per identity: Gumbel-top-k (Eq. 7) or every sample.
Sampling = Literal["gumbel", "none"]

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
        if solver == "exact" and grad == "autodiff":
            raise ParameterError(
                "grad", "'detach' with solver 'exact' (the network simplex is not "
                "differentiable; use solver 'qp' or 'sinkhorn' for grad='autodiff')", grad
            )
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
            f"sampling={self.sampling!r}, solver={self.solver!r}, grad={self.grad!r}{sinkhorn}"
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

    def _masses(self, zr: Tensor, zt: Tensor, mask_t: Tensor) -> tuple[Tensor, Tensor]:
        """Relevance (Eq. 8) or self-side weights → probability vectors a (T, n), b (T, m)."""
        n_t = zt.shape[0]
        mask_r = torch.ones(n_t, zr.shape[0], dtype=torch.bool, device=zr.device)
        scale = torch.maximum(_max_abs(zr), _max_abs(zt))  # one factor: the masses are unchanged
        zr, zt = zr / scale, zt / scale
        if self.weights == "relevance":
            count_t = mask_t.sum(dim=1, keepdim=True).to(zt.dtype)
            mean_t = zt.sum(dim=1) / count_t  # padding rows of zt are zero
            a_hat = torch.relu(mean_t @ zr.T)
            b_hat = torch.relu(zt @ zr.mean(dim=0))
        else:
            a_hat = torch.linalg.vector_norm(zr, dim=-1).expand(n_t, -1)
            b_hat = torch.linalg.vector_norm(zt, dim=-1)
        a = normalise_masses(a_hat, mask_r, self.mass_floor)
        b = normalise_masses(b_hat, mask_t, self.mass_floor)
        return a, b

    def _solve(self, cost: Tensor, a: Tensor, b: Tensor, mask_t: Tensor):
        if self.grad == "detach":
            cost, a, b = cost.detach(), a.detach(), b.detach()
        kwargs: dict = {"grad": self.grad}
        if self.solver == "sinkhorn":  # eps, max_iter, tol are Sinkhorn's options only
            kwargs.update(eps=self.eps, max_iter=self.max_iter, tol=self.tol)
        mask_a = torch.ones(a.shape, dtype=torch.bool, device=a.device)
        return ot.solve(cost, a, b, solver=self.solver, mask_a=mask_a, mask_b=mask_t, **kwargs)

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
        zr = z[ref_rows]  # (n, d)
        zt = z[tgt_table.clamp_min(0)] * mask_t.unsqueeze(-1).to(z.dtype)  # (T, m, d), pads = 0

        # Cosines of features divided by their largest entry: the same for any feature scale.
        rn = F.normalize(zr / _max_abs(zr, -1), dim=-1, eps=self.cos_eps)
        tn = F.normalize(zt / _max_abs(zt, -1), dim=-1, eps=self.cos_eps)
        cost = (1.0 - torch.einsum("nd,tmd->tnm", rn, tn)).clamp(0.0, 2.0)  # (T, n, m)
        a, b = self._masses(zr, zt, mask_t)

        result = self._solve(cost, a, b, mask_t)
        plan = result.plan
        if self.grad == "detach":
            plan = plan.detach()
        plan = plan * mask_t.unsqueeze(1).to(plan.dtype)

        # Eq. 3, normalised by each target sample's transported mass (see module docstring).
        col_mass = plan.sum(dim=1)
        weighted = (cost * plan).sum(dim=1)
        fallback = cost.mean(dim=1)
        has_mass = col_mass > 0
        mu = torch.where(has_mass, weighted / torch.where(has_mass, col_mass, 1.0), fallback)

        # Eq. 4, per target sample.
        # Eq. 4, per target sample; σ = s·sqrt(mean((c/s)²)) with s = max|c|, so that the squares
        # neither overflow nor underflow (the clamp only acts on an all-zero c: σ = 0 there).
        centred = zt - mu.unsqueeze(-1)
        scale = _max_abs(centred, -1)
        unit = centred / scale
        tiny = torch.finfo(unit.dtype).tiny
        sigma = scale.squeeze(-1) * torch.sqrt(unit.pow(2).mean(dim=-1).clamp_min(tiny))
        z_hat = centred / (sigma + self.norm_eps).unsqueeze(-1)

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
            plan=plan.detach(),
            cost=cost.detach(),
            a=a.detach(),
            b=b.detach(),
            seconds=time.perf_counter() - start,
            n_iter=_as_int(result.n_iter),
            converged=_as_bool(result.converged),
            marginal_error=_as_float(result.marginal_error),
        )


def _as_int(x: object) -> int:
    """Solver iteration count as an int (max over the batch; 0 when not reported)."""
    if x is None:
        return 0
    return int(x.detach().max()) if isinstance(x, Tensor) else int(x)  # type: ignore[call-overload]


def _as_bool(x: object) -> bool:
    """True when every problem of the batch converged (or the solver does not report it)."""
    if x is None:
        return True
    return bool(x.all()) if isinstance(x, Tensor) else bool(x)


def _as_float(x: object) -> float:
    """Largest marginal error over the batch (0.0 when not reported)."""
    if x is None:
        return 0.0
    return float(x.detach().max()) if isinstance(x, Tensor) else float(x)  # type: ignore[arg-type]
