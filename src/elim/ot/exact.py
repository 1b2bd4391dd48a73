"""Unregularised OT: network simplex (POT's ``ot.emd``) and a QP layer (``qpth``).

Both take the batched, padded inputs of :func:`elim.ot.sinkhorn` and return an
:class:`~elim.ot.result.OTResult`. They solve the linear programme of paper Eq. 2 without the
entropy term; the paper compares Sinkhorn with QPTH in its Table 4.

* ``method="emd"``: exact optimum per problem on the CPU in float64 (POT's network simplex,
  only the real rows and columns of each problem). Not differentiable: the plan is a constant;
  ``value`` = <C, P> carries the gradient P with respect to the cost.
* ``method="qp"``: the LP with a small ridge ``ridge / 2 * ||P||^2`` (qpth needs a strictly
  convex objective) solved by qpth's batched interior-point method in float64, all problems in
  one call; differentiable with ``grad="autodiff"``. The dense KKT systems have n*m unknowns,
  so this is meant for ELIM's small problems (k <= ~30). Needs the optional ``qpth`` package.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from elim.errors import ElimError
from elim.ot.problem import Problem, prepare, row_marginal_error, transport_cost
from elim.ot.result import OTResult

METHODS = ("emd", "qp")
GRADS = ("detach", "autodiff")


def _emd(p: Problem, max_iter: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
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
            a_i,
            b_i,
            np.ascontiguousarray(cost[i][np.ix_(r, c)]),
            numItermax=max_iter or 1_000_000,
            log=True,
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


#: How to install the optional QP backend: qpth's metadata pins numpy < 2, hence ``--no-deps``.
QPTH_INSTALL = "pip install cvxpy && pip install --no-deps qpth"


def qpth_available() -> bool:
    """Whether the optional ``qp`` solver can run (qpth and the cvxpy it imports are installed)."""
    try:
        _qp_function()
    except ElimError:
        return False
    return True


def _qp_function():
    try:
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


def _qp(p: Problem, ridge: float, max_iter: int | None) -> tuple[Tensor, Tensor, Tensor]:
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
    solve = qp_function(maxIter=max_iter or 50, verbose=-1)
    z = solve(ridge * eye, cost.reshape(n_batch, nz), -eye, torch.zeros(nz, **like), equality, rhs)
    plan = z.reshape(n_batch, n, m).clamp_min(0)
    if p.mask is not None:
        plan = plan.masked_fill(~p.mask, 0.0)
    f, g = _potentials_from_plan(plan.detach(), (cost + ridge * plan).detach())
    return plan, f, g


def exact(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    method: str = "emd",
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
    grad: str = "detach",
    tol: float = 1e-6,
    ridge: float = 1e-5,
    max_iter: int | None = None,
) -> OTResult:
    """Unregularised OT plans for the same batched inputs as :func:`elim.ot.sinkhorn`.

    ``method``: "emd" (network simplex, exact) or "qp" (qpth, ridge-regularised, differentiable
    with ``grad="autodiff"``). ``tol`` decides ``converged`` for "qp" (relative L1 row-marginal
    error); "emd" reports the simplex's own optimality status. ``max_iter``: simplex pivots
    (default 1e6) or interior-point iterations (default 50). ``n_iter`` is None (not reported).
    """
    if method not in METHODS:
        raise ElimError(f"method must be one of {METHODS}, got {method!r}")
    if grad not in GRADS:
        raise ElimError(f"grad must be one of {GRADS}, got {grad!r}")
    if method == "emd" and grad == "autodiff":
        raise ElimError(
            "the network simplex is not differentiable; use grad='detach', method='qp' or sinkhorn"
        )
    if not ridge > 0:
        raise ElimError(f"ridge must be positive, got {ridge!r}")
    p = prepare(cost, a, b, mask_a, mask_b)
    if method == "emd":
        plan, f, g, optimal = _emd(p, max_iter)
    else:
        with torch.set_grad_enabled(grad == "autodiff" and torch.is_grad_enabled()):
            plan, f, g = _qp(p, float(ridge), max_iter)
        to = {"dtype": p.cost.dtype}
        plan, f, g = plan.to(**to), f.to(**to), g.to(**to)
    error = row_marginal_error(plan.detach().sum(-1), p.a, p.mass)
    converged = optimal if method == "emd" else error <= tol
    result = OTResult(
        plan=plan,
        f=f,
        g=g,
        value=transport_cost(p.cost, plan),
        n_iter=None,
        converged=converged,
        marginal_error=error,
        solver="exact" if method == "emd" else "qp",
    )
    return result if p.batched else result.squeeze_batch()
