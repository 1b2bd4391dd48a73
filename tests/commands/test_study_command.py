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
