"""Crash-safe training: SIGKILL mid-epoch, ``elim train --resume``, bit-identical result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from elim.cli import main
from elim.runs import load_training_checkpoint, resume_checkpoint_path

BATCHES_PER_EPOCH = 7  # tiny.yaml in one process
COMPARED = ("val", "test", "train_loss", "best_epoch", "steps", "epochs_run", "skipped_steps",
            "sizes")


def _train(args: list[str], capsys) -> dict:
    assert main(["train", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["metrics"]


def _kill_mid_epoch(cmd: list[str], run: Path, min_step: int, timeout: float = 240) -> dict:
    """Start ``cmd``; once its resume checkpoint is mid-epoch at ``min_step`` or later, SIGKILL
    it. The process is stopped (SIGSTOP) while its checkpoint is inspected, so the checkpoint
    read is the one it leaves behind. Returns that checkpoint."""
    ckpt = resume_checkpoint_path(run)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "elim.cli", *cmd], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    seen = -1
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != seen:
                os.kill(proc.pid, signal.SIGSTOP)
                seen = ckpt.stat().st_mtime_ns
                state = load_training_checkpoint(ckpt, run)
                done = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
                mid_epoch = 0 < done["processed"] < BATCHES_PER_EPOCH
                if mid_epoch and state["global_step"] >= min_step:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return state
                os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    pytest.fail(f"no mid-epoch checkpoint at step >= {min_step} (exit {proc.returncode})")


def test_killed_twice_and_resumed_equals_an_uninterrupted_run(tmp_path, capsys, tiny_yaml):
    reference = tmp_path / "reference"
    expected = _train(["--config", str(tiny_yaml), "--out", str(reference)], capsys)

    run = tmp_path / "crashed"
    first = _kill_mid_epoch(["train", "--config", str(tiny_yaml), "--out", str(run), "--json"],
                            run, min_step=1)
    sampler = first["FaceDataModule"]["sampler"]  # the DataModule's state: batches consumed
    assert first["epoch"] == 0 and sampler["position"] == first["global_step"]
    assert not (run / "model.safetensors").exists()
    # The resumed run is killed again, in the second epoch (after a validation and best.ckpt).
    second = _kill_mid_epoch(["train", "--resume", str(run), "--json"], run,
                             min_step=BATCHES_PER_EPOCH + 2)
    assert second["epoch"] == 1 and len(second["elim"]["val_history"]) == 1

    resumed = _train(["--resume", str(run)], capsys)
    for key in COMPARED:
        assert resumed[key] == expected[key], key
    want, got = load_file(reference / "model.safetensors"), load_file(run / "model.safetensors")
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    for log in ("ranks/rank-0.jsonl", "csv/metrics.csv"):  # the logs read as if never stopped
        assert (run / "logs" / log).read_text() == (reference / "logs" / log).read_text(), log


def test_resume_refusals_are_one_line_errors(tmp_path, capsys, tiny_yaml):
    run = tmp_path / "run"
    _train(["--config", str(tiny_yaml), "--out", str(run), "--epochs", "1"], capsys)
    cases = [
        (["--resume", str(tmp_path / "missing")], "not a directory"),
        (["--resume", str(run)], "has finished"),
        (["--resume", str(run), "--lr", "0.1"], "drop --lr"),
        (["--resume", str(run), "--config", str(tiny_yaml)], "drop --config"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["--resume", str(tmp_path / "empty")], "last.ckpt: not found"))
    for args, message in cases:
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    # A finished run is trained again in place only with --overwrite (its logs start afresh) ...
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run)]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    _train(["--config", str(tiny_yaml), "--out", str(run), "--epochs", "1", "--overwrite"],
           capsys)
    assert len((run / "logs/ranks/rank-0.jsonl").read_text().splitlines()) == 1
    # ... and a fresh run does not replace an unfinished one without it either.
    (run / "model.safetensors").unlink()
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "holds the checkpoint of an unfinished run" in err and f"--resume {run}" in err
    assert main(["train", "--resume", str(run), "--overwrite"]) == 2
    assert "drop --overwrite" in capsys.readouterr().err


def test_checkpoints_are_written_atomically(tmp_path, tiny_yaml, capsys, monkeypatch):
    """Every checkpoint goes to a temporary file in its folder that is then renamed."""
    import elim.fileio

    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(elim.fileio.os, "replace", spy)
    run = tmp_path / "run"
    _train(["--config", str(tiny_yaml), "--out", str(run), "--epochs", "1"], capsys)
    ckpt_writes = [(s, d) for s, d in renames if d.endswith(".ckpt")]
    # last.ckpt after each of the 6 mid-epoch steps and at the epoch's end; best.ckpt once
    assert [d for _, d in ckpt_writes].count("last.ckpt") == BATCHES_PER_EPOCH
    assert [d for _, d in ckpt_writes].count("best.ckpt") == 1
    assert all(s.startswith(f".{d}.") and s.endswith(".tmp") for s, d in ckpt_writes)
    assert not [p for p in (run / "logs" / "checkpoints").iterdir() if p.name.startswith(".")]
