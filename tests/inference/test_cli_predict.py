"""`elim predict` on the command line: outputs, annotated videos, plots and bad inputs."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from elim.cli import main
from elim.deps import cv2


@pytest.fixture
def good_image(tmp_path, noise_image):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), noise_image(64, 64))
    return path


def test_london_video_rows_annotated_video_and_plot(run_dir, london_video, tmp_path, capsys):
    out, video_out, plots = tmp_path / "va.csv", tmp_path / "annotated.mp4", tmp_path / "plots"
    code = main([
        "predict", str(london_video), "--model", str(run_dir), "-o", str(out),
        "--video-out", str(video_out), "--plot", str(plots), "--smooth", "ema:0.3",
        "--detect-size", "320",
    ])
    assert code == 0
    table = pd.read_csv(out)
    assert len(table) == 12 and list(table["frame"]) == list(range(12))
    assert (table["status"] == "ok").all() and table["face"].nunique() == 1
    assert {"valence_raw", "arousal_raw"} <= set(table.columns)
    cap = cv2.VideoCapture(str(video_out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (480, 640, 3)
    png = plots / f"{london_video.stem}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 input(s): 1 ok" in capsys.readouterr().err


def test_bad_inputs_are_reported_and_the_rest_processed(run_dir, good_image, tmp_path, capsys):
    zero = tmp_path / "zero.jpg"
    zero.touch()
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    out = tmp_path / "out.json"
    code = main([
        "predict", str(good_image), str(zero), str(text), str(tmp_path / "missing.jpg"),
        str(tmp_path / "empty"), str(broken), str(good_image),
        "--model", str(run_dir), "--no-detect", "-o", str(out),
    ])
    assert code == 1
    rows = json.loads(out.read_text())
    assert [r["status"] == "ok" for r in rows] == [True, False, False, False, False, False, True]
    err = capsys.readouterr().err
    for name in ("zero.jpg", "text.jpg", "missing.jpg", "empty", "broken.mp4"):
        assert f"elim predict: {tmp_path / name}" in err
    assert "7 input(s): 2 ok, 0 without a face, 5 failed" in err


def test_default_table_json_and_features(run_dir, good_image, capsys):
    assert main(["predict", str(good_image), "-m", str(run_dir), "--no-detect"]) == 0
    out = capsys.readouterr().out
    assert "face.png" in out and "valence" in out and "ok" in out
    assert main(["predict", str(good_image), "-m", str(run_dir), "--no-detect", "--json", "--features"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and "f63" in row and row["frame"] is None


def test_folder_without_faces_is_not_a_failure(run_dir, tmp_path, capsys):
    folder = tmp_path / "blank"
    folder.mkdir()
    cv2.imwrite(str(folder / "white.png"), np.full((120, 120, 3), 255, np.uint8))
    assert main(["predict", str(folder), "-m", str(run_dir), "-o", str(tmp_path / "o.csv")]) == 0
    assert pd.read_csv(tmp_path / "o.csv")["status"].tolist() == ["no_face"]


def test_user_errors_exit_2(run_dir, good_image, tmp_path, capsys):
    assert main(["predict", str(good_image), "-m", str(run_dir), "-o", str(tmp_path / "x.xlsx")]) == 2
    assert "unknown table format" in capsys.readouterr().err
    assert main(["predict", str(good_image), "-m", str(run_dir), "--smooth", "median:3"]) == 2
    assert "bad smoothing" in capsys.readouterr().err
    assert main(["predict", "-m", str(run_dir)]) == 2
    assert "nothing to predict" in capsys.readouterr().err
    assert main(["predict", str(good_image), "-m", str(tmp_path / "norun")]) == 2
    if importlib.util.find_spec("pyarrow") is None:
        assert main(["predict", str(good_image), "-m", str(run_dir), "-o", str(tmp_path / "x.parquet")]) == 2
        assert "pyarrow" in capsys.readouterr().err


def test_missing_webcam_fails_cleanly(run_dir, capsys):
    assert main(["predict", "--webcam", "97", "-m", str(run_dir), "--no-detect"]) == 1
    assert "webcam 97" in capsys.readouterr().err


def test_photo_with_no_detector_flags(run_dir, london_photos, tmp_path, capsys, monkeypatch):
    """`elim predict photo.jpg --model RUN`: the shipped YuNet, nothing downloaded."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    assert main(["predict", str(london_photos[0]), "--model", str(run_dir), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["score"] > 0.9 and row["x1"] - row["x0"] > 300
