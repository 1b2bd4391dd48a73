"""``none``: every input already is a cropped face; its box is the whole image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from elim.detection.faces import Face, check_image


class WholeImageDetector:
    """``--no-detect``: every input already is a cropped face; its box is the whole image."""

    name = "none"

    def detect(self, image: np.ndarray) -> list[Face]:
        image = check_image(image)
        h, w = image.shape[:2]
        return [Face((0.0, 0.0, float(w), float(h)), 1.0, None)]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.detect(im) for im in images]
