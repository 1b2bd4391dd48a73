"""``elim analyze invariance``: probe and distance ratio of run features on the same faces."""

from __future__ import annotations

import json

import pytest

from elim.cli import main
from elim.evaluation import load_run_data
from elim.inference.identity_norm import IdentityNormaliser
from elim.metrics import va_metrics


def test_invariance_of_two_runs_and_pixels(runs, tmp_path, capsys):
    assert main(["analyze", "invariance", str(runs["baseline"]), str(runs["elim"]), "--pixels",
                 "--folds", "2", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in result["rows"]] == ["baseline", "ELIM", "input pixels"]
    assert result["split"] == "test" and result["identities"] >= 2
    for row in result["rows"]:
        probe = row["probe"]
        assert 0.0 <= probe["accuracy"] <= 1.0 and probe["chance"] < 1.0
        assert row["distance_ratio"]["ratio"] > 0
    saved = json.loads((tmp_path / "invariance.json").read_text())
    assert saved["rows"][0]["probe"] == result["rows"][0]["probe"]
    assert "| ELIM |" in (tmp_path / "invariance.md").read_text()


def test_test_time_norm_rows_and_the_probe_split(runs, tmp_path, capsys):
    assert main(["analyze", "invariance", str(runs["elim"]), "--test-time-norm", "--folds", "2",
                 "--same-tol", "0.5", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in result["rows"]] == ["ELIM", "ELIM + TTN"]
    assert result["test_time_norm"] is True
    for row in result["rows"]:
        for probe in ("probe", "probe_direction", "probe_magnitude"):
            assert 0.0 <= row[probe]["accuracy"] <= 1.0
        assert row["ccc_mean"] is not None and row["consistency"]["spread"] >= 0
    plain, ttn = result["rows"]
    assert plain["ccc_mean"] != ttn["ccc_mean"]
    assert plain["consistency"]["spread"] != ttn["consistency"]["spread"]
    assert plain["probe"] != ttn["probe"]  # the probe reads the normalised features
    # the TTN row's CCC is that of IdentityNormaliser's predictions on the run's test faces
    data = load_run_data(runs["elim"])
    ex = data.infer()
    ids = data.table["identity"].astype(str).to_numpy()
    norm = IdentityNormaliser.from_run(runs["elim"])
    assert ttn["ccc_mean"] == pytest.approx(
        va_metrics(norm.predict(ex.features, ids), ex.labels)["ccc_mean"], rel=1e-9)
    assert plain["ccc_mean"] == pytest.approx(
        va_metrics(ex.predictions, ex.labels)["ccc_mean"], rel=1e-9)
    md = (tmp_path / "invariance.md").read_text()
    assert "probe on z/‖z‖" in md and "| ELIM + TTN |" in md


def test_too_few_faces_is_a_user_error(runs, capsys):
    assert main(["analyze", "invariance", str(runs["elim"]), "--groups", "identity"]) == 2
    assert "error:" in capsys.readouterr().err
