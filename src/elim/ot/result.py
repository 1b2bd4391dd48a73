"""The result object shared by every OT solver of :mod:`elim.ot`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from elim.ot.checks import Solver
from elim.ot.problem import Problem, transport_cost

__all__ = ["OTResult", "empty_result", "solved"]


@dataclass(frozen=True)
class OTResult:
    r"""Solution of one or a batch of discrete OT problems (paper Eq. 2).

    Field names follow POT's ``ot.solve`` result where they mean the same (``plan``, ``value``,
    ``potentials``). Shapes are for a batch of B problems padded to (n, m); unbatched inputs
    (a cost of shape (n, m)) give the same fields without the leading B axis.

    Attributes
    ----------
    plan : Tensor
        (B, n, m) transport plan X*; exactly 0 on padded rows and columns.
    f, g : Tensor
        (B, n), (B, m) dual potentials in cost units, 0 on padding (also as ``potentials``).
        Entropic solver: :math:`X_{ij} = \exp((f_i + g_j - C_{ij}) / \varepsilon)` on real
        entries. Exact solvers: :math:`f_i + g_j \le C_{ij}`, with equality on the plan's
        support. Potentials are defined up to a constant (f + c, g − c).
    value : Tensor
        (B,) transport cost :math:`\langle C, X \rangle = \sum_{ij} C_{ij} X_{ij}` (POT's
        ``value_linear``: the entropy or ridge term is not included). With
        ``grad="detach"`` it still carries the gradient X* with respect to the cost.
    n_iter : int or None
        Iterations run, shared by the batch (one Sinkhorn iteration = one row and one column
        update); None when the backend does not report it (network simplex, interior point).
    converged : Tensor
        (B,) bool, the solver's status per problem: ``marginal_error <= tol`` for the iterative
        solvers (sinkhorn, qp), the simplex's own optimality status for ``exact``.
    marginal_error : Tensor
        (B,) relative L1 error of the row marginal,
        :math:`\sum_i |\sum_j X_{ij} - a_i| / \sum_i a_i`; column marginals hold exactly for
        Sinkhorn (its last update is a column update).
    solver : str
        ``"sinkhorn"``, ``"exact"`` (network simplex) or ``"qp"``.
    """

    plan: Tensor
    f: Tensor
    g: Tensor
    value: Tensor
    n_iter: int | None
    converged: Tensor
    marginal_error: Tensor
    solver: Solver

    @property
    def potentials(self) -> tuple[Tensor, Tensor]:
        """The dual potentials ``(f, g)``, as POT's ``OTResult.potentials``."""
        return self.f, self.g

    @property
    def all_converged(self) -> bool:
        """True when every problem of the batch converged (also for an empty batch)."""
        return bool(self.converged.all())

    def squeeze_batch(self) -> OTResult:
        """Drop the leading batch axis of a batch of one problem (used for unbatched inputs)."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = value[0] if isinstance(value, Tensor) else value
        return OTResult(**values)


def solved(
    p: Problem,
    plan: Tensor,
    f: Tensor,
    g: Tensor,
    *,
    solver: Solver,
    converged: Tensor,
    marginal_error: Tensor,
    n_iter: int | None = None,
) -> OTResult:
    """The result of a solver on the prepared problem ``p``: ``value`` = ⟨C, X⟩ per problem, and
    the batch axis dropped again when the caller passed one unbatched problem."""
    result = OTResult(plan=plan, f=f, g=g, value=transport_cost(p.cost, plan), n_iter=n_iter,
                      converged=converged, marginal_error=marginal_error, solver=solver)
    return result if p.batched else result.squeeze_batch()


def empty_result(p: Problem, solver: Solver) -> OTResult:
    """The result of a batch of B = 0 problems: empty tensors of the right shapes and dtypes."""
    _, n, m = p.cost.shape
    like = {"dtype": p.cost.dtype, "device": p.cost.device}
    return OTResult(
        plan=p.cost.new_zeros(0, n, m),
        f=torch.zeros(0, n, **like),
        g=torch.zeros(0, m, **like),
        value=torch.zeros(0, **like),
        n_iter=0 if solver == "sinkhorn" else None,
        converged=torch.zeros(0, dtype=torch.bool, device=p.cost.device),
        marginal_error=torch.zeros(0, **like),
        solver=solver,
    )
