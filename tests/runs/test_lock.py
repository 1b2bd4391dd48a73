"""One writer per run directory: the lock file, stale locks, and claiming a folder for a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from elim.errors import ElimError
from elim.runs import LOCK, RunLock, claim_run_dir, lock_holder


def test_a_live_holder_is_refused_and_named(tmp_path):
    run = tmp_path / "run"
    first = RunLock(run).acquire()
    assert first.held and lock_holder(run)["pid"] == os.getpid()
    with pytest.raises(ElimError, match=rf"is being written by process {os.getpid()}"):
        RunLock(run).acquire()
    first.release()
    assert not first.held and not (run / LOCK).exists()  # released: removed
    again = RunLock(run).acquire()  # and free again
    assert again.stale is None
    again.release()


def test_the_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from elim.runs import RunLock
        RunLock({str(run)!r}).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ElimError, match=f"process {holder.pid}"):
            RunLock(run).acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()
    assert lock_holder(run)["pid"] == holder.pid  # left behind by the dead process
    lock = RunLock(run).acquire()
    try:
        assert lock.stale["pid"] == holder.pid and lock_holder(run)["pid"] == os.getpid()
    finally:
        lock.release()


def _finished_run(run):
    (run / "logs" / "checkpoints").mkdir(parents=True)
    (run / "logs" / "csv").mkdir()
    (run / "logs" / "csv" / "metrics.csv").write_text("old")
    for name in ("model.safetensors", "config.json", "metrics.json", "splits.json"):
        (run / name).write_text("old")


def test_claim_refuses_a_finished_run_unless_overwrite(tmp_path):
    run = tmp_path / "run"
    _finished_run(run)
    with pytest.raises(ElimError, match="holds a finished run .*--overwrite"):
        claim_run_dir(run)
    assert (run / "model.safetensors").read_text() == "old" and not (run / LOCK).exists()
    lock = claim_run_dir(run, overwrite=True)
    try:  # the old run's files are gone: nothing of it is mixed with the new run
        assert sorted(p.name for p in run.iterdir()) == [LOCK]
    finally:
        lock.release()


def test_claim_refuses_a_resumable_run_and_gives_the_resume_command(tmp_path):
    run = tmp_path / "run"
    (run / "logs" / "checkpoints").mkdir(parents=True)
    (run / "logs" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ElimError, match=f"elim train --resume {run}"):
        claim_run_dir(run)
    claim_run_dir(run, resume=True).release()  # resuming only locks
    assert (run / "logs" / "checkpoints" / "last.ckpt").exists()


def test_claim_never_writes_into_a_folder_of_other_files(tmp_path):
    for extra in ("notes.txt", "logs/my-own-logs"):
        run = tmp_path / extra.replace("/", "_")
        _finished_run(run)
        (run / extra).write_text("mine")
        for overwrite in (False, True):
            with pytest.raises(ElimError, match=f"files that no elim run writes \\({extra}\\)"):
                claim_run_dir(run, overwrite=overwrite)
        assert (run / extra).read_text() == "mine" and (run / "model.safetensors").exists()


def test_claim_replaces_what_a_run_left_before_its_first_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "logs" / "csv").mkdir(parents=True)
    (run / "logs" / "csv" / "metrics.csv").write_text("partial")
    (run / ".model.safetensors.abc.tmp").write_bytes(b"")
    claim_run_dir(run).release()
    assert list(run.iterdir()) == []
    claim_run_dir(tmp_path / "new" / "run").release()  # a new path is created
    assert (tmp_path / "new" / "run").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ElimError, match="not a folder"):
        claim_run_dir(tmp_path / "file")
