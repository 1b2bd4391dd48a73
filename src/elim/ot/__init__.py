"""Optimal transport for ELIM's identity matching (paper Sec. 4.1, Eq. 2, Appendix A).

problem → solver → result:

* :mod:`elim.ot.problem`: checking and batching the inputs (costs, masses, padding masks);
* solvers, each with its own options: :func:`sinkhorn` (batched log-domain entropic OT, all
  problems of a mini-batch in one call), :func:`exact` (network simplex, POT), :func:`qp`
  (ridge-regularised LP as a differentiable QP layer, optional qpth);
* :func:`solve`: one entry point over them (POT's ``ot.solve`` style) that refuses options the
  chosen solver does not take; :func:`solver_options`, :func:`solver_unavailable`;
* :class:`OTResult`: plan, potentials (f, g), value, iterations, convergence, marginal error.

Choices: :data:`Solver` (``"sinkhorn" | "exact" | "qp"``) and :data:`Grad`
(``"detach" | "autodiff"``), declared once in :mod:`elim.ot.checks`.

Inputs: cost (n, m) or (B, n, m); masses a (B, n), b (B, m) (default uniform over real entries);
masks ``mask_a``/``mask_b`` (True = real). Rows/columns with mask False or zero mass are padding.
"""

from elim.ot.checks import Grad, ParameterError, Solver
from elim.ot.exact import exact
from elim.ot.qp import qp
from elim.ot.result import OTResult
from elim.ot.sinkhorn import sinkhorn
from elim.ot.solve import solve, solver_options, solver_unavailable

__all__ = [
    "Grad",
    "OTResult",
    "ParameterError",
    "Solver",
    "exact",
    "qp",
    "sinkhorn",
    "solve",
    "solver_options",
    "solver_unavailable",
]
