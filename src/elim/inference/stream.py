"""Video input as a stream: frames are decoded one at a time and handed on in small batches.

Files and webcams are decoded by :class:`elim.data.io.VideoReader` (the one video decoder,
shared with the cache builder); any iterable of RGB arrays works too. Nothing here holds more
than one batch of frames, so memory stays flat however long the video or webcam session is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np

from elim.data.io import DEFAULT_FPS, Frame, stream_video

T = TypeVar("T")

VideoSource = str | Path | int | Iterable[np.ndarray]


def iter_frames(
    source: VideoSource,
    every: int = 1,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Yield every ``every``-th frame of a video file, webcam index or iterable of RGB arrays.

    ``max_frames`` bounds the number of frames yielded. Timestamps are index / fps for files,
    wall-clock seconds since the start for webcams, and index / 30 where no frame rate is known
    (iterables of arrays, odd containers). Raises :class:`~elim.errors.DataError` naming the
    source when a file or webcam cannot be opened (at the first frame).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames <= 0:
        return
    if isinstance(source, (str, Path, int)):
        yield from stream_video(source, every, max_frames)
        return
    frames = (
        Frame(i, i / DEFAULT_FPS, np.ascontiguousarray(im))
        for i, im in enumerate(source)
        if i % every == 0
    )
    yield from islice(frames, max_frames)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of up to ``n`` items (the last one may be shorter)."""
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk
