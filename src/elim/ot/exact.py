"""Unregularised OT by network simplex (POT's ``ot.emd``): the exact optimum of paper Eq. 2.

Takes the batched, padded inputs of :func:`elim.ot.sinkhorn` and returns an
:class:`~elim.ot.result.OTResult`. Each problem is solved on the CPU in float64 on its real rows
and columns only. Not differentiable: the plan is a constant, and ``value`` = <C, X*> carries the
gradient X* with respect to the cost.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from elim.ot.checks import Bounds, Grad, ParameterError, check_choice
from elim.ot.problem import Problem, prepare, row_marginal_error
from elim.ot.result import OTResult, empty_result, solved

__all__ = ["AUTODIFF_REFUSED", "exact"]

#: The requirement of the :class:`~elim.ot.checks.ParameterError` for ``grad="autodiff"`` with
#: the network simplex (raised by :func:`exact` and by :class:`elim.matching.IdentityMatching`).
AUTODIFF_REFUSED = (
    "'detach' with solver 'exact' (the network simplex is not differentiable; use solver 'qp' "
    "or 'sinkhorn' for grad='autodiff')"
)


def _emd(p: Problem, max_iter: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Network simplex on each problem's real block; returns plan, f, g, optimal (B,) bool."""
    import ot

    n_batch, n, m = p.cost.shape
    cost = p.cost.detach().cpu().double().numpy()
    mass_a = p.a.detach().cpu().double().numpy()
    mass_b = p.b.detach().cpu().double().numpy()
    rows = p.mask_a.cpu().numpy()
    cols = p.mask_b.cpu().numpy()
    plan = np.zeros((n_batch, n, m))
    f, g = np.zeros((n_batch, n)), np.zeros((n_batch, m))
    optimal = np.zeros(n_batch, dtype=bool)
    for i in range(n_batch):
        r, c = rows[i], cols[i]
        a_i, b_i = mass_a[i, r], mass_b[i, c]
        b_i = b_i * (a_i.sum() / b_i.sum())  # exact balance in float64
        block, log = ot.emd(
            a_i, b_i, np.ascontiguousarray(cost[i][np.ix_(r, c)]), numItermax=max_iter, log=True
        )
        plan[i][np.ix_(r, c)] = block
        f[i, r], g[i, c] = log["u"], log["v"]
        optimal[i] = log["result_code"] == 1
    like = p.cost
    to = {"dtype": like.dtype, "device": like.device}
    return (
        torch.from_numpy(plan).to(**to),
        torch.from_numpy(f).to(**to),
        torch.from_numpy(g).to(**to),
        torch.from_numpy(optimal).to(like.device),
    )


def exact(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    max_iter: int = 1_000_000,
    grad: Grad = "detach",
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
) -> OTResult:
    r"""Exact OT plans (network simplex) for the batched inputs of :func:`elim.ot.sinkhorn`.

    Solves paper Eq. 2, the linear programme

    .. math::

        X^* = \arg\min_{X \ge 0,\ X 1 = a,\ X^T 1 = b} \sum_{ij} C_{ij} X_{ij},

    per problem with POT's ``ot.emd`` (float64, CPU).

    Parameters
    ----------
    cost, a, b, mask_a, mask_b
        As for :func:`elim.ot.sinkhorn`.
    max_iter : int, default 1_000_000
        Simplex pivots at most per problem (>= 1; POT's ``numItermax``).
    grad : {"detach"}, default "detach"
        The network simplex has no gradient: ``"autodiff"`` raises ParameterError (use the
        ``qp`` or ``sinkhorn`` solver for a differentiable plan).

    Returns
    -------
    OTResult
        ``solver="exact"``; ``converged`` is the simplex's optimality status, ``n_iter`` None,
        ``f``/``g`` the simplex's dual potentials; dtype and device of the cost.
    """
    max_iter = Bounds(ge=1, integer=True).check("max_iter", max_iter)
    if check_choice("grad", grad, Grad) == "autodiff":
        raise ParameterError("grad", AUTODIFF_REFUSED, grad)
    p = prepare(cost, a, b, mask_a, mask_b)
    if p.size == 0:  # a batch of no problems (an unbatched input is one problem)
        return empty_result(p, "exact")
    plan, f, g, optimal = _emd(p, max_iter)
    return solved(p, plan, f, g, solver="exact", converged=optimal,
                  marginal_error=row_marginal_error(plan.sum(-1), p.a.detach(), p.mass.detach()))
