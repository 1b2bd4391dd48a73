"""A minimal IoU tracker: links face boxes of consecutive processed frames into tracks.

Each new box goes to the live track whose last box overlaps it most (greedy, highest IoU first,
IoU ≥ ``min_iou``); unmatched boxes open new tracks. A track not matched for more than
``max_age`` processed frames is closed. Track ids are 0, 1, 2, … in order of appearance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = Sequence[float]


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Intersection over union of every box of ``a`` (rows) with every box of ``b`` (columns)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class _Track:
    box: tuple[float, ...]
    last_seen: int


class IoUTracker:
    """Greedy IoU matching of boxes to live tracks, frame after frame."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 10) -> None:
        self.min_iou = float(min_iou)
        self.max_age = int(max_age)
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0
        self._step = -1

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Assign a track id to each box of the next processed frame (same order as ``boxes``)."""
        self._step += 1
        self._tracks = {
            k: t for k, t in self._tracks.items() if self._step - t.last_seen <= self.max_age
        }
        ids: list[int | None] = [None] * len(boxes)
        live = list(self._tracks)
        if boxes and live:
            iou = iou_matrix(boxes, [self._tracks[k].box for k in live])
            used: set[int] = set()
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                i, j = divmod(int(flat), len(live))
                if iou[i, j] < self.min_iou:
                    break
                if ids[i] is None and j not in used:
                    ids[i] = live[j]
                    used.add(j)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self._next_id
                self._next_id += 1
            self._tracks[ids[i]] = _Track(tuple(float(v) for v in box), self._step)
        return [int(k) for k in ids]
