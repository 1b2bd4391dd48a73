"""Video input as a stream: frames are decoded one at a time and handed on in small batches.

Nothing here holds more than one batch of frames, so memory stays flat however long the video
or webcam session is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np

from elim.errors import DataError

T = TypeVar("T")

#: Frame rate assumed when the source does not say (arrays, containers without one).
DEFAULT_FPS = 30.0


@dataclass
class Frame:
    """One decoded frame: 0-based index in the source, time in seconds, H×W×3 uint8 RGB."""

    index: int
    timestamp: float
    image: np.ndarray


def source_name(source: str | Path | int) -> str:
    """How a video source is named in output tables: the path, or ``webcam:N``."""
    return f"webcam:{source}" if isinstance(source, int) else str(source)


def open_capture(source: str | Path | int):
    """Open a video file or webcam index with OpenCV; DataError naming the source otherwise."""
    import cv2

    if not isinstance(source, int):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: video file not found")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
    cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        cap.release()
        if isinstance(source, int):
            raise DataError(f"webcam {source}: cannot open it (no camera with that index, or busy)")
        raise DataError(f"{source}: cannot open video (corrupt file or unsupported codec)")
    return cap


def video_fps(cap) -> float | None:
    """Frames per second reported by the container, or None when it is unknown."""
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if math.isfinite(fps) and 0 < fps < 1000 else None


def iter_frames(
    source: str | Path | int | Iterable[np.ndarray],
    every: int = 1,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Yield every ``every``-th frame of a video file, webcam index or iterable of RGB arrays.

    Skipped frames are only grabbed, not decoded. ``max_frames`` bounds the number of frames
    yielded. Timestamps are index / fps for files, wall-clock seconds since the start for
    webcams, and index / 30 where no frame rate is known (iterables of arrays, odd containers).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames <= 0:
        return
    if not isinstance(source, (str, Path, int)):
        frames = (
            Frame(i, i / DEFAULT_FPS, np.ascontiguousarray(im))
            for i, im in enumerate(source)
            if i % every == 0
        )
        yield from islice(frames, max_frames)
        return
    yield from _iter_capture(source, every, max_frames)


def _iter_capture(source: str | Path | int, every: int, max_frames: int | None) -> Iterator[Frame]:
    import cv2

    cap = open_capture(source)
    try:
        fps = None if isinstance(source, int) else video_fps(cap)
        start = time.monotonic()
        index, produced = 0, 0
        while max_frames is None or produced < max_frames:
            if index % every:
                if not cap.grab():
                    break
                index += 1
                continue
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            if isinstance(source, int):
                stamp = time.monotonic() - start
            else:
                stamp = index / (fps or DEFAULT_FPS)
            yield Frame(index, stamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
            produced += 1
    finally:
        cap.release()


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of up to ``n`` items (the last one may be shorter)."""
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk
