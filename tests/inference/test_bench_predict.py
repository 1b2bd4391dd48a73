"""`elim bench predict`: one run gives decode / detect / model / end-to-end throughput."""

from __future__ import annotations

import json

import numpy as np

from elim.benchmarks.predict import synthetic_face
from elim.cli import main


def test_bench_predict_json(capsys):
    code = main([
        "bench", "predict", "--frames", "6", "--detect-every", "1,3", "--detect-size", "160",
        "--json",
    ])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["video"].startswith("640x480, 6 frames") and report["backbone"] == "cnn-small"
    assert [r["detect_every"] for r in report["results"]] == [1, 3]
    for r in report["results"]:
        assert r["frames"] == 6
        for key in ("fps_end_to_end", "fps_decode", "fps_detect", "fps_model", "ms_per_detection"):
            assert r[key] > 0
        # stages run one after the other, so none can be slower than the whole pipeline
        assert min(r["fps_decode"], r["fps_detect"], r["fps_model"]) >= r["fps_end_to_end"] * 0.99


def test_synthetic_fallback_face():
    face = synthetic_face(96)
    assert face.shape == (96, 96, 3) and face.dtype == np.uint8 and face.std() > 10
