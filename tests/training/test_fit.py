"""fit → run directory → evaluate, and the train / evaluate commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from elim.cli import main
from elim.config import preprocess_for
from elim.data.splits import make_splits
from elim.deps import yaml
from elim.evaluation import evaluate_run, infer
from elim.runs import read_json
from elim.training import fit


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_cache, tiny_values):
    """A two-epoch ELIM run on the tiny synthetic set (shared by the tests of this module)."""
    from elim.config import config_from_dict

    config = config_from_dict(tiny_values)
    out = tmp_path_factory.mktemp("run")
    return config, fit(config, out, cache=tiny_cache)


def test_run_directory_files(trained):
    _config, result = trained
    run = result.run_dir
    for name in ("model.safetensors", "config.json", "metrics.json", "splits.json"):
        assert (run / name).is_file(), name
    assert (run / "logs" / "csv" / "metrics.csv").is_file()
    assert (run / "logs" / "checkpoints" / "last.ckpt").is_file()
    assert (run / "logs" / "checkpoints" / "best.ckpt").is_file()
    cfg = read_json(run / "config.json")
    assert {"model", "preprocess", "train", "data", "matching", "seed", "elim_version"} <= set(cfg)
    assert set(cfg["preprocess"]) == {"image_size", "mean", "std", "margin", "face"}
    metrics = read_json(run / "metrics.json")
    assert set(metrics["val"]) >= {"rmse_v", "sagr_a", "pcc_v", "ccc_a", "ccc_mean"}
    assert metrics["test"] == result.metrics["test"]


def test_loss_terms_reach_the_csv_log(trained):
    import pandas as pd

    _, result = trained
    log = pd.read_csv(result.run_dir / "logs" / "csv" / "metrics.csv")
    for column in ("train/loss", "train/loss_va", "train/loss_main", "train/w_main"):
        assert column in log.columns, column
        assert log[column].notna().sum() >= 1, column
    steps = log.dropna(subset=["train/loss_va"])["step"]
    assert steps.is_unique and len(steps) >= result.metrics["steps"] // 50


def test_training_loss_decreases(trained):
    _, result = trained
    assert len(result.train_loss) == 2
    assert np.isfinite(result.train_loss).all()
    assert result.train_loss[1] < result.train_loss[0]


def test_splits_are_identity_disjoint(trained, tiny_cache):
    _, result = trained
    groups = read_json(result.run_dir / "splits.json")
    train, val, test = (set(groups[k]) for k in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val or train & test or val & test)


def test_checkpoint_round_trip_gives_identical_predictions(trained, tiny_cache):
    config, result = trained
    splits = make_splits(tiny_cache.table, config.data)
    out = infer(result.model, preprocess_for(config), tiny_cache, splits.test)
    mine, labels = out.predictions, out.labels
    again = evaluate_run(result.run_dir, return_predictions=True, progress=False)
    assert again["n"] == len(splits.test)
    np.testing.assert_array_equal(again["labels"], labels)
    np.testing.assert_array_equal(again["predictions"], mine)  # exactly the same numbers
    assert again["metrics"] == read_json(result.run_dir / "metrics.json")["test"]


def test_evaluate_command_json_and_table(trained, capsys):
    _, result = trained
    assert main(["evaluate", str(result.run_dir), "--split", "val", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "val"
    assert out["metrics"] == read_json(result.run_dir / "metrics.json")["val"]
    assert main(["evaluate", str(result.run_dir)]) == 0
    assert "ccc_mean" in capsys.readouterr().out


def test_train_command_writes_a_run(tmp_path, capsys, tiny_values):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny_values))
    out = tmp_path / "run"
    code = main(["train", "--config", str(preset), "--epochs", "1", "--method", "baseline",
                 "--out", str(out), "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| test |" in printed and f"run dir: {out}" in printed
    for name in ("model.safetensors", "config.json", "metrics.json"):
        assert (out / name).is_file()
    cfg = read_json(out / "config.json")
    assert cfg["train"]["method"] == "baseline" and cfg["seed"] == 3 and cfg["train"]["epochs"] == 1


def test_train_command_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "train.epoch" in err and "Traceback" not in err


def test_a_study_fit_writes_no_checkpoints_and_only_csv_logs(tmp_path, tiny_config, tiny_cache):
    config = tiny_config(train={"epochs": 1})
    result = fit(config, tmp_path / "run", cache=tiny_cache, checkpoints=False, quiet=True,
                 save=False)
    logs = tmp_path / "run" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["csv", "ranks"]
    assert (logs / "csv" / "metrics.csv").is_file() and (logs / "ranks" / "rank-0.jsonl").is_file()
    assert result.run_dir is None and not (tmp_path / "run" / "model.safetensors").exists()
    assert result.metrics["best_epoch"] == 0 and set(result.metrics) >= {"val", "test"}


def test_plain_progress_lines_show_the_epoch_mean_loss(tmp_path, tiny_config, tiny_cache, capsys):
    """Not a terminal: EpochLines prints the epoch's mean step loss (the module's own list,
    read before the module empties it at the epoch's end)."""
    config = tiny_config(train={"epochs": 1, "progress": True})
    result = fit(config, None, cache=tiny_cache, checkpoints=False, save=False)
    err = capsys.readouterr().err
    assert f"loss {result.train_loss[0]:.4f}" in err and "loss n/a" not in err
