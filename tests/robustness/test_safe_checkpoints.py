"""Loading a run or a checkpoint never unpickles code (safetensors, JSON, weights_only)."""

from __future__ import annotations

import pickle

import pytest
import torch

from elim.errors import CheckpointError
from elim.fileio import write_json
from elim.models import build_model, model_config
from elim.runs import (
    latest_checkpoint,
    load_run,
    load_training_checkpoint,
    save_run,
)

MODEL = model_config("cnn-small", feature_dim=8, channels=[4, 4, 8, 8])


def _run(tmp_path):
    run = tmp_path / "run"
    save_run(run, build_model(MODEL), {"model": MODEL})
    return run


def test_marker_payload_really_runs_code_when_unpickled(tmp_path, hostile):
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(hostile.MarkerPayload(marker)))
    assert marker.exists()  # so the marker checks below can fail


def test_pickle_in_place_of_the_weights_is_refused_without_running(tmp_path, hostile):
    run = _run(tmp_path)
    marker = tmp_path / "pwned"
    (run / "model.safetensors").write_bytes(pickle.dumps({"w": hostile.MarkerPayload(marker)}))
    with pytest.raises(CheckpointError, match="never loads pickled"):
        load_run(run)
    torch.save({"state_dict": {"w": hostile.MarkerPayload(marker)}}, run / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_run(run)
    assert not marker.exists()


def test_a_checkpoint_file_given_as_the_run_is_refused(tmp_path, hostile):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "x": hostile.MarkerPayload(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="not a directory"):
        load_run(ckpt)
    assert not marker.exists()


def test_config_must_be_plain_json_with_a_model_mapping(tmp_path):
    run = _run(tmp_path)
    (run / "config.json").write_bytes(pickle.dumps({"model": MODEL}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_run(run)
    write_json(run / "config.json", {"model": "cnn-small"})
    with pytest.raises(CheckpointError, match="'model' must be a mapping"):
        load_run(run)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    run = _run(tmp_path)
    write_json(run / "config.json", {"model": {**MODEL, "feature_dim": 16}})
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_run(run)


def test_training_checkpoints_load_with_weights_only(tmp_path, hostile):
    run = _run(tmp_path)
    ckpt = run / "logs" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    good = {"state_dict": {"w": torch.ones(2)}, "epoch": 1, "rng": {"python": [3, [1, 2], None]}}
    torch.save(good, ckpt)
    state = load_training_checkpoint(ckpt, run)
    assert torch.equal(state["state_dict"]["w"], torch.ones(2)) and state["epoch"] == 1
    assert latest_checkpoint(run) == ckpt

    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "callbacks": hostile.MarkerPayload(marker)}, ckpt)
    with pytest.raises(CheckpointError, match=r"refused; not a checkpoint .*weights_only=True"):
        load_training_checkpoint(ckpt, run)
    ckpt.write_bytes(pickle.dumps({"state_dict": hostile.MarkerPayload(marker)}))
    with pytest.raises(CheckpointError, match="refused"):
        load_training_checkpoint(ckpt, run)
    assert not marker.exists()


def test_training_checkpoints_are_read_only_from_the_runs_logs(tmp_path):
    run = _run(tmp_path)
    (run / "logs").mkdir()
    elsewhere = tmp_path / "elsewhere.ckpt"
    torch.save({"state_dict": {}}, elsewhere)
    for path in (elsewhere, run / "logs" / ".." / ".." / "elsewhere.ckpt"):
        with pytest.raises(CheckpointError, match="only from the run's own"):
            load_training_checkpoint(path, run)
    link = run / "logs" / "link.ckpt"
    link.symlink_to(elsewhere)  # a link inside logs/ pointing out is refused as well
    with pytest.raises(CheckpointError, match="only from the run's own"):
        load_training_checkpoint(link, run)
    assert latest_checkpoint(run) is None
    wrong_suffix = run / "logs" / "state.pt"
    torch.save({"state_dict": {}}, wrong_suffix)
    with pytest.raises(CheckpointError, match=r"\*\.ckpt"):
        load_training_checkpoint(wrong_suffix, run)


def test_unfinished_checkpoint_writes_are_ignored(tmp_path):
    run = _run(tmp_path)
    folder = run / "logs" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"state_dict": {}}, folder / "last.ckpt")
    (folder / ".last.ckpt.abc.tmp").write_bytes(b"partial")
    (folder / ".hidden.ckpt").write_bytes(b"partial")
    assert latest_checkpoint(run) == folder / "last.ckpt"
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="refused"):
        load_training_checkpoint(folder / "last.ckpt", run)


# ------------------------------------------------------------------ through the commands
def test_crafted_checkpoint_given_to_resume_is_refused(tmp_path, hostile, capsys):
    from elim.cli import main

    run = tmp_path / "run"
    (run / "logs" / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "elim": {"config": hostile.MarkerPayload(marker)}},
               run / "logs" / "checkpoints" / "last.ckpt")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "weights_only" in err and "Traceback" not in err
    assert not marker.exists()


def test_crafted_files_given_to_evaluate_are_refused(tmp_path, hostile, capsys):
    from elim.cli import main

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "x": hostile.MarkerPayload(marker)}, ckpt)
    assert main(["evaluate", str(ckpt)]) == 2
    assert "not a directory" in capsys.readouterr().err
    run = _run(tmp_path)
    (run / "model.safetensors").write_bytes(pickle.dumps(hostile.MarkerPayload(marker)))
    assert main(["evaluate", str(run)]) == 2
    assert "never loads pickled" in capsys.readouterr().err
    assert not marker.exists()
