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
   b̂_j = ‖z_j^tgt‖. Each vector is turned into a probability vector (the two marginals of an OT
   problem must have equal totals, so we use Σ = 1 rather than Eq. 8's unit L2 norm) mixed with a
   small uniform floor: w = (1 − δ)·ŵ/Σŵ + δ/n with δ = ``mass_floor``; if Σŵ = 0 the masses are
   uniform. Every real sample therefore gets mass ≥ δ/n and nothing is ever NaN.
4. **Cost and plan.** C_ij = 1 − cos(z_i^ref, z_j^tgt) ∈ [0, 2] (norms clamped at ``cos_eps``, so a
   zero feature has cost 1 to everything). All targets form one padded ``(T, n, m_max)`` batch with
   column masks, solved by ONE call to :func:`elim.ot.solve`.
5. **ID shift (Eq. 3).** One value per target sample, normalised by the plan's column mass:
   μ_j = Σ_i C_ij X_ij / Σ_i X_ij — the plan-weighted mean cost seen by target sample j. At
   convergence Σ_i X_ij = b_j; using the plan's own column sum keeps μ_j inside [min_i C_ij,
   max_i C_ij] ⊂ [0, 2] even when the solver stops early, and makes μ independent of the target's
   mass (Eq. 3 read literally scales μ_j by b_j ≈ 1/m).
6. **Normalisation (Eq. 4).** Per target sample: σ_j = sqrt(mean_d (z_jd − μ_j)²) and
   ẑ_j = (z_j − μ_j) / (σ_j + ``norm_eps``).

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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elim import ot

__all__ = ["IdentityMatching", "MatchingOutput", "gumbel_topk_mask", "normalise_masses"]

_WEIGHTS = ("relevance", "self")
_SAMPLING = ("gumbel", "none")
_SOLVERS = ("sinkhorn", "exact", "qp")
_GRADS = ("detach", "autodiff")


@dataclass
class MatchingOutput:
    """Result of :class:`IdentityMatching` (M matched target samples, T target identities).

    ``z_hat`` (M, d) normalised target features (Eq. 4); ``index`` (M,) batch rows they came from
    (``y[index]`` are their labels); ``mu`` and ``sigma`` (M,) per-sample shift and scale;
    ``target_of`` (M,) position of each sample's identity in ``targets``.
    Diagnostics: ``reference`` identity code (−1 when empty), ``targets`` (T,) codes,
    ``reference_index`` (n,) and ``target_index`` (T, m_max, −1 = padding) batch rows of the
    sampled sets, detached ``plan``/``cost`` (T, n, m_max) and masses ``a`` (T, n), ``b``
    (T, m_max), wall-clock ``seconds`` of the forward (asynchronous on CUDA: no device sync),
    solver ``n_iter``, ``converged`` and ``marginal_error``. ``empty`` is True (M = 0) when the
    batch holds fewer than two identities.
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
    """Gumbel-top-k sampling without replacement (Eq. 7), row-wise on a padded table.

    ``scores`` (G, L) non-negative sampling scores (here ‖y‖; π = score / Σ score, whose
    normaliser does not change the ranking), ``mask`` (G, L) True for real entries. Returns a
    (G, L) bool mask keeping min(k, count) real entries per row. Entries with score > 0 are ranked
    by log(score) + Gumbel(0, 1); zero-score entries come after all positive ones, in uniformly
    random order; padding is never kept.
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
    """Non-negative weights (…, n) → probability vectors over the real entries (Sec. 4.3).

    w' = (1 − floor)·w/Σw + floor/count on real entries, 0 on padding; uniform when Σw = 0 (or
    not finite). Works row-wise on the last dimension.
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
    """ELIM identity matching: group by identity, match targets to a reference by OT, normalise.

    Parameters are described in the module docstring. The module has no learnable parameters;
    it is deterministic given ``generator`` (which draws the identity subset, the reference and
    the Gumbel keys). ``eps`` is the entropic regularisation in units of the cosine cost (C ∈ [0, 2]).
    """

    def __init__(
        self,
        n_identities: int = 10,
        k: int = 10,
        eps: float = 0.05,
        max_iter: int = 200,
        tol: float = 1e-4,
        weights: str = "relevance",
        sampling: str = "gumbel",
        solver: str = "sinkhorn",
        grad: str = "detach",
        norm_eps: float = 1e-6,
        mass_floor: float = 1e-3,
        cos_eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if n_identities < 2:
            raise ValueError("n_identities must be at least 2 (one reference and one target)")
        if k < 1:
            raise ValueError("k must be at least 1")
        if eps <= 0:
            raise ValueError("eps must be positive")
        if not 0.0 <= mass_floor < 1.0:
            raise ValueError("mass_floor must be in [0, 1)")
        for name, value, allowed in (
            ("weights", weights, _WEIGHTS),
            ("sampling", sampling, _SAMPLING),
            ("solver", solver, _SOLVERS),
            ("grad", grad, _GRADS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if solver == "exact" and grad == "autodiff":
            raise ValueError(
                "solver='exact' (network simplex) is not differentiable; use grad='detach'"
            )
        self.n_identities = int(n_identities)
        self.k = int(k)
        self.eps = float(eps)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.weights = weights
        self.sampling = sampling
        self.solver = solver
        self.grad = grad
        self.norm_eps = float(norm_eps)
        self.mass_floor = float(mass_floor)
        self.cos_eps = float(cos_eps)

    def extra_repr(self) -> str:
        return (
            f"n_identities={self.n_identities}, k={self.k}, eps={self.eps}, "
            f"weights={self.weights!r}, sampling={self.sampling!r}, solver={self.solver!r}, "
            f"grad={self.grad!r}"
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
        if self.solver == "sinkhorn":  # eps, max_iter, tol are Sinkhorn's; exact/qp use defaults
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
        """Match every target identity of the batch to a random reference (Eqs. 3, 4, 7, 8).

        ``z`` (B, d) features, ``identity`` (B,) integer identity codes, ``y`` (B, 2) labels
        (needed only for ``sampling="gumbel"``). Half-precision features are processed in float32,
        with autocast disabled (costs, masses, Sinkhorn and Eq. 3–4 statistics stay float32 under
        mixed precision; gradients flow back to the half-precision ``z``).
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

        rn = F.normalize(zr, dim=-1, eps=self.cos_eps)
        tn = F.normalize(zt, dim=-1, eps=self.cos_eps)
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
        centred = zt - mu.unsqueeze(-1)
        sigma = torch.sqrt(centred.pow(2).mean(dim=-1).clamp_min(1e-30))
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
