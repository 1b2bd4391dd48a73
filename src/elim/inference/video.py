"""The video loop: a stream of frames → rows, one batch of ``batch_size`` frames at a time.

Per batch: frames (:func:`elim.inference.stream.iter_frames`) → detection (on one processed
frame in ``detect_every``; the latest boxes are reused in between) → face tracks
(:class:`elim.inference.tracking.IoUTracker`) → the predictor's
:data:`~elim.inference.rows.RowsFor` step. Only the current batch of frames is held.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from elim.data.io import Frame, source_name
from elim.detection import Detector, Face
from elim.inference.rows import FacesIn, RowsFor
from elim.inference.stream import VideoSource, batched, iter_frames
from elim.inference.tracking import IoUTracker

#: The stages timed by :func:`iter_video_rows` (seconds, accumulated in ``timings``).
STAGES = ("decode", "detect", "model")


def video_name(source: VideoSource) -> str:
    """The ``source`` column of a video: its path, ``webcam:N`` or ``<frames>`` (iterables)."""
    return source_name(source) if isinstance(source, (str, Path, int)) else "<frames>"


def iter_video_rows(
    source: VideoSource,
    detector: Detector,
    rows_for: RowsFor,
    every: int = 1,
    batch_size: int = 32,
    max_frames: int | None = None,
    detect_every: int = 1,
    timings: dict[str, float] | None = None,
    record: Any = None,
) -> Iterator[list[dict]]:
    """Yield the rows of each batch of ``batch_size`` processed frames (see the module).

    ``timings`` (a dict) accumulates the seconds spent in each of :data:`STAGES`; ``model``
    covers cropping, preprocessing and the network. ``record`` (an object with
    ``write(bgr)``, e.g. ``cv2.VideoWriter``) receives every processed frame.
    """
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    name = video_name(source)
    timings = {} if timings is None else timings
    for key in STAGES:
        timings.setdefault(key, 0.0)
    tracker = IoUTracker()
    held: list[Face] = []
    processed = 0
    frames = _timed(iter_frames(source, every, max_frames), timings, "decode")
    for batch in batched(frames, batch_size):
        if record is not None:
            _record(record, batch)
        with _stopwatch(timings, "detect"):
            due = [k for k in range(len(batch)) if (processed + k) % detect_every == 0]
            found = dict(zip(due, detector.detect_batch([batch[k].image for k in due])))
        items = []
        for k, frame in enumerate(batch):
            held = found.get(k, held)
            ids = tracker.update([f.box for f in held])
            base = {"source": name, "frame": frame.index, "timestamp": frame.timestamp}
            items.append(FacesIn(base, frame.image, held, ids))
        with _stopwatch(timings, "model"):
            rows = rows_for(items)
        processed += len(batch)
        yield rows


def collect_video_rows(
    stream: Iterator[list[dict]], source: VideoSource, progress: bool = False
) -> list[dict]:
    """All rows of a video stream, with a progress bar (frames) when ``progress``.

    A webcam session (``source`` an int) ends with Ctrl-C: the rows seen so far are kept.
    """
    from tqdm.auto import tqdm

    rows: list[dict] = []
    label = video_name(source).strip("<>")
    with tqdm(desc=label, unit="frame", disable=None if progress else True) as bar:
        try:
            for chunk in stream:
                rows += chunk
                bar.update(len({r["frame"] for r in chunk}))
        except KeyboardInterrupt:
            if not isinstance(source, int):
                raise
            stream.close()
    return rows


def _record(record: Any, batch: list[Frame]) -> None:
    import cv2

    for frame in batch:
        record.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))


def _timed(frames: Iterator[Frame], timings: dict[str, float], key: str) -> Iterator[Frame]:
    """Pass frames through, adding the time spent producing each one to ``timings[key]``."""
    while True:
        start = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            timings[key] += time.perf_counter() - start
            return
        timings[key] += time.perf_counter() - start
        yield frame


@contextmanager
def _stopwatch(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] += time.perf_counter() - start
