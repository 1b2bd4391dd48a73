"""Ridge-regularised OT as a differentiable QP layer (``qpth``), the QPTH row of paper Table 4.

Solves the linear programme of paper Eq. 2 plus a small ridge ``ridge / 2 * ||X||^2`` (qpth needs a
strictly convex objective) with qpth's batched interior-point method in float64, all problems in
one call; differentiable with ``grad="autodiff"``. The dense KKT systems have n*m unknowns, so
this is meant for ELIM's small problems (k <= ~30). Needs the optional ``qpth`` package
(:data:`QPTH_INSTALL`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from elim.errors import ElimError
from elim.ot.checks import Bounds, Grad, check_choice
from elim.ot.problem import Problem, prepare, row_marginal_error
from elim.ot.result import OTResult, empty_result, solved

__all__ = ["QPTH_INSTALL", "qp", "qpth_available"]

#: How to install the optional QP backend: qpth's metadata pins numpy < 2, hence ``--no-deps``.
QPTH_INSTALL = "pip install cvxpy && pip install --no-deps qpth"


def qpth_available() -> bool:
    """Whether the ``qp`` solver can run (qpth and the cvxpy it imports are installed)."""
    try:
        _qp_function()
    except ElimError:
        return False
    return True


def _qp_function():
    try:
        import qpth  # noqa: F401  (first, so that a blocked or missing package is reported)
        from qpth.qp import QPFunction
    except ImportError as err:
        raise ElimError(
            f"solver 'qp' needs the optional package qpth: {QPTH_INSTALL} [{err}]"
        ) from None
    return QPFunction


def _potentials_from_plan(plan: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Potentials with f_i + g_j = target_ij on the plan's support (complementary slackness),
    as the plan-weighted least-squares fit; the minimum-norm solution fixes the free shift."""
    n = plan.shape[1]
    weighted = plan * target
    normal = torch.cat(
        [
            torch.cat([torch.diag_embed(plan.sum(2)), plan], 2),
            torch.cat([plan.transpose(1, 2), torch.diag_embed(plan.sum(1))], 2),
        ],
        1,
    )
    rhs = torch.cat([weighted.sum(2), weighted.sum(1)], 1).unsqueeze(-1)
    x = (torch.linalg.pinv(normal, hermitian=True) @ rhs).squeeze(-1)
    return x[:, :n], x[:, n:]


def _solve_qp(p: Problem, ridge: float, max_iter: int) -> tuple[Tensor, Tensor, Tensor]:
    """All problems in one batched qpth call; returns plan, f, g (float64)."""
    qp_function = _qp_function()
    n_batch, n, m = p.cost.shape
    nz = n * m
    like = {"dtype": torch.float64, "device": p.cost.device}
    cost = p.cost.double()
    eye = torch.eye(nz, **like)
    # Row sums (n constraints) and column sums (m - 1: the last one follows from the total).
    rows = torch.kron(torch.eye(n, **like), torch.ones(1, m, **like))
    cols = torch.kron(torch.ones(1, n, **like), torch.eye(m, **like))[: m - 1]
    equality = torch.cat([rows, cols], 0)
    rhs = torch.cat([p.a.double(), p.b.double()[:, : m - 1]], 1)
    solve = qp_function(maxIter=max_iter, verbose=-1)
    z = solve(ridge * eye, cost.reshape(n_batch, nz), -eye, torch.zeros(nz, **like), equality, rhs)
    plan = z.reshape(n_batch, n, m).clamp_min(0)
    if p.mask is not None:
        plan = plan.masked_fill(~p.mask, 0.0)
    f, g = _potentials_from_plan(plan.detach(), (cost + ridge * plan).detach())
    return plan, f, g


def qp(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    tol: float = 1e-6,
    ridge: float = 1e-5,
    max_iter: int = 50,
    grad: Grad = "detach",
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
) -> OTResult:
    r"""OT plans of a ridge-regularised LP (qpth) for the inputs of :func:`elim.ot.sinkhorn`.

    Solves paper Eq. 2 with a ridge term, per problem and in one batched call:

    .. math::

        X^* = \arg\min_{X \ge 0,\ X 1 = a,\ X^T 1 = b}
              \sum_{ij} C_{ij} X_{ij} + \frac{\rho}{2} \sum_{ij} X_{ij}^2 .

    Parameters
    ----------
    cost, a, b, mask_a, mask_b
        As for :func:`elim.ot.sinkhorn`.
    tol : float, default 1e-6
        ``converged`` = ``marginal_error <= tol`` (>= 0).
    ridge : float, default 1e-5
        ρ > 0, in cost units (small: the plan stays close to the LP optimum).
    max_iter : int, default 50
        Interior-point iterations at most (>= 1).
    grad : {"detach", "autodiff"}, default "detach"
        ``"autodiff"``: gradients flow through qpth's KKT layer into the cost and the masses.

    Returns
    -------
    OTResult
        ``solver="qp"``; ``n_iter`` None (qpth does not report it); potentials fitted on the
        plan's support (f_i + g_j = C_ij + ρ X_ij there); dtype of the cost.

    Raises
    ------
    ElimError
        When qpth is not installed (the message gives :data:`QPTH_INSTALL`).
    """
    tol = Bounds(ge=0).check("tol", tol)
    ridge = Bounds(gt=0, unit="(cost units)").check("ridge", ridge)
    max_iter = Bounds(ge=1, integer=True).check("max_iter", max_iter)
    grad = check_choice("grad", grad, Grad)
    p = prepare(cost, a, b, mask_a, mask_b)
    if p.size == 0:  # a batch of no problems (an unbatched input is one problem)
        return empty_result(p, "qp")
    with torch.set_grad_enabled(grad == "autodiff" and torch.is_grad_enabled()):
        plan, f, g = _solve_qp(p, ridge, max_iter)
    dtype = p.cost.dtype
    plan, f, g = plan.to(dtype), f.to(dtype), g.to(dtype)
    error = row_marginal_error(plan.detach().sum(-1), p.a.detach(), p.mass.detach())
    return solved(p, plan, f, g, solver="qp", converged=error <= tol, marginal_error=error)
