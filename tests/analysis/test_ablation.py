"""The Table 4 grid: cell selection, skipping unavailable solvers (running it: tests/studies)."""

from __future__ import annotations

import sys

import pytest

from elim.analysis.ablation import GRID, PAPER_CELL, Cell, select_cells, unavailable
from elim.config import MatchingConfig
from elim.errors import ElimError


def test_grid_is_solver_by_weights_by_sampling():
    assert len(GRID) == 12 and len({c.name for c in GRID}) == 12
    assert PAPER_CELL in GRID
    assert {c.solver for c in GRID} == {"sinkhorn", "exact", "qp"}


def test_select_cells_by_name_and_pattern():
    assert select_cells(None) == list(GRID)
    picked = select_cells(["sinkhorn-*", "exact-self-none"])
    assert [c.name for c in picked] == ["sinkhorn-relevance-gumbel", "sinkhorn-relevance-none",
                                        "sinkhorn-self-gumbel", "sinkhorn-self-none",
                                        "exact-self-none"]
    with pytest.raises(ElimError, match="matches no cell"):
        select_cells(["simplex-*"])


def test_cell_sets_the_matching_and_trains_elim(tiny_config):
    config = tiny_config(train={"epochs": 1})
    config.train.method = "baseline"
    cfg = Cell("exact", "self", "none").apply(config)
    assert (cfg.train.method, cfg.matching.solver, cfg.matching.weights,
            cfg.matching.sampling) == ("elim", "exact", "self", "none")
    assert config.matching.solver == "sinkhorn"  # the input is not modified


def test_sinkhorn_options_apply_to_sinkhorn_cells_only(tiny_config):
    config = tiny_config(train={"epochs": 1})
    config.matching.eps, config.matching.grad = 0.2, "autodiff"
    sinkhorn = Cell("sinkhorn", "relevance", "gumbel").apply(config)
    exact = Cell("exact", "relevance", "gumbel").apply(config)
    assert (sinkhorn.matching.eps, sinkhorn.matching.grad) == (0.2, "autodiff")
    assert (exact.matching.eps, exact.matching.grad) == (MatchingConfig().eps, "detach")
    assert exact.matching.build().solver == "exact"


def test_qp_is_unavailable_without_qpth(monkeypatch):
    monkeypatch.setitem(sys.modules, "qpth", None)  # makes `import qpth` raise ImportError
    assert "qpth" in unavailable(Cell("qp", "relevance", "gumbel"))
    assert unavailable(Cell("sinkhorn", "relevance", "gumbel")) is None
