"""`elim bench predict`: one run gives decode / detect / model / end-to-end throughput per
detector and setting, memory along the video, and a photos-per-second row."""

from __future__ import annotations

import json

import numpy as np

from elim.benchmarks.predict import synthetic_face
from elim.cli import main


def test_bench_predict_json(capsys):
    code = main([
        "bench", "predict", "--frames", "6", "--detector", "yunet,mtcnn", "--detect-every", "1,3",
        "--detect-size", "160", "--photos", "2", "--json",
    ])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["video"].startswith("640x480, 6 frames") and report["backbone"] == "cnn-small"
    assert [(r["detector"], r["detect_every"]) for r in report["results"]] == [
        ("yunet", 1), ("yunet", 3), ("mtcnn", 1), ("mtcnn", 3),
    ]
    assert set(report["threads"]) >= {"torch", "detector", "opencv", "cpus"}
    for r in report["results"]:
        assert r["frames"] == 6
        for key in ("fps_end_to_end", "fps_decode", "fps_detect", "fps_model", "ms_per_detection"):
            assert r[key] > 0
        assert 0 < r["detect_share"] < 1
        # each stage is busy for at most the whole run, so none is slower than end to end
        assert min(r["fps_decode"], r["fps_detect"], r["fps_model"]) >= r["fps_end_to_end"] * 0.99
    assert [p["detector"] for p in report["photos"]] == ["yunet", "mtcnn"]
    for p in report["photos"]:
        assert p["photos"] == 2 and p["photos_per_second"] > 0 and p["size"] == "1350x1350 JPEG"


def test_unknown_detector_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["bench", "predict", "--detector", "haar", "--json"])
    assert "detector names" in capsys.readouterr().err


def test_synthetic_fallback_face():
    face = synthetic_face(96)
    assert face.shape == (96, 96, 3) and face.dtype == np.uint8 and face.std() > 10
