"""``mtcnn``: facenet-pytorch's MTCNN (its weights ship inside facenet-pytorch's wheel)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from elim.detection.faces import Face, check_image, downscale, to_faces


class MTCNNDetector:
    """facenet-pytorch MTCNN on the CPU (or ``device``), with downscaling and batching.

    Images are shrunk to a longest side of ``max_side`` before detection and boxes are mapped
    back; ``detect_batch`` runs one MTCNN pass per group of equally sized images. MTCNN runs on
    torch, so its threads are torch's (``torch.set_num_threads``). Images whose shorter side
    (after downscaling) is below ``min_face_size`` cannot hold a face MTCNN finds: they give no
    face without being passed to it (facenet-pytorch fails on them).
    """

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
        self.min_face_size = int(min_face_size)
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
            small, scale = downscale(check_image(image), self.max_side)
            if min(small.shape[:2]) >= self.min_face_size:
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
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        points = (
            np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
            if points is not None and len(points) and points[0] is not None
            else None
        )
        keep = probs >= self.min_score
        return to_faces(
            boxes[keep], probs[keep], None if points is None else points[keep], scale, width, height
        )
