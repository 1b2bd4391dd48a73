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
