"""Batched entropic OT by log-domain Sinkhorn iterations (paper Sec. 4.1 and Appendix A).

For each problem of the batch we solve

    min_P  <C, P> + eps * sum_ij P_ij (log P_ij - 1)   s.t.  P 1 = a,  P^T 1 = b,  P >= 0,

whose solution is ``P_ij = exp((f_i + g_j - C_ij) / eps)`` for dual potentials f, g. This is the
problem of POT's ``ot.sinkhorn(a, b, C, reg=eps)``. ``eps`` is in the units of the cost: for the
cosine cost of ELIM (C in [0, 2]) eps = 0.05 is a mildly blurred matching, eps = 1e-3 is close to
the unregularised optimum (and needs many more iterations). Scaling the cost and eps by the same
factor gives the same plan.

Numerics. The state is the pair of log-potentials u = f / eps, v = g / eps, started by a
max-plus version of one log-domain sweep (u_i = log a_i + min_j C_ij / eps, then v likewise).
Between two "absorptions" the exact log-domain updates

    u_i <- log a_i - log sum_j exp(-C_ij / eps + u*_i + v*_j) exp(v_j - v*_j) + u*_i

(and the same for v) are evaluated as batched matrix-vector products with the stabilised
kernel ``K*_ij = exp(-C_ij / eps + u*_i + v*_j)`` (the plan at the last absorption) and the
scalings ``alpha = exp(u - u*)``, ``beta = exp(v - v*)``. When a scaling leaves
[exp(-tau), exp(tau)], tau = log(largest float) / 4, it is folded into (u*, v*) and the kernel
is rebuilt. This is the usual absorption scheme for log-domain Sinkhorn: it computes the
log-sum-exp iterates, cannot overflow or underflow for any eps, and costs one bmm per half step
instead of several passes of exp over the (B, n, m) cost.

Convergence is tested every few iterations (more often while the potentials still move): the
solver stops when every problem's row-marginal L1 error, divided by the total mass and taken
right after a column update, is at most ``tol``; columns then hold exactly.

Scale. Only C / eps enters the iterations, and the log-kernel u_i + v_j - C_ij / eps is a
difference of terms as large as R = max|C| / eps, so its rounding error is about R times the
machine epsilon of the dtype. While R * finfo(dtype).eps <= ``MAX_LOGIT_ERROR`` the solve runs
in the input's dtype; above that a float32 (or promoted half-precision) problem runs in float64
and its results are cast back, and a problem that float64 cannot resolve either
(R > MAX_LOGIT_ERROR / 2.2e-16 ~ 4.5e12) is refused with an ElimError that names eps. So no
cost scale gives NaN: eps is in cost units, and a cost scaled by 1e8 with eps unchanged is a
nearly unregularised problem that runs, stays finite and reports ``converged=False`` when
``max_iter`` iterations do not reach ``tol``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from elim.errors import ElimError
from elim.ot.checks import Bounds, Grad, check_choice
from elim.ot.problem import Problem, prepare
from elim.ot.result import OTResult, empty_result, solved

__all__ = ["MAX_LOGIT_ERROR", "sinkhorn"]

#: Largest accepted rounding error of the log-kernel, max|C| / eps * finfo(dtype).eps (see the
#: module docstring): float32 handles max|C| / eps up to ~8.4e3, float64 up to ~4.5e12.
MAX_LOGIT_ERROR = 1e-3
#: Longest gap, in iterations, between two convergence checks.
MAX_CHECK_INTERVAL = 8
#: A batch with B*n*m cost entries checks at least every CHECK_WORK / (B*n*m) iterations
#: (capped by MAX_CHECK_INTERVAL): a check costs about as much as an iteration of a small batch.
CHECK_WORK = 1 << 21


def _kernel(logits: Tensor, mask: Tensor | None) -> Tensor:
    """exp(logits), exactly 0 on padding; ``logits`` is consumed (exp in place)."""
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf)
    return logits.exp_()


def _logits(cost: Tensor, u: Tensor, v: Tensor, eps: float) -> Tensor:
    """u_i + v_j - C_ij / eps for rows u (B, 1, n), v (B, 1, m), as a new tensor."""
    return torch.sub(u.transpose(1, 2), cost, alpha=1.0 / eps).add_(v)


def _log_range(alpha: Tensor, beta: Tensor) -> float:
    """max |log s| over both scalings (inf when one has under- or overflowed)."""
    low_a, high_a = torch.aminmax(alpha)
    low_b, high_b = torch.aminmax(beta)
    low, high = min(low_a.item(), low_b.item()), max(high_a.item(), high_b.item())
    if not (low > 0 and math.isfinite(high)):
        return math.inf
    return max(math.log(high), -math.log(low))


def _working_dtype(p: Problem, eps: float) -> torch.dtype:
    """The dtype that resolves C / eps (the input's, else float64), or an ElimError naming eps."""
    ratio = p.scale / eps
    for dtype in (p.cost.dtype, torch.float64):
        if ratio * torch.finfo(dtype).eps <= MAX_LOGIT_ERROR:
            return dtype
    limit = MAX_LOGIT_ERROR / torch.finfo(torch.float64).eps
    raise ElimError(
        f"sinkhorn: eps = {eps:g} is too small for costs up to {p.scale:.3g} (max|C| / eps = "
        f"{ratio:.3g}; float64 resolves at most {limit:.3g}). eps is in cost units: scale it with "
        f"the cost (e.g. eps = {0.025 * p.scale:.3g}), or use the exact solver"
    )


def _max_check_interval(shape: torch.Size) -> int:
    """Longest gap between convergence checks: a check costs a few O(B n) operations, so
    small problems (where per-call overhead dominates) check less often than large ones."""
    return max(1, min(MAX_CHECK_INTERVAL, CHECK_WORK // shape.numel()))


def _iterate(p: Problem, eps: float, max_iter: int, tol: float) -> tuple[Tensor, ...]:
    """Run the stabilised log-domain iterations; returns plan, u, v, marginal error, n_iter.

    All vectors are rows (B, 1, n) / (B, 1, m): each half step is one batched row-vector times
    matrix product (with the kernel or a transposed view of it) and one division."""
    dtype, mask = p.cost.dtype, p.mask
    # Absorb when a scaling leaves [exp(-tau), exp(tau)]: kernel entries that still matter then
    # stay in the normal range of the dtype.
    tau = math.log(torch.finfo(dtype).max) / 4
    # Padded rows/columns get mass 1 and a unit "denominator", so their scaling stays 1.
    a = p.a.masked_fill(~p.mask_a, 1.0).unsqueeze(1)
    b = p.b.masked_fill(~p.mask_b, 1.0).unsqueeze(1)
    neg_a, mass = -a, p.mass
    pad_a = (~p.mask_a).to(dtype).unsqueeze(1)
    pad_b = (~p.mask_b).to(dtype).unsqueeze(1)
    # pad + x @ y: padded lines get a unit denominator; without padding a plain bmm is enough.
    matvec = torch.baddbmm if mask is not None else (lambda pad, x, y: torch.bmm(x, y))

    # Start: max-plus version of one exact log-domain sweep. Every column of the first kernel
    # holds an entry b_j and every row one >= a_i min_j b_j, so no line of it underflows.
    cost_min = p.cost if mask is None else p.cost.masked_fill(~mask, math.inf)
    u = a.log() + cost_min.amin(2).unsqueeze(1) / eps
    if mask is not None:
        u = u.masked_fill(~p.mask_a.unsqueeze(1), 0.0)
    logits = torch.sub(u.transpose(1, 2), p.cost, alpha=1.0 / eps)
    masked = logits if mask is None else logits.masked_fill(~mask, -math.inf)
    v = b.log() - masked.amax(1, keepdim=True)
    if mask is not None:
        v = v.masked_fill(~p.mask_b.unsqueeze(1), 0.0)
    # amax keeps its input for backward: reuse the buffer only when nothing is recorded.
    logits = logits.add_(v) if not torch.is_grad_enabled() else logits + v
    kernel = _kernel(logits, mask)
    kernel_t = kernel.transpose(1, 2)  # a view: row-vector products with it are fast as well
    alpha, beta = torch.ones_like(a), torch.ones_like(b)

    # Checks (marginal error and scaling range) come every `interval` iterations: after each
    # absorption at once, then at most twice as far apart as before and never so far that the
    # scalings, drifting at their average rate since the last absorption, would pass half the
    # distance left to tau.
    max_interval = _max_check_interval(p.cost.shape)
    n_iter, next_check, interval, absorbed_at = 0, 0, 1, 0
    while True:
        check = n_iter >= next_check or n_iter == max_iter
        absorbed = False
        if check and n_iter > 0:
            spread = _log_range(alpha, beta)
            if spread > tau:
                u, v = u + alpha.log(), v + beta.log()
                kernel = _kernel(_logits(p.cost, u, v, eps), mask)
                kernel_t = kernel.transpose(1, 2)
                alpha, beta = torch.ones_like(a), torch.ones_like(b)
                absorbed, absorbed_at = True, n_iter
        row = matvec(pad_a, beta, kernel_t)
        if check:
            error = torch.linalg.vector_norm(torch.addcmul(neg_a, alpha, row), 1, dim=(1, 2)) / mass
            if n_iter == max_iter or error.amax().item() <= tol:
                break
            if absorbed or n_iter == 0:
                interval = 1
            else:
                rate = spread / (n_iter - absorbed_at)
                room = int((tau - spread) / (2 * rate)) if rate > 0 else max_interval
                interval = max(1, min(2 * interval, max_interval, room))
            next_check = n_iter + interval
        alpha = a / row
        beta = b / matvec(pad_b, alpha, kernel)
        n_iter += 1

    alpha_col = alpha.transpose(1, 2)
    if torch.is_grad_enabled():
        plan = kernel * alpha_col * beta
    else:  # the kernel is not needed any more: scale it in place
        plan = kernel.mul_(alpha_col).mul_(beta)
    return plan, (u + alpha.log()).squeeze(1), (v + beta.log()).squeeze(1), error, n_iter


def sinkhorn(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    eps: float = 0.05,
    max_iter: int = 1000,
    tol: float = 1e-5,
    grad: Grad = "detach",
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
) -> OTResult:
    r"""Entropic OT plans of one or a batch of problems in one call (no loop over problems).

    Solves, per problem, the entropic version of paper Eq. 2 (POT's
    ``ot.sinkhorn(a, b, C, reg=eps)``):

    .. math::

        X^* = \arg\min_{X \ge 0,\ X 1 = a,\ X^T 1 = b}
              \sum_{ij} C_{ij} X_{ij} + \varepsilon \sum_{ij} X_{ij} (\log X_{ij} - 1),
        \qquad X^*_{ij} = \exp((f_i + g_j - C_{ij}) / \varepsilon).

    Parameters
    ----------
    cost : Tensor or array-like
        (n, m) or (B, n, m) costs C; float32/float64 (half precision and integers are
        promoted to float32). Entries on padding may hold anything, NaN included.
    a, b : Tensor, optional
        Masses (n,) / (B, n) and (m,) / (B, m), finite and >= 0, with equal totals per problem
        (relative gap <= 1e-4, then rebalanced). Default: uniform over the real entries.
    eps : float, default 0.05
        Entropic regularisation ε > 0 in cost units (for the cosine cost of ELIM, C ∈ [0, 2],
        0.05 is a mildly blurred matching and 1e-3 close to the unregularised optimum).
        Scaling the cost and eps by one factor gives the same plan.
    max_iter : int, default 1000
        Iterations at most (>= 1); this library default suits any use, the matching layer
        passes its own (:data:`elim.matching.DEFAULT_MAX_ITER`).
    tol : float, default 1e-5
        Stop when every problem's ``marginal_error`` is <= tol (>= 0; 0 runs all iterations).
    grad : {"detach", "autodiff"}, default "detach"
        ``"detach"``: the iterations run under ``torch.no_grad()`` and the plan is a constant
        (``value`` still carries the gradient X* with respect to the cost); ``"autodiff"``:
        gradients flow through every unrolled iteration into cost, a and b.
    mask_a, mask_b : Tensor, optional
        Boolean (B, n) / (B, m), True on real entries. Entries with mask False or mass 0 are
        padding: their plan rows/columns and potentials are exactly 0.

    Returns
    -------
    OTResult
        ``plan``, ``f``/``g`` (``potentials``), ``value`` = <C, X*>, ``n_iter``,
        ``converged`` = marginal_error <= tol, ``marginal_error``, ``solver="sinkhorn"``, in
        the input's dtype (float32 for half precision). A batch of B = 0 problems gives empty
        tensors; an unbatched cost gives results without the batch axis.

    Raises
    ------
    ParameterError
        For an option of the wrong type or out of range (the message names it and its range).
    ElimError
        For inputs :func:`elim.ot.problem.prepare` refuses, and for an eps too small for the
        cost scale even in float64 (see the module docstring; nothing returns NaN).
    """
    eps = Bounds(gt=0, unit="(cost units)").check("eps", eps)
    max_iter = Bounds(ge=1, integer=True).check("max_iter", max_iter)
    tol = Bounds(ge=0).check("tol", tol)
    grad = check_choice("grad", grad, Grad)
    device = cost.device.type if isinstance(cost, Tensor) else "cpu"
    # Under mixed precision autocast would run the products in half precision: keep float32.
    with torch.autocast(device, enabled=False):
        p = prepare(cost, a, b, mask_a, mask_b)
        if p.size == 0:  # a batch of no problems (an unbatched input is one problem)
            return empty_result(p, "sinkhorn")
        dtype = p.cost.dtype
        work = p.to(_working_dtype(p, eps))
        with torch.set_grad_enabled(grad == "autodiff" and torch.is_grad_enabled()):
            plan, u, v, error, n_iter = _iterate(work, eps, max_iter, tol)
        plan = plan.to(dtype)
        error = error.detach().to(dtype)
        return solved(p, plan, (u * eps).to(dtype), (v * eps).to(dtype), solver="sinkhorn",
                      converged=error <= tol, marginal_error=error, n_iter=n_iter)
