"""``elim bench step`` on a tiny setting: both methods timed on the same batches."""

from __future__ import annotations

import json

from elim.benchmarks.step import bench_step
from elim.cli import main


def test_bench_step_reports_both_methods_and_the_matching():
    r = bench_step("cnn-small", batch=12, image_size=16, n_identities=3, k=4, feature_dim=8,
                   repeats=2, warmup=1, progress=False)
    assert len(r["baseline_all_s"]) == len(r["elim_all_s"]) == 2
    assert r["baseline_s"] > 0 and r["elim_s"] > 0 and r["matching_s"] > 0
    assert r["ratio"] == r["elim_s"] / r["baseline_s"]
    assert 0 < r["matching_share"] < 1


def test_bench_step_command_json(capsys):
    code = main(["bench", "step", "--backbone", "cnn-small", "--batch", "8", "--image-size", "16",
                 "--n-identities", "2", "--k", "3", "--repeats", "1", "--warmup", "0", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backbone"] == "cnn-small" and out["batch"] == 8 and out["n_identities"] == 2


def test_bench_step_under_bf16_autocast():
    r = bench_step("cnn-small", batch=8, image_size=16, n_identities=2, k=3, feature_dim=8,
                   repeats=1, warmup=0, progress=False, precision="bf16")
    assert r["precision"] == "bf16" and r["elim_s"] > 0
