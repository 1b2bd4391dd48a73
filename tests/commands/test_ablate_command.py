"""``elim ablate``: qp cells are listed as skipped without qpth; grid flags are refused."""

from __future__ import annotations

import json
import sys

from elim.cli import main


def test_qp_cells_skipped_without_qpth(tiny_yaml, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "qpth", None)
    args = ["ablate", "--config", str(tiny_yaml), "--cells", "qp-*", "--folds", "2",
            "--jobs", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| solver | weights | sampling | CCC (mean)" in table and "Skipped cells" in table
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cells"] == []
    assert [s["cell"] for s in result["skipped"]] == [
        "qp-relevance-gumbel", "qp-relevance-none", "qp-self-gumbel", "qp-self-none"]
    assert all("pip install --no-deps qpth" in s["reason"] for s in result["skipped"])
    assert (tmp_path / "ablation.json").is_file() and (tmp_path / "ablation.md").is_file()


def test_grid_flags_are_refused(tiny_yaml, tmp_path, capsys):
    assert main(["ablate", "--config", str(tiny_yaml), "--solver", "exact",
                 "--out", str(tmp_path)]) == 2
    assert "--cells" in capsys.readouterr().err
