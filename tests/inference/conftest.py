"""Shared fixtures of the inference tests: a random-weight run, London photos, stub detectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inference_support import LONDON, FixedDetector

from elim.benchmarks.predict import london_photos as find_london_photos
from elim.benchmarks.predict import make_random_run


@pytest.fixture(autouse=True)
def _restore_threads():
    """`elim predict` and `elim bench predict` set torch's and OpenCV's thread counts for the
    process (elim.inference.threads); put them back after each test."""
    import torch

    from elim.deps import cv2

    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """cnn-small run directory with random weights (margin 0.25)."""
    return make_random_run(tmp_path_factory.mktemp("run") / "small", margin=0.25)


@pytest.fixture(scope="session")
def predictor(run_dir):
    from elim.inference.predictor import load

    return load(run_dir)


@pytest.fixture(scope="session")
def london_photos() -> list[Path]:
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent")
    photos = find_london_photos(LONDON)
    assert len(photos) == 24
    return photos


@pytest.fixture(scope="session")
def london_video(tmp_path_factory, london_photos) -> Path:
    """12-frame 640×480 MJPG video, one London photo (one person) per frame, moving a little."""
    from elim.benchmarks.predict import make_face_video
    from elim.data.io import read_image

    faces = [read_image(p) for p in london_photos[:12]]
    return make_face_video(tmp_path_factory.mktemp("video") / "faces.avi", faces, 12)


@pytest.fixture
def fixed_detector() -> FixedDetector:
    return FixedDetector()


@pytest.fixture
def noise_image():
    """Factory of random RGB uint8 images (h, w, seed)."""

    def make(h: int = 80, w: int = 96, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)

    return make
