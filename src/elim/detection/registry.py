"""Detectors by name (:func:`get_detector`), the default one, and :func:`detect_largest`."""

from __future__ import annotations

import threading

import numpy as np

from elim.detection.faces import Detector, Face
from elim.detection.mtcnn import MTCNNDetector
from elim.detection.whole import WholeImageDetector
from elim.detection.yunet import (
    MAX_SIDE,
    MIN_SCORE,
    NMS_THRESHOLD,
    YUNET_FILE,
    YUNET_SHA256,
    YuNetDetector,
)
from elim.errors import ElimError

DETECTORS = {"yunet": YuNetDetector, "mtcnn": MTCNNDetector, "none": WholeImageDetector}

#: The detector of ``elim predict``, ``ElimPredictor.predict`` / ``predict_video`` and the
#: data cache when none is named.
DEFAULT_DETECTOR = "yunet"

#: Identifies what :func:`detect_largest` uses by default (part of the data cache fingerprint).
DETECTOR_NAME = (
    f"yunet({YUNET_FILE} sha256 {YUNET_SHA256[:16]}, max_side={MAX_SIDE}, "
    f"min_score={MIN_SCORE}, nms={NMS_THRESHOLD}, onnxruntime)"
)


def get_detector(name: str | None = DEFAULT_DETECTOR, **options) -> Detector:
    """Build a detector by name: ``yunet`` (default), ``mtcnn``, ``none`` (``None`` = ``none``).

    ``options`` go to the detector's class (e.g. ``max_side``, ``min_score``; ``weights`` and
    ``threads`` for ``yunet``).
    """
    key = "none" if name is None else str(name).lower()
    if key not in DETECTORS:
        raise ElimError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[key](**options)


_default: Detector | None = None
_default_lock = threading.Lock()


def detect_largest(image: np.ndarray, detector: Detector | None = None) -> Face | None:
    """The face with the largest box in ``image`` (default: :data:`DEFAULT_DETECTOR`), or None."""
    global _default
    if detector is None:
        with _default_lock:
            if _default is None:
                _default = get_detector(DEFAULT_DETECTOR)
            detector = _default
    faces = detector.detect(image)
    return max(faces, key=lambda f: f.area) if faces else None
