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


# --------------------------------------------------------------------------- orderings of pairs
def _faces(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["identity", "label", "pred_valence", "pred_arousal"])


def test_orderings_parse_chains_directions_and_any_other():
    from elim.evaluation import Ordering, parse_orderings

    assert parse_orderings(["smiling>neutral"]) == [Ordering("smiling", "neutral", "valence")]
    assert parse_orderings(["happy > normal > sad:valence"]) == [
        Ordering("happy", "normal"), Ordering("normal", "sad")]
    assert parse_orderings(["sleepy<*:arousal"]) == [Ordering("*", "sleepy", "arousal")]
    assert str(Ordering("smiling", "neutral")) == "smiling > neutral on valence"
    from elim.errors import ElimError

    for bad, match in (("smiling", "joined by"), ("a>b<c", "joined by"), ("a>>b", "joined by"),
                       ("a>b:dominance", "dimension 'dominance'"), ("a>a", "with itself"),
                       ("*>*", "with itself")):
        with pytest.raises(ElimError, match=match):
            parse_orderings([bad])
    with pytest.raises(ElimError, match="no ordering"):
        parse_orderings([])


def test_orderings_are_checked_per_person_on_mean_predictions():
    from elim.evaluation import parse_orderings, score_orderings

    faces = _faces([
        ("a", "smiling", 0.5, 0.1), ("a", "neutral", 0.1, 0.3),
        ("b", "smiling", 0.0, 0.2), ("b", "smiling", 0.4, 0.2), ("b", "neutral", 0.3, 0.0),
        ("c", "smiling", 0.2, 0.0), ("c", "neutral", 0.2, 0.5),  # a tie is not "higher"
        ("d", "neutral", 0.9, 0.9),                              # one side only: left out
    ])
    result = score_orderings(faces, parse_orderings(["smiling>neutral", "neutral<*:arousal"]))
    valence, arousal = result["orderings"]
    assert valence == {"ordering": "smiling > neutral on valence", "people": 3, "respected": 1,
                       "fraction": round(1 / 3, 4)}  # b: mean 0.2 < 0.3; c: tie
    assert arousal["people"] == 3 and arousal["respected"] == 1  # only b's neutral is lowest
    people = result["per_person"]
    assert people[people["identity"] == "b"]["higher"].iloc[0] == pytest.approx(0.2)
    assert result["metrics"] is None and result["n_metrics"] == 0
    empty = score_orderings(faces, parse_orderings(["happy>sad"]))
    assert empty["orderings"][0] == {"ordering": "happy > sad on valence", "people": 0,
                                     "respected": 0, "fraction": None}


def test_numeric_labels_give_the_metrics_of_the_photos_that_have_them():
    import pandas as pd

    from elim.evaluation import score_orderings

    faces = _faces([("a", "x", 0.1, 0.2), ("a", "y", 0.5, -0.1), ("b", "x", -0.3, 0.4)])
    faces["valence"] = [0.0, 0.6, np.nan]
    faces["arousal"] = [0.1, -0.2, 0.3]
    result = score_orderings(faces, [])
    assert result["n_metrics"] == 2 and result["orderings"] == []
    want = va_metrics(np.array([[0.1, 0.2], [0.5, -0.1]]), np.array([[0.0, 0.1], [0.6, -0.2]]))
    assert result["metrics"] == pytest.approx(want)
    assert isinstance(result["per_person"], pd.DataFrame)


def test_pair_labels_are_read_relative_to_the_csv(tmp_path):
    import pandas as pd

    from elim.errors import DataError
    from elim.evaluation import read_pair_labels

    csv = tmp_path / "sub" / "labels.csv"
    csv.parent.mkdir()
    pd.DataFrame({"path": ["n/1.jpg", "s/1.jpg", ""], "identity": ["001", "001", "002"],
                  "expression": ["neutral", " smiling", "x"], "valence": ["", "0.5", "1"]}
                 ).to_csv(csv, index=False)
    labels = read_pair_labels(csv)
    assert list(labels["path"]) == [str(csv.parent / "n/1.jpg"), str(csv.parent / "s/1.jpg")]
    assert list(labels["identity"]) == ["001", "001"]  # strings, zeros kept
    assert list(labels["label"]) == ["neutral", "smiling"] and "arousal" not in labels
    assert np.isnan(labels["valence"][0]) and labels["valence"][1] == 0.5
    with pytest.raises(DataError, match="no column label"):
        read_pair_labels(csv, "label")
    with pytest.raises(DataError, match="cannot read"):
        read_pair_labels(tmp_path / "none.csv")
