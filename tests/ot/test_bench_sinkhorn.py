"""`elim bench sinkhorn` on a tiny setting: JSON keys and the human table (never timings)."""

from __future__ import annotations

import json

from elim.cli import main

TINY = [
    "bench",
    "sinkhorn",
    "--sizes",
    "4",
    "--batch",
    "3",
    "--repeats",
    "1",
    "--min-sample-s",
    "0",
    "--dtype",
    "float64",
]

KEYS = {
    "k",
    "elim_s",
    "pot_batch_s",
    "pot_loop_s",
    "ratio_elim_pot_batch",
    "ratio_elim_pot_loop",
    "elim_min_s",
    "pot_batch_min_s",
    "pot_loop_min_s",
    "ratio_min_elim_pot_batch",
    "ratio_min_elim_pot_loop",
    "max_plan_diff_pot_batch",
    "max_plan_diff_pot_loop",
    "n_iter_elim",
    "n_iter_pot_batch",
    "n_iter_pot_loop",
    "marginal_error_elim",
    "marginal_error_pot_batch",
    "marginal_error_pot_loop",
}


def test_bench_sinkhorn_json(capsys):
    assert main([*TINY, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["n_problems"] == 3 and report["config"]["dtype"] == "float64"
    (row,) = report["results"]
    assert set(row) == KEYS and row["k"] == 4
    assert row["n_iter_elim"] >= 1 and row["n_iter_pot_loop"] >= 1
    # Equal accuracy: every solver meets the L1 tolerance, and the plans agree.
    tol = report["config"]["tol"]
    assert row["marginal_error_elim"] <= tol and row["marginal_error_pot_loop"] <= tol
    assert row["max_plan_diff_pot_loop"] < 1e-4
    if report["config"]["pot_batch_available"]:
        assert row["marginal_error_pot_batch"] <= tol and row["max_plan_diff_pot_batch"] < 1e-4


def test_bench_sinkhorn_table(capsys):
    assert main(TINY) == 0
    out = capsys.readouterr().out
    assert "elim/batch" in out and "POT loop" in out
    assert out.strip().splitlines()[-1].split()[0] == "4"
