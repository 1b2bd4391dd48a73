"""Helpers shared by the inference tests (a module with a unique name, importable from them)."""

from __future__ import annotations

from pathlib import Path

from elim.detection import Face

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LONDON = DATA / "london_faces"
CK_PLUS = DATA / "ck_plus_48"


class FixedDetector:
    """Test double: the same box(es) on every image; counts the images it was asked about."""

    name = "fixed"

    def __init__(self, boxes=((10.0, 12.0, 50.0, 60.0),)):
        self.boxes = [tuple(map(float, b)) for b in boxes]
        self.calls = 0

    def detect(self, image):
        return self.detect_batch([image])[0]

    def detect_batch(self, images):
        self.calls += len(images)
        return [[Face(b, 0.99, None) for b in self.boxes] for _ in images]
