"""What every detector returns (:class:`Face`), the :class:`Detector` protocol, and the small
image helpers the detectors share (input check, downscaling, box clipping)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

#: The order of :attr:`Face.landmarks`, the same for every detector: by position in the image
#: of an upright face — the eye with the smaller x (the person's right eye), the eye with the
#: larger x, the nose tip, the mouth corner with the smaller x, the mouth corner with the
#: larger x (MTCNN's order; YuNet's is the same, checked by the tests).
LANDMARK_NAMES = (
    "eye_image_left",
    "eye_image_right",
    "nose_tip",
    "mouth_image_left",
    "mouth_image_right",
)


@dataclass(frozen=True)
class Face:
    """One detected face.

    Parameters
    ----------
    box
        ``(x0, y0, x1, y1)`` in source pixels (continuous coordinates: the whole image is
        ``(0, 0, W, H)``).
    score
        The detector's confidence.
    landmarks
        (5, 2) float64 ``(x, y)`` points in source pixels in the order of
        :data:`LANDMARK_NAMES`, or None when the detector gives none.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            points = np.asarray(self.landmarks, dtype=np.float64)
            if points.shape != (len(LANDMARK_NAMES), 2):
                raise ValueError(f"landmarks must have shape (5, 2), got {points.shape}")
            object.__setattr__(self, "landmarks", points)

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


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as an array; ValueError unless it is H×W×3 uint8."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    return image


def downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink so that the longest side is at most ``max_side``; returns (image, scale ≤ 1).

    Halves with area averaging while the image is at least twice the target (OpenCV's fast
    integer-factor path; an odd last row/column is dropped), then resizes bilinearly for the
    remaining factor < 2 — as smooth as one area resize and about 10× faster for a 1350-px
    photo shrunk to 640 px.
    """
    from elim.deps import cv2

    h, w = image.shape[:2]
    longest = max(h, w)
    if not max_side or longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = image
    while small.shape[1] >= 2 * target[0] and small.shape[0] >= 2 * target[1]:
        half_h, half_w = small.shape[0] // 2, small.shape[1] // 2
        small = cv2.resize(small[: 2 * half_h, : 2 * half_w], (half_w, half_h),
                           interpolation=cv2.INTER_AREA)
    if (small.shape[1], small.shape[0]) != target:
        small = cv2.resize(small, target, interpolation=cv2.INTER_LINEAR)
    return small, scale


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` clipped to the image ``(0, 0, width, height)``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        min(max(x0, 0.0), float(width)),
        min(max(y0, 0.0), float(height)),
        min(max(x1, 0.0), float(width)),
        min(max(y1, 0.0), float(height)),
    )


def to_faces(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray | None, scale: float,
    width: int, height: int,
) -> list[Face]:
    """Faces from detector outputs in downscaled pixels: (N, 4) ``x0, y0, x1, y1`` boxes,
    (N,) scores, (N, 5, 2) landmarks or None; mapped back by ``1 / scale`` and clipped to the
    ``width`` × ``height`` source image (boxes narrower than a pixel are dropped)."""
    faces = []
    for k in range(len(boxes)):
        box = clip_box(np.asarray(boxes[k], dtype=np.float64) / scale, width, height)
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        marks = None if points is None else np.asarray(points[k], dtype=np.float64) / scale
        faces.append(Face(box, float(scores[k]), marks))
    return faces
