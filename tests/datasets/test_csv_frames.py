"""The generic CSV reader: path safety, label filtering, optional columns, real CK+."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elim.datasets import read_dataset
from elim.errors import DataError

CK_PLUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ck_plus_48" / "labels.csv"


def _png(path: Path) -> str:
    from elim.deps import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((6, 6, 3), 90, np.uint8))
    return str(path)


def _write(root: Path, rows: list[dict], name: str = "labels.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / name, index=False)
    return root / name


def _row(path, identity="001", v=0.1, a=-0.2, **extra):
    return {"path": path, "identity": identity, "valence": v, "arousal": a, **extra}


def test_reads_relative_paths_as_absolute_strings(tmp_path):
    root = tmp_path / "ds"
    _png(root / "img" / "a.png")
    _png(root / "img" / "b.png")
    csv = _write(root, [_row("img/a.png", "001", emotion="happy"), _row("img/b.png", "002")])
    for where in (root, csv):
        rr = read_dataset("csv", where)
        assert rr.records.path.tolist() == [str(root / "img" / "a.png"), str(root / "img" / "b.png")]
        assert rr.records.identity.tolist() == ["001", "002"]  # not turned into numbers
        assert rr.records.group.tolist() == ["001", "002"]
        assert "emotion" not in rr.records.columns
        assert rr.skipped.total == 0 and rr.source == str(csv)


def test_paths_leaving_the_root_are_refused(tmp_path):
    root = tmp_path / "ds"
    _png(root / "ok.png")
    outside = _png(tmp_path / "secret.png")
    csv = _write(root, [_row("ok.png"), _row("../secret.png"), _row(outside),
                        _row("img/../../secret.png"), _row(str(root / "ok.png"))])
    with pytest.warns(UserWarning, match="leaves the dataset root"):
        rr = read_dataset("csv", csv)
    assert rr.skipped.counts["outside_root"] == 3
    # the absolute path inside the root is accepted, and recognised as the same row again
    assert rr.records.path.tolist() == [str(root / "ok.png")]
    assert rr.skipped.counts["duplicate_rows"] == 1


def test_bad_labels_are_skipped_and_counted(tmp_path):
    root = tmp_path / "ds"
    _png(root / "a.png")
    rows = [_row("a.png"), _row("a.png", v=""), _row("a.png", v="nan"), _row("a.png", a="inf"),
            _row("a.png", v=1.5), _row("a.png", a=-5), _row("a.png", v=-5, a=-5),
            _row("a.png", v="abc"), _row("a.png", v=-1.0, a=1.0), _row("a.png", identity="")]
    rr = read_dataset("csv", _write(root, rows))
    assert dict(rr.skipped.counts) == {
        "label_missing": 3, "label_infinite": 1, "label_out_of_range": 1, "label_-5": 2,
        "no_identity": 1}
    assert len(rr.records) == 2 and rr.records.valence.dtype == np.float32


def test_missing_files_are_counted(tmp_path):
    root = tmp_path / "ds"
    _png(root / "a.png")
    csv = _write(root, [_row("a.png"), _row("gone.png"), _row("gone.png", v=0.3)])
    rr = read_dataset("csv", csv)
    assert rr.skipped.counts["missing_file"] == 2 and len(rr.records) == 1
    assert len(read_dataset("csv", csv, check_files=False).records) == 3


def test_missing_columns_name_the_file_and_the_columns_found(tmp_path):
    csv = _write(tmp_path, [{"path": "a.png", "identity": "x", "valence": 0.1}])
    with pytest.raises(DataError) as err:
        read_dataset("csv", csv)
    msg = str(err.value)
    assert str(csv) in msg and "arousal" in msg and "found path, identity, valence" in msg


def test_unusable_roots(tmp_path):
    with pytest.raises(DataError, match="needs a root"):
        read_dataset("csv", None)
    with pytest.raises(DataError, match="not found"):
        read_dataset("csv", tmp_path / "nope.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="other.csv"):
        read_dataset("csv", tmp_path)  # no labels.csv; lists the CSVs present
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty CSV"):
        read_dataset("csv", tmp_path / "empty.csv")


def test_optional_columns(tmp_path):
    root = tmp_path / "ds"
    for n in "abcde":
        _png(root / f"{n}.png")
    (root / "clip.avi").write_bytes(b"x")  # only its name matters to the reader
    rows = [
        _row("a.png", group="actor1", split="Train", x0=1, y0=1, x1=5, y1=5, frame=17, detect=0),
        _row("b.png", group="", split="val", x0="", y0="", x1="", y1="", frame="", detect=1),
        _row("c.png", x0=5, y0=1, x1=2, y1=5),  # x1 <= x0
        _row("d.png", x0=1, y0="", x1=5, y1=5),  # partial box
        _row("clip.avi", frame=3),
        _row("clip.avi", frame=2.5),
        _row("e.png", detect="maybe"),
    ]
    rr = read_dataset("csv", _write(root, rows))
    rec = rr.records
    assert dict(rr.skipped.counts) == {"bad_box": 2, "bad_frame": 1, "bad_detect": 1}
    assert rec.group.tolist() == ["actor1", "001", "001"]
    assert rec.split.tolist()[:2] == ["train", "val"]
    assert rec.loc[0, ["x0", "y0", "x1", "y1"]].tolist() == [1, 1, 5, 5]
    assert np.isnan(rec.loc[1, "x0"])
    assert np.isnan(rec.frame[0]) and rec.frame[2] == 3  # frame is kept for videos only
    assert rec.detect.tolist() == [False, True, False]
    forced = read_dataset("csv", root, detect=True).records
    assert forced.detect.tolist() == [False, True, True]  # rows with a box are left alone


@pytest.mark.data
@pytest.mark.skipif(not CK_PLUS.is_file(), reason="../shared/data/ck_plus_48 absent")
def test_ck_plus_48():
    rr = read_dataset("csv", CK_PLUS)
    rec = rr.records
    assert len(rec) == 927 and rec.identity.nunique() == 106 and rr.skipped.total == 0
    assert rec.valence.between(-1, 1).all() and rec.arousal.between(-1, 1).all()
    assert "frame" not in rec.columns  # CK+ frame numbers are not video frames
    assert all(Path(p).is_file() for p in rec.path[:5])
