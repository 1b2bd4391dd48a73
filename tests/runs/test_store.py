"""Run directories: atomic writes and safe loading."""

from __future__ import annotations

import pickle

import pytest

from elim.errors import CheckpointError
from elim.fileio import atomic_write_bytes, write_json
from elim.runs import load_config, load_run, read_json


def test_atomic_write_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_json_round_trip(tmp_path):
    write_json(tmp_path / "c.json", {"a": [1, 2], "b": {"c": 0.5}})
    assert read_json(tmp_path / "c.json") == {"a": [1, 2], "b": {"c": 0.5}}


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        load_config(tmp_path / "nope")


def test_config_without_model_is_refused(tmp_path):
    write_json(tmp_path / "config.json", {"train": {}})
    with pytest.raises(CheckpointError, match="no 'model' section"):
        load_config(tmp_path)


def test_pickle_in_place_of_safetensors_is_refused(tmp_path):
    write_json(tmp_path / "config.json", {"model": {"backbone": "cnn-small", "feature_dim": 8}})
    # A crafted pickle that would run code if unpickled.
    payload = pickle.dumps({"weights": 1})
    (tmp_path / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="never loads pickled"):
        load_run(tmp_path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    import torch

    from elim.models import build_model
    from elim.runs import save_run

    config = {"model": {"backbone": "cnn-small", "feature_dim": 8}}
    model = build_model(config["model"])
    save_run(tmp_path / "ok", model, config)
    assert load_run(tmp_path / "ok")[1] == config
    with torch.no_grad():
        next(model.parameters())[0].fill_(bad)
    save_run(tmp_path / "bad", model, config)
    with pytest.raises(CheckpointError) as err:
        load_run(tmp_path / "bad")
    assert str(err.value).startswith(f"{tmp_path / 'bad' / 'model.safetensors'}: 1 weight tensor")
    assert "NaN or inf" in str(err.value)
