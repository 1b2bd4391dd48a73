"""CK+48 smoke run of ``elim ablate`` (one cell, 2 folds, 1 epoch); skipped without the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elim.cli import main

CK_PLUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ck_plus_48"


@pytest.mark.data
@pytest.mark.skipif(not (CK_PLUS / "labels.csv").is_file(), reason="../shared/data/ck_plus_48 absent")
def test_ablate_one_cell_on_ck_plus(tmp_path, capsys):
    assert main(["ablate", "--preset", "ck_plus", "--dataset", "csv", "--root", str(CK_PLUS),
                 "--cache-dir", str(tmp_path / "cache"), "--epochs", "1", "--folds", "2",
                 "--cells", "sinkhorn-relevance-gumbel", "--timing-batches", "2", "--jobs", "1",
                 "--out", str(tmp_path / "ablate"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_faces"] == 927 and result["folds"] == 2
    (row,) = result["cells"]
    assert row["fits"] == 2 and -1.0 <= row["ccc_mean"]["mean"] <= 1.0
    assert row["seconds_per_call"] > 0 and row["timing"]["calls"] == 2
