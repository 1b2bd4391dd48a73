"""``elim study identities``: a table, a JSON and Fig. 6; ``elim plot identities`` redraws it."""

from __future__ import annotations

import json

from elim.cli import main


def test_study_and_its_figure(tiny_yaml, tmp_path, capsys, png_size):
    out = tmp_path / "study"
    assert main(["study", "identities", "--config", str(tiny_yaml), "--fractions", "0.5,1",
                 "--methods", "baseline", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fractions"] == [0.5, 1.0] and result["methods"] == ["baseline"]
    assert [r["n_identities"] for r in result["summary"]["baseline"]] == [7, 14]
    assert main(["plot", "identities", str(out), "--out", str(tmp_path), "--json"]) == 0
    w, h = png_size(json.loads(capsys.readouterr().out)["png"])
    assert w >= 400 and h >= 300
    report = tmp_path / "report.html"
    assert main(["report", str(out), "--out", str(report)]) == 0
    html = report.read_text()
    assert "Number of training identities" in html and "data:image/png;base64," in html


def test_unknown_method_is_a_user_error(tiny_yaml, tmp_path, capsys):
    assert main(["study", "identities", "--config", str(tiny_yaml), "--methods", "caf",
                 "--out", str(tmp_path)]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_shift_study_end_to_end(tiny_yaml, tmp_path, capsys, png_size):
    out = tmp_path / "shift"
    args = ["study", "shift", "--config", str(tiny_yaml), "--identities", "8", "--clips", "2",
            "--frames", "3", "--strengths", "0,1", "--seeds", "0", "--epochs", "1",
            "--methods", "baseline,elim+ttn", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["knob"] == "shift" and result["strengths"] == [0.0, 1.0]
    assert result["methods"] == ["baseline", "elim+ttn"]
    assert result["train_identities"] + result["test_identities"] == 8
    assert result["data_options"]["n_identities"] == 8
    assert set(result["summary"]["elim+ttn"][0]) >= {"ccc_mean", "spread", "identity_probe"}
    w, h = png_size(out / "shift.png")
    assert w >= 600 and h >= 250
    assert main(args) == 0  # resumed: the table again
    assert "| baseline |" in capsys.readouterr().out


def test_shift_study_user_errors(tiny_yaml, tmp_path, capsys):
    base = ["study", "shift", "--config", str(tiny_yaml), "--out", str(tmp_path)]
    assert main([*base, "--methods", "caf"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main([*base, "--test-share", "1"]) == 2
    assert "--test-share" in capsys.readouterr().err
