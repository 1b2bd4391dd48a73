"""`elim train` in hostile hands: occupied folders, concurrent writers, too few identities, a full
disk, Ctrl-C, and output redirected to a file — each a one-line outcome, never lost data."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess

import numpy as np
import pytest

from elim.cli import main
from elim.data.cache import FaceCache
from elim.deps import yaml
from elim.errors import DataError
from elim.runs import LOCK, lock_holder, resume_checkpoint_path
from elim.training import fit


def _one_line_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    line = [x for x in err.splitlines() if x.startswith("elim train: ")]
    assert len(line) == 1, err
    for needle in needles:
        assert needle in line[0], (needle, line[0])


# ------------------------------------------------------------------ occupied run folders
def test_a_finished_run_is_kept_unless_overwrite(tmp_path, tiny_yaml, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--epochs", "1",
                 "--json"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--epochs", "1",
                 "--seed", "1"]) == 2
    _one_line_error(capsys.readouterr().err, "holds a finished run", "--overwrite")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--epochs", "1",
                 "--seed", "1", "--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] != json.loads(before["metrics.json"])
    assert not (run / LOCK).exists()


def test_a_folder_of_other_files_is_never_written_into(tmp_path, tiny_yaml, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for extra in ([], ["--overwrite"]):
        assert main(["train", "--config", str(tiny_yaml), "--out", str(out), *extra]) == 2
        _one_line_error(capsys.readouterr().err, "thesis.tex", "new or empty folder")
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_a_run_being_written_is_locked_and_ctrl_c_says_how_to_resume(tmp_path, tiny_yaml,
                                                                       capsys, procs):
    run = tmp_path / "run"
    first = procs.start(["train", "--config", str(tiny_yaml), "--out", str(run), "--epochs",
                         "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        procs.wait_for(resume_checkpoint_path(run), first)  # it is writing the run
        assert lock_holder(run)["pid"] == first.pid
        assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--overwrite"]) == 2
        _one_line_error(capsys.readouterr().err, f"is being written by process {first.pid}")
        assert main(["train", "--resume", str(run)]) == 2  # nor may it be resumed meanwhile
        _one_line_error(capsys.readouterr().err, f"process {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=300)
    assert first.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"elim train: interrupted; continue with `elim train --resume {run}`")
    assert not (run / LOCK).exists()


# ------------------------------------------------------------------ splits a run cannot use
@pytest.mark.parametrize("n_identities", [1, 2])
def test_too_few_identities_to_split_is_one_line(tiny_config, n_identities):
    config = tiny_config(data={"options": {"n_identities": n_identities, "clips_per_identity": 2,
                                           "frames_per_clip": 3}})
    with pytest.raises(DataError, match=rf"needs at least 3 groups \(identities\), one per part, "
                                        rf"but there are only {n_identities}"):
        fit(config, None)


def test_an_official_split_without_a_test_part_is_refused(tiny_config, tiny_cache):
    table = tiny_cache.table.copy()
    table["split"] = "train"
    cache = FaceCache.from_arrays(np.asarray(tiny_cache.images), table)
    with pytest.raises(DataError, match="only 'train' rows.*nothing to test on; use --split-mode random"):
        fit(tiny_config(), None, cache=cache)


def test_cross_validation_with_more_folds_than_identities_is_one_line(tiny_cache):
    from elim.training.cv import fold_splits

    table = tiny_cache.table[tiny_cache.table["identity"].isin(
        sorted(set(tiny_cache.table["identity"]))[:2])]
    with pytest.raises(DataError, match="6-fold .* needs at least 6 identities .* has 2: pass "
                                        "--folds 2"):
        fold_splits(table, 6)


# ------------------------------------------------------------------ a full disk
def _fill_disk_after(monkeypatch, module, n_writes: int) -> None:
    real = module.atomic_write_bytes
    calls = []

    def write(path, data):
        calls.append(path)
        if len(calls) > n_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(module, "atomic_write_bytes", write)


def test_a_full_disk_is_one_line_and_the_run_resumes(tmp_path, tiny_yaml, capsys, monkeypatch):
    import elim.runs.store
    import elim.training.checkpoint

    run = tmp_path / "run"
    with monkeypatch.context() as m:  # no space from the first checkpoint on
        _fill_disk_after(m, elim.training.checkpoint, 0)
        assert main(["train", "--config", str(tiny_yaml), "--out", str(run)]) == 2
    _one_line_error(capsys.readouterr().err, str(run), "no space left on device",
                    "start the run again")
    assert not resume_checkpoint_path(run).exists() and not (run / LOCK).exists()

    with monkeypatch.context() as m:  # the disk fills while the model is written
        _fill_disk_after(m, elim.runs.store, 0)
        assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--json"]) == 2
    _one_line_error(capsys.readouterr().err, str(run), "nothing half-written",
                    f"elim train --resume {run}")
    assert not (run / "model.safetensors").exists()  # no truncated model was left
    assert main(["train", "--resume", str(run), "--json"]) == 0  # space freed: it finishes
    assert json.loads(capsys.readouterr().out)["metrics"]["steps"] == 14
    assert (run / "model.safetensors").is_file()


# ------------------------------------------------------------------ output redirected to a file
def test_output_to_a_file_is_plain_lines(tmp_path, tiny_values, procs):
    values = {**tiny_values, "train": {**tiny_values["train"], "progress": True}}
    config = tmp_path / "progress.yaml"
    config.write_text(yaml.safe_dump(values))
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        proc = procs.start(["train", "--config", str(config), "--out", str(tmp_path / "run")],
                           stdout=fh, stderr=subprocess.STDOUT)
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "\r" not in text
    assert len(text.encode()) < 8000, len(text.encode())
    epochs = [x for x in text.splitlines() if x.startswith("epoch ")]
    assert [x.split(":")[0] for x in epochs] == ["epoch 1/2, step 7", "epoch 2/2, step 14"]
    assert all("loss " in x and "val ccc_mean " in x for x in epochs)
    assert "weights_only" not in text  # Lightning's line at every checkpoint is gone
    assert "| test |" in text and "run dir:" in text
