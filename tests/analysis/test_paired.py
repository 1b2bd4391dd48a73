"""Paired differences with a 95 % Student-t interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from elim.analysis.paired import format_paired, paired


def test_paired_matches_a_one_sample_t_interval():
    a = np.array([0.61, 0.55, 0.70, 0.66, 0.58])
    b = np.array([0.60, 0.50, 0.66, 0.67, 0.52])
    res = paired(a, b)
    d = a - b
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert res["mean"] == pytest.approx(d.mean())
    assert (res["low"], res["high"]) == (pytest.approx(low), pytest.approx(high))
    assert res["n"] == 5 and res["wins"] == 4 and res["std"] == pytest.approx(d.std(ddof=1))
    assert format_paired(res).startswith(f"{d.mean():+.3f} [")


def test_one_pair_and_bad_input():
    assert paired([0.5], [0.25]) == {"mean": 0.25, "low": 0.25, "high": 0.25, "std": 0.0,
                                     "n": 1, "wins": 1}
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def _cv(folder, method_scores, folds=2, fold_seed=0):
    import json

    runs = [{"method": m, "seed": s, "fold": k, "test": {"ccc_mean": v}}
            for m, by in method_scores.items() for (s, k), v in by.items()]
    folder.mkdir()
    (folder / "cv.json").write_text(json.dumps({
        "methods": list(method_scores), "runs": runs, "dataset": "csv", "root": "/x",
        "settings": {"folds": folds, "fold_seed": fold_seed, "val_fraction": 0.0}}))
    return folder


def test_paired_cv_matches_seeds_and_folds_across_folders(tmp_path, capsys):
    from elim.analysis.paired import paired_cv
    from elim.cli import main
    from elim.errors import ElimError

    a = _cv(tmp_path / "a", {"elim": {(0, 0): 0.7, (0, 1): 0.6, (1, 0): 0.9}})
    b = _cv(tmp_path / "b", {"baseline": {(0, 0): 0.5, (0, 1): 0.65}})
    res = paired_cv((a, "elim"), (b, "baseline"))
    assert res["pairs"] == [[0, 0], [0, 1]] and res["n"] == 2 and res["wins"] == 1
    assert res["mean"] == pytest.approx(0.075)
    assert main(["analyze", "paired", f"{a}:elim", f"{b}:baseline"]) == 0
    assert "+0.0750" in capsys.readouterr().out
    with pytest.raises(ElimError, match="no fit of method"):
        paired_cv((a, "baseline"), (b, "baseline"))
    other = _cv(tmp_path / "c", {"elim": {(0, 0): 0.1}}, folds=3)
    with pytest.raises(ElimError, match="cannot be paired"):
        paired_cv((other, "elim"), (b, "baseline"))
    assert main(["analyze", "paired", str(a), f"{b}:baseline"]) == 2
