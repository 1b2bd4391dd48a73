"""Identity-shift study: fixed identities at every strength, plain and TTN rows, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from elim.analysis.shift import SHIFT_METHODS, shift_rows
from elim.errors import ElimError
from elim.studies import shift

SMALL = {"n_identities": 10, "clips_per_identity": 2, "frames_per_clip": 3}


@pytest.fixture
def small_config(tiny_config):
    return tiny_config(data={"options": SMALL, "fractions": [0.6, 0.0, 0.4]},
                       train={"epochs": 1})


def test_rows_and_labels():
    rows, trained, labels = shift_rows(["baseline", "elim+ttn", "elim-vector", "elim"])
    assert rows == ["baseline", "elim+ttn", "elim-vector", "elim"]
    assert trained == ["baseline", "elim", "elim-vector"]
    assert labels["elim+ttn"] == "ELIM + test-time norm." and labels["elim"] == "ELIM"
    assert SHIFT_METHODS["elim-vector"].overrides["matching.shift"] == "vector"
    with pytest.raises(ElimError, match="unknown method 'caf'"):
        shift_rows(["caf"])


def test_study_runs_resumes_and_pairs(small_config, tmp_path, monkeypatch):
    kw = {"strengths": [0.0, 1.0], "methods": ["baseline", "elim", "elim+ttn"],
          "seeds": [0, 1], "progress": False}
    result = shift.run_shift_study(small_config, tmp_path, **kw)
    assert result["methods"] == ["baseline", "elim", "elim+ttn"]
    assert result["train_identities"] == 6 and result["test_identities"] == 4
    assert result["probe_labels"] == 24 and len(result["runs"]) == 8  # 2 trained × 2 × 2
    for row in result["methods"]:
        cells = result["summary"][row]
        assert [c["strength"] for c in cells] == [0.0, 1.0]
        method, part = (row[:-4], "ttn") if row.endswith("+ttn") else (row, "plain")
        for c in cells:
            assert c["ccc_mean"]["n"] == 2
            spreads = [r[part]["consistency"]["spread"] for r in result["runs"]
                       if r["method"] == method and r["strength"] == c["strength"]]
            assert len(spreads) == 2 and min(spreads) > 0
            assert c["spread"]["mean"] == pytest.approx(np.mean(spreads))
    for run in result["runs"]:  # test-time normalisation changes what it scores
        assert run["ttn"]["test"]["ccc_mean"] != run["plain"]["test"]["ccc_mean"]
        assert run["ttn"]["consistency"]["spread"] != run["plain"]["consistency"]["spread"]
    ttn_cells, elim_cells = result["summary"]["elim+ttn"], result["summary"]["elim"]
    assert [c["spread"]["mean"] for c in ttn_cells] != [c["spread"]["mean"] for c in elim_cells]
    pairs = result["paired"]
    assert set(pairs) == {"elim", "elim+ttn"} and set(pairs["elim+ttn"]) == {"baseline", "elim"}
    p = pairs["elim"]["baseline"]["ccc_mean"][1]
    assert p["n"] == 2 and p["low"] <= p["mean"] <= p["high"]
    stored = json.loads((tmp_path / "shift.json").read_text())
    assert stored["summary"] == json.loads(json.dumps(result["summary"]))
    assert "ELIM − baseline" in (tmp_path / "shift.md").read_text()
    assert (tmp_path / "shift.png").is_file() and (tmp_path / "shift.svg").is_file()

    def no_fit(*args, **kwargs):
        raise AssertionError("a stored fit was trained again")

    monkeypatch.setattr(shift, "fit", no_fit)
    again = shift.run_shift_study(small_config, tmp_path, **{**kw, "methods": ["elim+ttn"]})
    assert again["summary"]["elim+ttn"] == result["summary"]["elim+ttn"]
    other = small_config
    other.train.lr = 1e-3
    with pytest.raises(ElimError, match="other settings"):
        shift.run_shift_study(other, tmp_path, **kw)


def test_study_needs_generated_faces_and_owns_the_knobs(small_config, tmp_path):
    with pytest.raises(ElimError, match="strengths"):
        shift.run_shift_study(small_config, tmp_path, strengths=[1.5], progress=False)
    with pytest.raises(ElimError, match="unknown knob"):
        shift.run_shift_study(small_config, tmp_path, knob="age", progress=False)
    small_config.data.options = {**SMALL, "shift": 0.5}
    with pytest.raises(ElimError, match="set by the study"):
        shift.run_shift_study(small_config, tmp_path, progress=False)
    small_config.data.options, small_config.data.dataset = SMALL, "csv"
    small_config.data.root = str(tmp_path)
    with pytest.raises(ElimError, match="synthetic"):
        shift.run_shift_study(small_config, tmp_path, progress=False)
