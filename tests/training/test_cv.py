"""Cross-validation: identity-disjoint folds, both methods, resumable results, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from elim.cli import main
from elim.data.splits import groups_of
from elim.deps import yaml
from elim.errors import ElimError
from elim.runs import fingerprint, read_json
from elim.training import cv as cv_module
from elim.training.cv import cross_validate, fold_splits


def test_folds_never_share_a_group(tiny_cache):
    groups = groups_of(tiny_cache.table)
    folds = fold_splits(tiny_cache.table, 3, fold_seed=1, val_fraction=0.25)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(groups)))  # every face tested once
    for f in folds:
        train, val, test = (set(groups[i]) for i in (f.train, f.val, f.test))
        assert train and val and test
        assert not (train & test or train & val or val & test)
    again = fold_splits(tiny_cache.table, 3, fold_seed=1, val_fraction=0.25)
    assert all(np.array_equal(a.test, b.test) and np.array_equal(a.val, b.val)
               for a, b in zip(folds, again))


def test_cross_validate_writes_both_methods_and_resumes(tmp_path, tiny_cache, tiny_config,
                                                        monkeypatch):
    config = tiny_config(train={"epochs": 1})
    out = tmp_path / "cv"
    summary = cross_validate(config, out, folds=3, methods=["baseline", "elim"], seeds=[0],
                             cache=tiny_cache, progress=False)
    saved = read_json(out / "cv.json")
    assert saved["methods"] == ["baseline", "elim"] == summary["methods"]
    for m in ("baseline", "elim"):
        assert saved["summary"][m]["ccc_mean"]["n"] == 3
        assert len(saved["per_fold"][m]) == 3
    assert "elim_minus_baseline" in saved
    md = (out / "cv.md").read_text()
    assert "| baseline |" in md and "| elim |" in md
    assert len(list((out / "results").glob("*.json"))) == 6
    meta = read_json(out / "cv_config.json")  # a ResultStore: settings and their fingerprint
    assert meta["fingerprint"] == fingerprint({k: v for k, v in meta.items() if k != "fingerprint"})
    assert {read_json(f)["fingerprint"] for f in (out / "results").glob("*.json")} == {
        meta["fingerprint"]}
    groups = groups_of(tiny_cache.table)
    for r in saved["runs"]:
        stored = read_json(out / "results" / f"{r['method']}-seed0-fold{r['fold']}.json")
        split = fold_splits(tiny_cache.table, 3, 0, 0.15)[r["fold"]]
        assert set(stored["test_groups"]) == set(groups[split.test])
        assert not set(stored["test_groups"]) & set(groups[split.train])

    # A rerun finds every result and fits nothing; a lost result is redone alone.
    calls = []
    real_fit = cv_module.fit
    monkeypatch.setattr(cv_module, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    cross_validate(config, out, folds=3, methods=["baseline", "elim"], seeds=[0],
                   cache=tiny_cache, progress=False)
    assert calls == []
    (out / "results" / "elim-seed0-fold1.json").unlink()
    again = cross_validate(config, out, folds=3, methods=["baseline", "elim"], seeds=[0],
                           cache=tiny_cache, progress=False)
    assert len(calls) == 1
    assert again["summary"]["baseline"] == saved["summary"]["baseline"]


def test_other_settings_in_the_same_folder_are_refused(tmp_path, tiny_cache, tiny_config):
    out = tmp_path / "cv"
    cross_validate(tiny_config(train={"epochs": 1}), out, folds=2, methods=["baseline"],
                   seeds=[0], cache=tiny_cache, progress=False)
    with pytest.raises(ElimError, match="other settings"):
        cross_validate(tiny_config(train={"epochs": 2}), out, folds=2, methods=["baseline"],
                       seeds=[0], cache=tiny_cache, progress=False)


def test_cv_command_on_a_csv_dataset(tmp_path, capsys, tiny_values):
    from elim.datasets.synthetic import write_synthetic

    labels = write_synthetic(tmp_path / "faces", progress=False, n_identities=6,
                             clips_per_identity=2, frames_per_clip=3, image_size=16)
    values = {k: v for k, v in tiny_values.items()}
    values["data"] = {**values["data"], "dataset": "csv", "options": {}}
    values["train"] = {**values["train"], "epochs": 1}
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(values))
    out = tmp_path / "cv"
    code = main(["cv", "--config", str(preset), "--root", str(labels), "--folds", "3",
                 "--seeds", "0", "--methods", "baseline,elim", "--jobs", "1", "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dataset"] == "csv" and printed["n_groups"] == 6
    assert set(printed["summary"]) == {"baseline", "elim"}
    assert (out / "cv.md").is_file()


def _parallel_vs_serial(tmp_path, tiny_cache, tiny_config):
    config = tiny_config(train={"epochs": 1})
    kw = {"folds": 2, "methods": ["elim"], "seeds": [0], "cache": tiny_cache, "progress": False,
          "logs": False}
    one = cross_validate(config, tmp_path / "one", jobs=1, **kw)
    two = cross_validate(config, tmp_path / "two", jobs=2, **kw)
    assert [r["test"] for r in one["runs"]] == [r["test"] for r in two["runs"]]
    assert len(list((tmp_path / "two" / "results").glob("*.json"))) == 2


def test_parallel_orchestration_gives_the_same_results(tmp_path, tiny_cache, tiny_config,
                                                       monkeypatch):
    """The jobs > 1 path with threads standing in for processes (fast); jobs are picklable."""
    import concurrent.futures
    import pickle

    class ThreadPool(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers, mp_context=None, initializer=None, initargs=()):
            super().__init__(max_workers=max_workers, initializer=initializer,
                             initargs=initargs)

    submitted = []
    real_fit_one = cv_module._fit_one

    def fit_one(*job):
        submitted.append(pickle.loads(pickle.dumps(job)))  # what spawn would send
        return real_fit_one(*job)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", ThreadPool)
    monkeypatch.setattr(cv_module, "_fit_one", fit_one)
    _parallel_vs_serial(tmp_path, tiny_cache, tiny_config)
    assert len(submitted) == 4


@pytest.mark.slow
def test_parallel_processes_give_the_same_results(tmp_path, tiny_cache, tiny_config):
    _parallel_vs_serial(tmp_path, tiny_cache, tiny_config)
