"""The video loop: a stream of frames → rows, as a pipeline of stages.

Stages: decoding (:func:`elim.inference.stream.iter_frames`) → detection (on one processed
frame in ``detect_every``; the latest boxes are reused in between; batches of ``batch_size``
frames go to ``detect_batch``) → face tracks (:class:`elim.inference.tracking.IoUTracker`, in
frame order) → the predictor's :data:`~elim.inference.rows.RowsFor` step (crops + one model call
per batch of ``batch_size`` frames).

For video files and webcams, decoding and detection each run in their own thread
(:class:`elim.inference.stages.Prefetch`), so that the three stages overlap; rows still come
out in frame order and in batches of ``batch_size`` frames, exactly as a sequential loop would
give them. A webcam never waits for the pipeline: when the stages fall behind, the oldest
decoded frame is dropped (counted in ``timings["dropped"]``) and batches take only the frames
already there, so latency stays at a few frames. An iterable of arrays is consumed in the
calling thread, one stage after the other. Only a few batches of frames are held at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from elim.data.io import Frame, source_name
from elim.detection import Detector, Face
from elim.inference.rows import FacesIn, RowsFor
from elim.inference.stages import Prefetch, batches
from elim.inference.stream import VideoSource, iter_frames
from elim.inference.tracking import IoUTracker

#: The stages timed by :func:`iter_video_rows` (seconds, accumulated in ``timings``).
STAGES = ("decode", "detect", "model")
#: Frames a live source (webcam) may have waiting between two stages before the oldest is
#: dropped.
LIVE_QUEUE = 2


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

    ``timings`` (a dict) accumulates the seconds spent in each of :data:`STAGES` (each
    measured in its own thread, so they may overlap; ``model`` covers cropping,
    preprocessing and the network) and holds ``dropped``, the number of webcam frames dropped
    because the pipeline was behind (0 for files; written when the iteration ends or is
    closed). ``record`` (an object with
    ``write(bgr)``, e.g. ``cv2.VideoWriter``) receives every processed frame.
    """
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    name = video_name(source)
    timings = {} if timings is None else timings
    for key in STAGES:
        timings.setdefault(key, 0.0)
    timings.setdefault("dropped", 0)
    threaded = isinstance(source, (str, Path, int))
    live = isinstance(source, int)
    frames: Iterable[Frame] = _timed(iter_frames(source, every, max_frames), timings, "decode")
    decode_stage: Prefetch | None = None
    if threaded:
        decode_stage = Prefetch(frames, LIVE_QUEUE if live else max(2, batch_size // 4),
                                drop_stale=live, name="decode")
        frames = decode_stage
    detected: Iterable[tuple[Frame, list[Face]]] = _detect(
        frames, detector, detect_every, batch_size, live, timings
    )
    # Closed downstream first: the detect stage stops pulling before decoding stops.
    stages: list[Prefetch] = []
    if threaded:
        detected = Prefetch(detected, LIVE_QUEUE if live else batch_size, name="detect")
        stages = [detected, decode_stage]
    tracker = IoUTracker()
    dropped = timings["dropped"]
    try:
        for batch in batches(detected, batch_size, live):
            if record is not None:
                _record(record, [frame for frame, _ in batch])
            items = []
            for frame, faces in batch:
                ids = tracker.update([f.box for f in faces])
                base = {"source": name, "frame": frame.index, "timestamp": frame.timestamp}
                items.append(FacesIn(base, frame.image, faces, ids))
            with _stopwatch(timings, "model"):
                rows = rows_for(items)
            yield rows
    finally:
        for stage in stages:
            stage.close()
        if live and decode_stage is not None:  # read once iteration ends (pipeline.py)
            timings["dropped"] = dropped + decode_stage.dropped


def _detect(
    frames: Iterable[Frame], detector: Detector, detect_every: int, batch_size: int, live: bool,
    timings: dict[str, float],
) -> Iterator[tuple[Frame, list[Face]]]:
    """Each frame with its faces: detected on processed frames 0, ``detect_every``, … (in
    batches of up to ``batch_size``), the latest faces reused in between."""
    held: list[Face] = []
    processed = 0
    try:
        for batch in batches(frames, batch_size, live):
            with _stopwatch(timings, "detect"):
                due = [k for k in range(len(batch)) if (processed + k) % detect_every == 0]
                found = dict(zip(due, detector.detect_batch([batch[k].image for k in due])))
            for k, frame in enumerate(batch):
                held = found.get(k, held)
                yield frame, held
            processed += len(batch)
    finally:
        if isinstance(frames, Prefetch):
            frames.close()


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


def _record(record: Any, frames: list[Frame]) -> None:
    from elim.deps import cv2

    for frame in frames:
        record.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))


def _timed(frames: Iterator[Frame], timings: dict[str, float], key: str) -> Iterator[Frame]:
    """Pass frames through, adding the time spent producing each one to ``timings[key]``."""
    try:
        while True:
            start = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                timings[key] += time.perf_counter() - start
                return
            timings[key] += time.perf_counter() - start
            yield frame
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


@contextmanager
def _stopwatch(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] += time.perf_counter() - start
