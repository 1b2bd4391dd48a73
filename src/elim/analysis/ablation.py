"""The OT ablation of the paper's Table 4: its grid of cells and its table.

Every cell of the grid solver ∈ {sinkhorn, exact (network simplex), qp (qpth)} × weights ∈
{relevance (Eq. 8), self (‖z‖)} × sampling ∈ {gumbel (Eq. 7), none} is one setting of the
matching layer's OT problem (:class:`Cell`). :func:`elim.studies.ablation.run_ablation` trains
and times the cells; :func:`ablation_markdown` renders its ``ablation.json`` as Table 4.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, get_args

from elim.analysis.markdown import results_page
from elim.config import Config
from elim.errors import ElimError
from elim.matching import SINKHORN_OPTIONS, Sampling, Weights
from elim.ot import Solver, solver_unavailable

__all__ = [
    "AXES",
    "GRID",
    "PAPER_CELL",
    "Cell",
    "ablation_markdown",
    "matching_layer",
    "pm",
    "select_cells",
    "unavailable",
]

@dataclass(frozen=True)
class Cell:
    """One setting of the matching layer's OT problem (the fields are ``matching`` keys)."""

    solver: Solver
    weights: Weights
    sampling: Sampling

    @property
    def name(self) -> str:
        return f"{self.solver}-{self.weights}-{self.sampling}"

    def apply(self, config: Config) -> Config:
        """A copy of ``config`` training ELIM with this cell's matching settings.

        Cells of the exact and qp solvers use ``grad="detach"`` (the network simplex has no
        gradient; qp is kept alike) and the default Sinkhorn options (``eps``, ``max_iter``,
        ``tol`` are Sinkhorn's: those solvers do not take them).
        """
        cfg = copy.deepcopy(config)
        cfg.train.method = "elim"
        for axis in AXES:
            setattr(cfg.matching, axis, getattr(self, axis))
        if self.solver != "sinkhorn":
            cfg.matching.grad = "detach"
            for name, default in SINKHORN_OPTIONS.items():
                setattr(cfg.matching, name, default)
        return cfg.validate()


#: The grid's axes, each a ``matching`` key: solver, weights, sampling.
AXES = tuple(f.name for f in fields(Cell))
GRID = tuple(
    Cell(s, w, p) for s in get_args(Solver) for w in get_args(Weights) for p in get_args(Sampling)
)
PAPER_CELL = Cell("sinkhorn", "relevance", "gumbel")  # the paper's (and our default) setting


def select_cells(patterns: Sequence[str] | None) -> list[Cell]:
    """Cells whose name matches any pattern (``fnmatch``: ``sinkhorn-*``); all when ``None``."""
    if not patterns:
        return list(GRID)
    names = [c.name for c in GRID]
    for pat in patterns:
        if not fnmatch.filter(names, pat):
            raise ElimError(f"--cells: {pat!r} matches no cell; cells are {', '.join(names)}")
    return [c for c in GRID if any(fnmatch.fnmatch(c.name, p) for p in patterns)]


def unavailable(cell: Cell) -> str | None:
    """Why ``cell`` cannot run here (its solver needs a missing optional package), or ``None``."""
    return solver_unavailable(cell.solver)


def matching_layer(config: Config):
    """The :class:`elim.matching.IdentityMatching` of ``config.matching``."""
    return config.matching.build()


def pm(stat: dict[str, float], digits: int = 3) -> str:
    """``mean ± std`` of an :func:`elim.metrics.aggregate` entry (the mean alone when n = 1)."""
    if stat.get("n", 2) < 2:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.2f}"


def _iters(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def ablation_markdown(result: dict[str, Any]) -> str:
    """The Table 4 layout: one row per cell, CCC (mean ± std over fold × seed fits) and times."""
    title = (f"OT ablation (Table 4): {result['dataset']} — {result['folds']} "
             f"subject-independent folds × seeds {result['seeds']}")
    note = ("CCC: test metrics of the ELIM fits, mean ± std (ddof = 1) over fold × seed. Matching "
            "time: forward of the identity-matching layer in milliseconds — per training step as "
            "recorded during training (— when the trainer did not record it), and per call in a "
            "timed pass on identical real batches for every cell (median).")
    columns = ("solver", "weights", "sampling", "CCC (mean)", "CCC_v", "CCC_a", "fits",
               "ms/step (training)", "ms/call (timed pass)", "Sinkhorn iterations")
    rows = [(r["solver"] + (" (paper)" if r["paper_default"] else ""), r["weights"],
             r["sampling"], pm(r["ccc_mean"]), pm(r["ccc_v"]), pm(r["ccc_a"]), str(r["fits"]),
             _secs(r["train_seconds_per_step"]), _secs(r["seconds_per_call"]),
             _iters(r["timing"].get("solver_iterations"))) for r in result["cells"]]
    lines = results_page(title, note, columns, rows)
    if result["skipped"]:
        lines += ["", "Skipped cells:", ""]
        lines += [f"- `{s['cell']}`: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines) + "\n"
