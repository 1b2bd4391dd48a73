"""``elim bench gpu``: the GPU report's script, checked on the CPU (``--dry-run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from elim.benchmarks.gpu import PAPER_STEPS, train_command
from elim.cli import main

SCRIPT = Path(__file__).parents[2] / "scripts" / "gpu_check.sh"


def test_dry_run_writes_the_whole_report(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert main(["bench", "gpu", "--dry-run", "--repeats", "1", "--warmup", "0", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["dry_run"] and report["device"]["type"] == "cpu"
    assert {(r["precision"], "error" in r) for r in report["steps"]} == {("32", False),
                                                                        ("bf16", False)}
    assert all(r["elim_s"] > 0 and r["baseline_s"] > 0 for r in report["steps"])
    assert [r["k"] for r in report["sinkhorn"]] == [10, 16]
    assert all(r["B"] == 9 and r["converged"] and r["seconds"] > 0 for r in report["sinkhorn"])
    assert report["train"]["skipped"] == report["ddp"]["skipped"] == "dry run"
    assert "--strategy ddp" in report["ddp"]["command"]
    assert "| cnn-small |" in printed and f"report: {out}" in printed


def test_without_a_gpu_it_says_how_to_dry_run(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "gpu", "--out", str(tmp_path / "unused.json")]) == 2
    assert "`elim bench gpu --dry-run`" in capsys.readouterr().err
    assert not (tmp_path / "unused.json").exists()


def test_the_paper_settings_and_training_commands():
    assert [(b, n * k) for b, n, k, _ in PAPER_STEPS] == [("alexnet-light", 510),
                                                           ("resnet18", 260), ("mixer", 130)]
    one, two = train_command("RUN", 1), train_command("RUN", 2)
    assert "--strategy" not in one and two[-2:] == ["--strategy", "ddp"]
    assert all("16-mixed" in c and "gpu" in c for c in (one, two))


def test_the_shell_script_runs_the_dry_run(tmp_path):
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run([str(SCRIPT), str(out), "--dry-run", "--repeats", "1", "--warmup", "0",
                           "--json"], capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == json.loads(out.read_text())
