"""``elim plot``: every figure kind from trained runs, as PNG + SVG of a readable size."""

from __future__ import annotations

import json

import pytest

from elim.cli import main


def _written(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind, extra, min_size", [
    ("va", ["--label-tol", "0.5"], (700, 300)),
    ("tsne", [], (700, 700)),
])
def test_figures_comparing_runs(kind, extra, min_size, runs, tmp_path, capsys, png_size):
    assert main(["plot", kind, str(runs["baseline"]), str(runs["elim"]), "--out", str(tmp_path),
                 "--json", *extra]) == 0
    out = _written(capsys)
    w, h = png_size(out["png"])
    assert w >= min_size[0] and h >= min_size[1]
    assert (tmp_path / out["svg"].split("/")[-1]).stat().st_size > 0


def test_id_shift_figure_and_values(runs, tmp_path, capsys, png_size):
    assert main(["plot", "id-shift", str(runs["elim"]), "--out", str(tmp_path), "--json"]) == 0
    out = _written(capsys)
    w, h = png_size(out["png"])
    assert w >= 300 and h >= 150
    values = out["values"]
    assert len(values["targets"]) == len(values["mu"]) >= 1
    assert values["reference"] not in values["targets"]
    mus = [m for row in values["mu"] for m in row if m is not None]
    assert mus and all(0.0 <= m <= 2.0 for m in mus)  # plan-weighted cosine costs


def test_curves_of_two_runs(runs, tmp_path, capsys, png_size):
    assert main(["plot", "curves", str(runs["baseline"]), str(runs["elim"]),
                 "--out", str(tmp_path), "--json"]) == 0
    w, h = png_size(_written(capsys)["png"])
    assert w >= 600 and h >= 250


def test_id_shift_takes_one_run(runs, tmp_path, capsys):
    assert main(["plot", "id-shift", str(runs["elim"]), str(runs["baseline"]),
                 "--out", str(tmp_path)]) == 2
    assert "one run directory" in capsys.readouterr().err


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["plot", "tsne", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
