"""The Table 4 grid: cell selection, skipping unavailable solvers, one real cell, resuming."""

from __future__ import annotations

import sys

import pytest

from elim.analysis import ablation
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
    tiny_config.train.method = "baseline"
    cfg = Cell("exact", "self", "none").apply(tiny_config)
    assert (cfg.train.method, cfg.matching.solver, cfg.matching.weights,
            cfg.matching.sampling) == ("elim", "exact", "self", "none")
    assert tiny_config.matching.solver == "sinkhorn"  # the input is not modified


def test_sinkhorn_options_apply_to_sinkhorn_cells_only(tiny_config):
    tiny_config.matching.eps, tiny_config.matching.grad = 0.2, "autodiff"
    sinkhorn = Cell("sinkhorn", "relevance", "gumbel").apply(tiny_config)
    exact = Cell("exact", "relevance", "gumbel").apply(tiny_config)
    assert (sinkhorn.matching.eps, sinkhorn.matching.grad) == (0.2, "autodiff")
    assert (exact.matching.eps, exact.matching.grad) == (MatchingConfig().eps, "detach")
    assert exact.matching.build().solver == "exact"


def test_qp_is_unavailable_without_qpth(monkeypatch):
    monkeypatch.setitem(sys.modules, "qpth", None)  # makes `import qpth` raise ImportError
    assert "qpth" in unavailable(Cell("qp", "relevance", "gumbel"))
    assert unavailable(Cell("sinkhorn", "relevance", "gumbel")) is None


def test_timed_pass_times_every_layer_on_the_same_batches(tiny_config, tiny_cache):
    rows = list(range(len(tiny_cache)))
    configs = {c.name: c.apply(tiny_config)
               for c in select_cells(["sinkhorn-relevance-gumbel", "exact-relevance-gumbel"])}
    t = ablation.time_matching(configs, tiny_cache, rows, n_batches=3)
    assert set(t) == set(configs)
    assert all(v["calls"] == 3 and v["seconds_per_call"] > 0 for v in t.values())
    assert t["sinkhorn-relevance-gumbel"]["solver_iterations"] > 0  # Sinkhorn reports them
    assert t["exact-relevance-gumbel"]["solver_iterations"] is None


def test_one_cell_runs_skips_qp_and_resumes(tiny_config, tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "qpth", None)
    cells = select_cells(["sinkhorn-relevance-gumbel", "qp-self-none"])
    kw = {"cells": cells, "folds": 2, "seeds": [0], "timing_batches": 2, "cache": tiny_cache,
              "progress": False}
    result = ablation.run_ablation(tiny_config, tmp_path, **kw)
    (row,) = result["cells"]
    assert row["cell"] == "sinkhorn-relevance-gumbel" and row["paper_default"]
    assert row["fits"] == 2 and -1 <= row["ccc_mean"]["mean"] <= 1
    assert row["seconds_per_call"] > 0
    assert result["skipped"] == [{"cell": "qp-self-none", "reason": unavailable(cells[1])}]
    md = (tmp_path / "ablation.md").read_text()
    assert "sinkhorn (paper)" in md and "`qp-self-none`" in md and "qpth" in md
    assert (tmp_path / "cells" / "sinkhorn-relevance-gumbel" / "cv.json").is_file()

    def no_fit(*a, **k):
        raise AssertionError("a finished fit was run again")

    monkeypatch.setattr("elim.training.cv.fit", no_fit)
    monkeypatch.setattr(ablation, "time_matching", no_fit)
    again = ablation.run_ablation(tiny_config, tmp_path, **kw)
    assert again["cells"][0]["ccc_mean"] == row["ccc_mean"]
