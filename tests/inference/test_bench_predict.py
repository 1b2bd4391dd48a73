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


def test_a_trained_run_is_timed_with_its_own_face_contract(run_dir, capsys):
    """--model RUN_DIR: the report names the run and the crop geometry that was timed."""
    from elim.inference.predictor import load

    assert main(["bench", "predict", "--model", str(run_dir), "--frames", "3", "--detector",
                 "yunet", "--detect-every", "1", "--photos", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(run_dir)
    assert report["face"] == load(run_dir).face_crop.contract.to_dict()
    assert report["results"][0]["frames"] == 3


def test_unknown_detector_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["bench", "predict", "--detector", "haar", "--json"])
    assert "detector names" in capsys.readouterr().err


def test_synthetic_fallback_face():
    face = synthetic_face(96)
    assert face.shape == (96, 96, 3) and face.dtype == np.uint8 and face.std() > 10


def test_each_setting_times_the_detector_it_warmed_up(monkeypatch, capsys):
    """One detector per (detector, detect size), warmed up, and that instance is measured."""
    from elim.inference.predictor import ElimPredictor

    warmed, measured = [], []
    real = ElimPredictor.predict_video

    def predict_video(self, video, *args, detector=None, **kwargs):
        warmed.append(detector)
        return real(self, video, *args, detector=detector, **kwargs)

    def measure_stages(predictor, video, name, k, batch_size, size, threads, det=None):
        measured.append((name, size, k, det))
        return {"detector": name, "detect_every": k, "detect_size": size}

    monkeypatch.setattr(ElimPredictor, "predict_video", predict_video)
    monkeypatch.setattr("elim.benchmarks.predict.measure_stages", measure_stages)
    assert main(["bench", "predict", "--frames", "3", "--detector", "yunet", "--detect-every", "1,2",
                 "--detect-size", "160,320", "--photos", "0", "--json"]) == 0
    capsys.readouterr()
    assert [(n, s, k) for n, s, k, _ in measured] == [
        ("yunet", 160, 1), ("yunet", 160, 2), ("yunet", 320, 1), ("yunet", 320, 2),
    ]
    dets = [d for *_, d in measured]
    assert dets[0] is dets[1] and dets[2] is dets[3] and dets[0] is not dets[2]
    assert [d.max_side for d in dets] == [160, 160, 320, 320]
    assert len(warmed) == 2 and warmed[0] is dets[0] and warmed[1] is dets[2]
