"""One entry point for every OT solver of :mod:`elim.ot` (in the style of POT's ``ot.solve``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from elim.errors import ElimError
from elim.ot.exact import exact
from elim.ot.result import OTResult
from elim.ot.sinkhorn import sinkhorn

SOLVERS = ("sinkhorn", "exact", "qp")


def solve(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    solver: str = "sinkhorn",
    **kwargs: Any,
) -> OTResult:
    """Solve one or a batch of OT problems with ``solver``:

    * "sinkhorn": entropic OT, :func:`elim.ot.sinkhorn` (keywords eps, max_iter, tol, grad, masks);
    * "exact": network simplex, :func:`elim.ot.exact` with method="emd";
    * "qp": ridge-regularised LP through qpth, :func:`elim.ot.exact` with method="qp".
    """
    if solver == "sinkhorn":
        return sinkhorn(cost, a, b, **kwargs)
    if solver in ("exact", "qp"):
        return exact(cost, a, b, method="emd" if solver == "exact" else "qp", **kwargs)
    raise ElimError(f"solver must be one of {SOLVERS}, got {solver!r}")
