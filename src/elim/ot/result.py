"""The result object shared by every OT solver of :mod:`elim.ot`."""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor


@dataclass(frozen=True)
class OTResult:
    """Solution of one or a batch of discrete OT problems (shapes for a batch of B problems).

    plan:           (B, n, m) transport plan; exactly 0 on padded rows and columns.
    f, g:           (B, n), (B, m) dual potentials in cost units (0 on padding). For the entropic
                    solver ``plan = exp((f_i + g_j - C_ij) / eps)`` on real entries; for the exact
                    solvers ``f_i + g_j <= C_ij`` with equality on the plan's support. Potentials
                    are defined up to a constant (f + c, g - c).
    value:          (B,) transport cost <C, P> (the entropy term is not included).
    n_iter:         iterations run (one iteration = one row and one column update for Sinkhorn);
                    None when the backend does not report it (network simplex, interior point).
    converged:      (B,) bool, per problem; ``marginal_error <= tol`` for iterative solvers, the
                    solver's own optimality status for the network simplex.
    marginal_error: (B,) L1 error of the row marginal divided by the total mass,
                    ``sum_i |sum_j P_ij - a_i| / sum_i a_i``; column marginals hold exactly for
                    Sinkhorn (its last update is a column update).
    solver:         "sinkhorn", "exact" (network simplex) or "qp".

    Unbatched inputs (cost of shape (n, m)) give the same fields without the leading B axis.
    """

    plan: Tensor
    f: Tensor
    g: Tensor
    value: Tensor
    n_iter: int | None
    converged: Tensor
    marginal_error: Tensor
    solver: str

    @property
    def all_converged(self) -> bool:
        """True when every problem of the batch converged."""
        return bool(self.converged.all())

    def squeeze_batch(self) -> OTResult:
        """Drop the leading batch axis of a batch of one problem (used for unbatched inputs)."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = value[0] if isinstance(value, Tensor) else value
        return OTResult(**values)
