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
from dataclasses import dataclass
from typing import Any

from elim.analysis.markdown import results_page
from elim.config import Config
from elim.errors import ElimError

__all__ = [
    "GRID",
    "PAPER_CELL",
    "Cell",
    "ablation_markdown",
    "matching_layer",
    "pm",
    "select_cells",
    "unavailable",
]

SOLVERS = ("sinkhorn", "exact", "qp")
WEIGHTS = ("relevance", "self")
SAMPLINGS = ("gumbel", "none")


@dataclass(frozen=True)
class Cell:
    """One setting of the matching layer's OT problem."""

    solver: str
    weights: str
    sampling: str

    @property
    def name(self) -> str:
        return f"{self.solver}-{self.weights}-{self.sampling}"

    def apply(self, config: Config) -> Config:
        """A copy of ``config`` training ELIM with this cell's matching settings."""
        cfg = copy.deepcopy(config)
        cfg.train.method = "elim"
        cfg.matching.solver, cfg.matching.weights = self.solver, self.weights
        cfg.matching.sampling = self.sampling
        if self.solver != "sinkhorn":
            cfg.matching.grad = "detach"  # network simplex has no gradient; qp keeps ours alike
        return cfg.validate()


GRID = tuple(Cell(s, w, p) for s in SOLVERS for w in WEIGHTS for p in SAMPLINGS)
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
    """Why ``cell`` cannot run here (a missing optional package), or ``None``."""
    from elim.ot.exact import QPTH_INSTALL

    needs = {"qp": ("qpth", QPTH_INSTALL), "exact": ("ot", "pip install pot")}
    if cell.solver not in needs:
        return None
    module, fix = needs[cell.solver]
    try:
        __import__(module)
    except ImportError:
        return f"solver {cell.solver!r} needs the package {module!r} ({fix})"
    return None


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
