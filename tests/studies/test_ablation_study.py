"""Running the Table 4 grid: the timed pass, one real cell, skipping qp, resuming."""

from __future__ import annotations

import sys

from elim.analysis.ablation import unavailable
from elim.studies import ablation
from elim.studies.ablation import select_cells


def test_timed_pass_times_every_layer_on_the_same_batches(tiny_config, tiny_cache):
    config = tiny_config(train={"epochs": 1})
    rows = list(range(len(tiny_cache)))
    configs = {c.name: c.apply(config)
               for c in select_cells(["sinkhorn-relevance-gumbel", "exact-relevance-gumbel"])}
    t = ablation.time_matching(configs, tiny_cache, rows, n_batches=3)
    assert set(t) == set(configs)
    assert all(v["calls"] == 3 and v["seconds_per_call"] > 0 for v in t.values())
    assert t["sinkhorn-relevance-gumbel"]["solver_iterations"] > 0  # Sinkhorn reports them
    assert t["exact-relevance-gumbel"]["solver_iterations"] is None


def test_one_cell_runs_skips_qp_and_resumes(tiny_config, tiny_cache, tmp_path, monkeypatch):
    config = tiny_config(train={"epochs": 1})
    monkeypatch.setitem(sys.modules, "qpth", None)
    cells = select_cells(["sinkhorn-relevance-gumbel", "qp-self-none"])
    kw = {"cells": cells, "folds": 2, "seeds": [0], "timing_batches": 2, "cache": tiny_cache,
              "progress": False}
    result = ablation.run_ablation(config, tmp_path, **kw)
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
    again = ablation.run_ablation(config, tmp_path, **kw)
    assert again["cells"][0]["ccc_mean"] == row["ccc_mean"]
