"""Face detectors: find faces (box, score, five landmarks) in RGB images, in source pixels.

Backends (:func:`get_detector`):

- ``yunet`` (default, :mod:`~elim.detection.yunet`): YuNet, shipped inside the package (its
  SHA-256 checked at load) and run by onnxruntime; images are fed at their own size (shrunk to
  a longest side of 640 px first). About 6 ms for a 640×480 frame on one CPU thread.
- ``mtcnn`` (:mod:`~elim.detection.mtcnn`): facenet-pytorch's MTCNN, whose weights ship inside
  its wheel; batched per image size; 50–175 ms per frame on a CPU.
- ``none``: every image already is a cropped face; the "detection" is the whole image.

Every detector returns :class:`Face` records whose landmarks follow :data:`LANDMARK_NAMES`.
:func:`detect_largest` returns the largest face (or None), as used by the data cache for
datasets that come without boxes. Nothing is ever downloaded.
"""

from elim.detection.faces import LANDMARK_NAMES, Detector, Face
from elim.detection.mtcnn import MTCNNDetector
from elim.detection.registry import (
    DEFAULT_DETECTOR,
    DETECTOR_NAME,
    DETECTORS,
    detect_largest,
    get_detector,
)
from elim.detection.whole import WholeImageDetector
from elim.detection.yunet import YUNET_FILE, YUNET_SHA256, YuNetDetector, packaged_weights

__all__ = [
    "DEFAULT_DETECTOR", "DETECTORS", "DETECTOR_NAME", "LANDMARK_NAMES", "YUNET_FILE",
    "YUNET_SHA256", "Detector", "Face", "MTCNNDetector", "WholeImageDetector", "YuNetDetector",
    "detect_largest", "get_detector", "packaged_weights",
]
