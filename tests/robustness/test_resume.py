"""Crash-safe training: SIGKILL (one or all processes) or SIGUSR1 mid-epoch, ``elim train
--resume``, bit-identical result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
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


def _stop_mid_epoch(procs, cmd: list[str], run: Path, min_step: int, *,
                    signum: int = signal.SIGKILL, batches_per_epoch: int = BATCHES_PER_EPOCH,
                    timeout: float = 600) -> tuple[dict, str, int]:
    """Start ``elim CMD`` (in a process group of its own: all its DDP processes); once its
    resume checkpoint is mid-epoch at ``min_step`` or later, send ``signum`` — SIGKILL to every
    process, another signal to the first — and wait for the end. The group is stopped
    (SIGSTOP) while the checkpoint is inspected, so the checkpoint read is the one it leaves
    behind or, for a graceful stop, the last one before the signal. Returns that checkpoint,
    the standard error and the exit status."""
    ckpt = resume_checkpoint_path(run)
    with tempfile.TemporaryFile("w+") as err:
        proc = procs.start(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        seen, state = -1, None
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if ckpt.exists() and ckpt.stat().st_mtime_ns != seen:
                    os.killpg(proc.pid, signal.SIGSTOP)
                    seen = ckpt.stat().st_mtime_ns
                    state = load_training_checkpoint(ckpt, run)
                    done = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
                    if 0 < done["processed"] < batches_per_epoch and \
                            state["global_step"] >= min_step:
                        if signum == signal.SIGKILL:
                            os.killpg(proc.pid, signal.SIGKILL)
                        else:
                            os.kill(proc.pid, signum)
                        os.killpg(proc.pid, signal.SIGCONT)
                        proc.wait(timeout=timeout)
                        err.seek(0)
                        return state, err.read(), proc.returncode
                    os.killpg(proc.pid, signal.SIGCONT)
                time.sleep(0.002)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        err.seek(0)
        pytest.fail(f"no mid-epoch checkpoint at step >= {min_step} (exit {proc.returncode}): "
                    f"{err.read()[-2000:]}")


def _same_run(got: Path, want: Path, got_metrics: dict, want_metrics: dict) -> None:
    """Metrics, every weight tensor and the logs of two runs are identical."""
    for key in COMPARED:
        assert got_metrics[key] == want_metrics[key], key
    w, g = load_file(want / "model.safetensors"), load_file(got / "model.safetensors")
    assert w.keys() == g.keys()
    assert all(torch.equal(w[k], g[k]) for k in w)
    logs = ["csv/metrics.csv", *(f"ranks/{p.name}" for p in (want / "logs" / "ranks").iterdir())]
    for log in logs:  # the logs read as if never stopped
        assert (got / "logs" / log).read_text() == (want / "logs" / log).read_text(), log


def test_killed_stopped_and_resumed_equals_an_uninterrupted_run(tmp_path, capsys, tiny_yaml,
                                                                  procs):
    reference = tmp_path / "reference"
    expected = _train(["--config", str(tiny_yaml), "--out", str(reference)], capsys)

    run = tmp_path / "crashed"
    first, _, _ = _stop_mid_epoch(procs, ["train", "--config", str(tiny_yaml), "--out", str(run),
                                   "--json"], run, min_step=1)
    sampler = first["FaceDataModule"]["sampler"]  # the DataModule's state: batches consumed
    assert first["epoch"] == 0 and sampler["position"] == first["global_step"]
    assert not (run / "model.safetensors").exists()
    # The resumed run is stopped by SIGUSR1 (SLURM's warning before a time limit) in the second
    # epoch: it writes last.ckpt at the next batch's end and exits with the resume command.
    second, err, code = _stop_mid_epoch(procs, ["train", "--resume", str(run), "--json"], run,
                                        min_step=BATCHES_PER_EPOCH + 2, signum=signal.SIGUSR1)
    assert second["epoch"] == 1 and len(second["elim"]["val_history"]) == 1
    assert code == 2 and "Traceback" not in err, err
    assert f"stopped on SIGUSR1 at step {second['global_step'] + 1}" in err
    assert f"continue with `elim train --resume {run}`" in err
    assert not (run / "model.safetensors").exists()

    resumed = _train(["--resume", str(run)], capsys)
    _same_run(run, reference, resumed, expected)


def test_a_killed_two_process_run_resumes_exactly(tmp_path, ddp_reference, tiny_yaml, procs):
    """SIGKILL every process of a DDP run mid-epoch; ``--resume`` (two processes again) ends
    where the uninterrupted two-process run ends."""
    reference, expected = ddp_reference
    per_epoch = expected["steps"] // expected["epochs_run"]
    run = tmp_path / "crashed"
    state, _, _ = _stop_mid_epoch(procs, ["train", "--config", str(tiny_yaml), *procs.ddp_args,
                                          "--out", str(run), "--json"], run,
                                  min_step=per_epoch + 1, batches_per_epoch=per_epoch)
    assert state["epoch"] == 1 and state["elim"]["world_size"] == 2
    proc = subprocess.run([sys.executable, "-m", "elim.cli", "train", "--resume", str(run),
                           "--json"], capture_output=True, text=True, timeout=900,
                          env=procs.env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _same_run(run, reference, json.loads(proc.stdout)["metrics"], expected)


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
