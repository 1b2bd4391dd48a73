"""``elim.evaluation``: a run and the faces of a split, one inference path, ``evaluate_run``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from elim.config import load_config_file, preprocess_for
from elim.data.splits import make_splits
from elim.datasets import open_dataset
from elim.evaluation import evaluate_run, load_run_data, load_runs
from elim.fileio import write_json
from elim.metrics import va_metrics
from elim.models import build_model, infer
from elim.runs import SPLITS, run_config, save_run
from elim.training.data import open_cache

TINY = Path(__file__).with_name("tiny.yaml")  # the tiny configuration (tests/conftest.py)


def _save(run_dir: Path, seed: int, parts: dict[str, list[str]] | None = None) -> Path:
    """An untrained run of the tiny configuration: its weights, config.json and splits.json
    (``parts`` replaces the split of the dataset's own rule)."""
    config = load_config_file(TINY)
    config.seed = seed
    cache = open_cache(config, progress=False)
    splits = make_splits(cache.table, config.data)
    torch.manual_seed(seed)
    save_run(run_dir, build_model(config.model.to_model_dict()), run_config(config, splits), {})
    write_json(run_dir / SPLITS, parts or splits.groups(cache.table))
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("run") / "run", seed=0)


def test_run_data_infer_is_the_models_inference_on_the_same_faces(run_dir):
    run = load_run_data(run_dir)
    got = run.infer(batch_size=7)  # batches of another size than the reference's
    faces = np.asarray(run.cache.images[run.indices])
    pred, feats = infer(run.model, run.preprocess, [faces], features=True)
    np.testing.assert_allclose(got.predictions, pred, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.features, feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        got.labels, run.table[["valence", "arousal"]].to_numpy(np.float32))
    assert got.predictions.dtype == got.features.dtype == np.float64


def test_own_dataset_splits_are_the_stored_identities(run_dir):
    stored = load_run_data(run_dir).config
    cache = open_cache(stored, progress=False)
    rule = make_splits(cache.table, stored.data)
    sizes = {"test": len(rule.test), "val": len(rule.val), "all": len(cache)}
    for split, n in sizes.items():
        result = evaluate_run(run_dir, split=split, progress=False, return_predictions=True)
        assert result["n"] == n and result["split"] == split
        assert result["metrics"] == va_metrics(result["predictions"], result["labels"])
    test_ids = set(load_run_data(run_dir).table["identity"])
    assert not test_ids & set(cache.table["identity"].iloc[rule.train])


def test_another_dataset_is_split_by_its_own_rule(run_dir, tmp_path):
    from elim.datasets.synthetic import write_synthetic

    labels = write_synthetic(tmp_path / "faces", progress=False, n_identities=6,
                             clips_per_identity=1, frames_per_clip=4, image_size=16)
    result = evaluate_run(run_dir, "csv", labels, "test", cache_dir=tmp_path / "c",
                          progress=False)
    run = load_run_data(run_dir)
    size = preprocess_for(run.config).image_size
    cache = open_dataset("csv", labels, size, cache_dir=tmp_path / "c", progress=False,
                         margin=run.run_config["preprocess"]["margin"])
    assert result["dataset"] == "csv" and result["n"] == len(make_splits(cache.table,
                                                                         run.config.data).test)


def test_load_runs_shares_the_first_runs_faces_and_warns_on_overlap(run_dir, tmp_path):
    first = load_run_data(run_dir)
    everyone = sorted(set(first.cache.table["group"]))
    clean = _save(tmp_path / "clean", seed=1)
    leaky = _save(tmp_path / "leaky", seed=2, parts={"train": everyone, "val": [], "test": []})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained on other identities: no warning
        runs = load_runs([run_dir, clean])
    assert [r.run_dir for r in runs] == [run_dir, clean]
    assert np.array_equal(runs[1].indices, runs[0].indices) and runs[1].cache is runs[0].cache
    with pytest.warns(UserWarning, match="was trained on"):
        load_runs([run_dir, leaky])
