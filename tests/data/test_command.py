"""``elim data prepare`` and ``elim data synth``."""

from __future__ import annotations

import json

from elim.cli import main
from elim.data.cache import FaceCache


def test_prepare_reports_counts_and_resumes(tmp_path, capsys, dataset_csv):
    (dataset_csv.parent / "img" / "id00" / "000.png").write_bytes(b"")  # one unreadable image
    out = tmp_path / "cache"
    args = ["data", "prepare", "--dataset", "csv", "--root", str(dataset_csv), "--out", str(out),
            "--image-size", "16", "--margin", "0.1"]
    assert main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["read"] == 12 and summary["written"] == 11 and summary["identities"] == 4
    assert summary["skipped_by_cache"]["unreadable"]["count"] == 1
    cache = FaceCache.load(out)
    assert len(cache) == 11 and cache.meta["margin"] == 0.1
    assert main(args) == 0  # rerun: reuses the finished cache, human table
    text = capsys.readouterr().out
    assert "faces written" in text and "unreadable: 1" in text and "000.png" in text


def test_prepare_passes_reader_options(tmp_path, capsys, dataset_csv):
    (dataset_csv.parent / "img" / "id01" / "001.png").unlink()
    base = ["data", "prepare", "--dataset", "csv", "--root", str(dataset_csv.parent), "--image-size",
            "8", "--json"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_by_reader"]["missing_file"]["count"] == 1
    assert main(base + ["--out", str(tmp_path / "b"), "-o", "check_files=false"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_by_cache"]["missing_file"]["count"] == 1


def test_prepare_user_error_is_one_line(tmp_path, capsys):
    code = main(["data", "prepare", "--dataset", "csv", "--root", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "c"), "--image-size", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.csv" in err


def test_synth_writes_a_csv_dataset(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--identities", "2", "--clips", "1",
                 "--frames", "2", "--image-size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 4 and (out / "labels.csv").is_file()
    assert main(["data", "prepare", "--dataset", "csv", "--root", str(out), "--out",
                 str(tmp_path / "c"), "--image-size", "16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 4
