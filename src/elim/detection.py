"""Face detectors: find face boxes in RGB images, in source pixel coordinates.

Backends (``get_detector(name)``):

- ``mtcnn`` (default): facenet-pytorch's MTCNN, whose weights ship inside the wheel (nothing is
  downloaded). Images are downscaled to a longest side of ``max_side`` (640 px) before detection
  and boxes are mapped back, which keeps a 1350×1350 photo at about the cost of a 640×640 one.
  Batched: ``detect_batch`` runs one MTCNN pass per group of equally sized images.
- ``yunet``: OpenCV's ``cv2.FaceDetectorYN`` with the YuNet ONNX file given by ``weights=`` /
  ``--detector-weights`` or found in the cache (:func:`yunet_search_paths`). Never downloaded.
- ``none``: every image already is a cropped face; the "detection" is the whole image.

``detect_largest(image)`` returns the largest face (or ``None``), as used by the data cache for
datasets that come without boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from elim.errors import ElimError

YUNET_FILENAME = "face_detection_yunet_2023mar.onnx"
YUNET_URL = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
    + YUNET_FILENAME
)


@dataclass(frozen=True)
class Face:
    """One detected face: box ``(x0, y0, x1, y1)`` in source pixels, confidence and landmarks."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) eyes, nose, mouth corners; source pixels

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@runtime_checkable
class Detector(Protocol):
    """Finds faces in H×W×3 uint8 RGB images."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    return image


def _downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink so that the longest side is at most ``max_side``; returns (image, scale ≤ 1)."""
    import cv2

    longest = max(image.shape[:2])
    if not max_side or longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        min(max(x0, 0.0), float(width)),
        min(max(y0, 0.0), float(height)),
        min(max(x1, 0.0), float(width)),
        min(max(y1, 0.0), float(height)),
    )


class MTCNNDetector:
    """facenet-pytorch MTCNN on the CPU (or ``device``), with downscaling and batching."""

    name = "mtcnn"

    def __init__(
        self,
        max_side: int | None = 640,
        min_face_size: int = 20,
        min_score: float = 0.9,
        device: str = "cpu",
    ) -> None:
        from facenet_pytorch import MTCNN

        self.max_side = max_side
        self.min_score = float(min_score)
        self._mtcnn = MTCNN(keep_all=True, device=device, min_face_size=min_face_size)

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """One MTCNN pass per group of images that share a (downscaled) size."""
        import torch

        out: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray, float]]] = {}
        for i, image in enumerate(images):
            image = _check_image(image)
            small, scale = _downscale(image, self.max_side)
            groups.setdefault(small.shape[:2], []).append((i, small, scale))
        for members in groups.values():
            stack = np.stack([m[1] for m in members])
            with torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(stack, landmarks=True)
            for (i, _, scale), b, p, lm in zip(members, boxes, probs, points):
                h, w = images[i].shape[:2]
                out[i] = self._faces(b, p, lm, scale, w, h)
        return out

    def _faces(self, boxes, probs, points, scale: float, width: int, height: int) -> list[Face]:
        # facenet-pytorch returns object arrays (None where an image has no face): cast them.
        if boxes is None or probs is None or len(boxes) == 0 or boxes[0] is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        points = (
            np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) / scale
            if points is not None and len(points) and points[0] is not None
            else None
        )
        faces = []
        for k in range(len(boxes)):
            if probs[k] < self.min_score:
                continue
            box = _clip_box(boxes[k], width, height)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            faces.append(Face(box, float(probs[k]), None if points is None else points[k]))
        return faces


def yunet_search_paths() -> list[Path]:
    """Where ``yunet`` looks for its ONNX file when no path is given, in order."""
    paths = []
    if os.environ.get("ELIM_YUNET"):
        paths.append(Path(os.environ["ELIM_YUNET"]))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    paths.append(cache / "elim" / YUNET_FILENAME)
    return paths


class YuNetDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) with a local ONNX file."""

    name = "yunet"

    def __init__(
        self,
        weights: str | Path | None = None,
        max_side: int | None = 640,
        min_score: float = 0.8,
        nms_threshold: float = 0.3,
    ) -> None:
        import cv2

        path = Path(weights) if weights else next((p for p in yunet_search_paths() if p.is_file()), None)
        if path is None or not path.is_file():
            where = ", ".join(str(p) for p in yunet_search_paths())
            raise ElimError(
                f"yunet: model file {str(path) if path else YUNET_FILENAME!r} not found; download "
                f"{YUNET_URL} yourself and pass --detector-weights PATH (or put it at {where}); "
                "or use --detector mtcnn"
            )
        self.max_side = max_side
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), min_score, nms_threshold, 5000)
        except cv2.error as err:
            raise ElimError(f"yunet: {path} is not a usable YuNet ONNX file ({err})") from err

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        image = _check_image(image)
        small, scale = _downscale(image, self.max_side)
        h, w = small.shape[:2]
        self._net.setInputSize((w, h))
        _, rows = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        return self._faces(rows, scale, image.shape[1], image.shape[0])

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.detect(im) for im in images]

    @staticmethod
    def _faces(rows: np.ndarray | None, scale: float, width: int, height: int) -> list[Face]:
        """Rows are ``x, y, w, h, 5 × (lx, ly), score`` in the detector's input pixels."""
        faces = []
        for row in [] if rows is None else np.asarray(rows, dtype=np.float64):
            x, y, w, h = row[:4] / scale
            box = _clip_box((x, y, x + w, y + h), width, height)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            faces.append(Face(box, float(row[14]), row[4:14].reshape(5, 2) / scale))
        return faces


class WholeImageDetector:
    """``--no-detect``: every input already is a cropped face; its box is the whole image."""

    name = "none"

    def detect(self, image: np.ndarray) -> list[Face]:
        image = _check_image(image)
        h, w = image.shape[:2]
        return [Face((0.0, 0.0, float(w), float(h)), 1.0, None)]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.detect(im) for im in images]


DETECTORS = {"mtcnn": MTCNNDetector, "yunet": YuNetDetector, "none": WholeImageDetector}


def get_detector(name: str | None = "mtcnn", **kwargs) -> Detector:
    """Build a detector by name (``mtcnn``, ``yunet``, ``none``; ``None`` means ``none``)."""
    key = "none" if name is None else str(name).lower()
    if key not in DETECTORS:
        raise ElimError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[key](**kwargs)


#: Identifies what :func:`detect_largest` uses by default (part of the data cache fingerprint).
DETECTOR_NAME = "mtcnn(facenet-pytorch 2.5.3, max_side=640, min_score=0.9)"

_default: Detector | None = None


def detect_largest(image: np.ndarray, detector: Detector | None = None) -> Face | None:
    """The face with the largest box in ``image`` (default detector: MTCNN), or ``None``."""
    global _default
    if detector is None:
        if _default is None:
            _default = get_detector("mtcnn")
        detector = _default
    faces = detector.detect(image)
    return max(faces, key=lambda f: f.area) if faces else None
