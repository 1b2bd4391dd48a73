"""One entry point for every OT solver of :mod:`elim.ot`, in the style of POT's ``ot.solve``.

Each solver owns its options (the keyword-only parameters of its function); :func:`solve` passes
the options it is given to the chosen solver and refuses any that solver does not take, naming
the solver and its options, so an option is never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor

from elim.errors import ElimError
from elim.ot.checks import Solver, check_choice
from elim.ot.exact import exact
from elim.ot.qp import QPTH_INSTALL, qp, qpth_available
from elim.ot.result import OTResult
from elim.ot.sinkhorn import sinkhorn

__all__ = ["solve", "solver_options", "solver_unavailable"]

#: The function of each solver name of :data:`elim.ot.Solver`.
_FUNCTIONS: dict[Solver, Callable[..., OTResult]] = {"sinkhorn": sinkhorn, "exact": exact, "qp": qp}


def _keyword_only(function: Callable[..., OTResult]) -> tuple[str, ...]:
    params = inspect.signature(function).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


#: The options (keyword-only parameters) of each solver, read once from the signatures:
#: :func:`solve` runs at every training step.
_OPTIONS: dict[Solver, tuple[str, ...]] = {name: _keyword_only(f) for name, f in _FUNCTIONS.items()}


def solver_options(solver: Solver) -> tuple[str, ...]:
    """The options (keyword-only parameters) that ``solver`` accepts, in signature order.

    Parameters
    ----------
    solver : {"sinkhorn", "exact", "qp"}

    Returns
    -------
    tuple of str
        E.g. ``("eps", "max_iter", "tol", "grad", "mask_a", "mask_b")`` for ``"sinkhorn"``.
    """
    return _OPTIONS[check_choice("solver", solver, Solver)]


def solver_unavailable(solver: Solver) -> str | None:
    """Why ``solver`` cannot run in this environment (a missing optional package), or None."""
    if check_choice("solver", solver, Solver) == "qp" and not qpth_available():
        return f"solver 'qp' needs the optional package qpth ({QPTH_INSTALL})"
    return None


def solve(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    solver: Solver = "sinkhorn",
    **options: Any,
) -> OTResult:
    """Solve one or a batch of OT problems (paper Eq. 2) with ``solver``.

    Parameters
    ----------
    cost, a, b
        As for :func:`elim.ot.sinkhorn`: cost (n, m) or (B, n, m), masses (B, n), (B, m).
    solver : {"sinkhorn", "exact", "qp"}, default "sinkhorn"
        ``"sinkhorn"``: entropic OT, :func:`elim.ot.sinkhorn`; ``"exact"``: network simplex,
        :func:`elim.ot.exact`; ``"qp"``: ridge-regularised LP through qpth, :func:`elim.ot.qp`.
    **options
        Options of that solver only (:func:`solver_options`): sinkhorn ``eps, max_iter, tol,
        grad, mask_a, mask_b``; exact ``max_iter, grad, mask_a, mask_b``; qp ``tol, ridge,
        max_iter, grad, mask_a, mask_b``.

    Returns
    -------
    OTResult
        The solver's result (see :class:`elim.ot.OTResult`).

    Raises
    ------
    ElimError
        For an unknown solver, or an option the chosen solver does not take (e.g. ``eps`` for
        ``"exact"``): the message names the solver and the options it accepts.
    """
    accepted = solver_options(solver)
    unknown = [name for name in options if name not in accepted]
    if unknown:
        owners = {name: [s for s in _OPTIONS if name in _OPTIONS[s]] for name in unknown}
        notes = "; ".join(
            f"{name} is an option of {', '.join(owners[name])}" for name in unknown if owners[name]
        )
        raise ElimError(
            f"solver {solver!r} has no option {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(accepted)}" + (f" ({notes})" if notes else "")
        )
    return _FUNCTIONS[solver](cost, a, b, **options)
