"""Pipeline stages: background threads with bounded queues, in order, exceptions carried over,
stale items dropped for live sources; the threaded video path equals the sequential one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from inference_support import FixedDetector

from elim.errors import DataError
from elim.inference.stages import Prefetch, batches
from elim.inference.threads import plan_threads


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith("-stage")]


def test_prefetch_keeps_order_and_bounds_the_queue():
    made = []

    def source():
        for k in range(50):
            made.append(k)
            yield k

    stage = Prefetch(source(), maxsize=3)
    assert next(stage) == 0
    time.sleep(0.2)
    assert len(made) <= 1 + 3 + 1  # taken + queued + the one waiting to be put
    assert list(stage) == list(range(1, 50))
    assert list(stage) == []


def test_prefetch_raises_where_the_stage_failed():
    def source():
        yield 1
        raise DataError("clip.mp4: cannot open video")

    stage = Prefetch(source(), maxsize=2)
    assert next(stage) == 1
    with pytest.raises(DataError, match="clip.mp4"):
        next(stage)


def test_close_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(3)
        finally:
            closed.set()

    stage = Prefetch(endless(), maxsize=2, name="endless")
    next(stage)
    stage.close()
    assert closed.wait(5) and "endless-stage" not in _stage_threads()


def test_live_stages_drop_the_oldest_and_batch_what_is_ready():
    gate = threading.Event()

    def camera():
        yield from range(20)
        gate.set()

    stage = Prefetch(camera(), maxsize=2, drop_stale=True)
    assert gate.wait(5)
    time.sleep(0.1)
    got = [item for chunk in batches(stage, 8, live=True) for item in chunk]
    assert got == [18, 19] and stage.dropped == 18


def test_threaded_video_equals_the_sequential_loop(predictor, tmp_path):
    """A video file (decode and detect threads) and the same frames as arrays (one thread)
    give the same rows in the same batches."""
    from elim.benchmarks.predict import make_face_video
    from elim.data.io import stream_video

    rng = np.random.default_rng(4)
    video = make_face_video(tmp_path / "clip.avi", [rng.integers(0, 256, (60, 60, 3), np.uint8)],
                            23, size=(96, 64))
    arrays = [f.image for f in stream_video(video)]
    boxes = ((10, 10, 50, 50), (40, 5, 90, 60))
    threaded = list(predictor.iter_video(video, batch_size=5, detector=FixedDetector(boxes),
                                         detect_every=3))
    inline = list(predictor.iter_video(arrays, batch_size=5, detector=FixedDetector(boxes),
                                       detect_every=3))
    assert [len(c) for c in threaded] == [len(c) for c in inline] == [10, 10, 10, 10, 6]
    for a, b in zip((r for c in threaded for r in c), (r for c in inline for r in c)):
        assert (a["frame"], a["face"], a["valence"], a["arousal"]) == (
            b["frame"], b["face"], b["valence"], b["arousal"])
    assert not _stage_threads()


def test_an_abandoned_video_stream_stops_its_threads(predictor, tmp_path):
    from elim.benchmarks.predict import make_face_video

    face = np.zeros((40, 40, 3), np.uint8)
    video = make_face_video(tmp_path / "long.avi", [face], 60, size=(64, 48))
    stream = predictor.iter_video(video, batch_size=4, detector=FixedDetector())
    assert [r["frame"] for r in next(stream)] == [0, 1, 2, 3]
    assert _stage_threads()
    stream.close()
    assert not _stage_threads()


def test_webcam_frames_are_dropped_not_queued(predictor, monkeypatch):
    """A camera faster than the pipeline: frames are dropped (counted), never queued up; every
    decoded frame is either processed or dropped, in increasing order."""
    import elim.data.io as io_mod
    from elim.deps import cv2

    class FastCamera:
        def __init__(self, index):
            self.shown = 0

        def isOpened(self):
            return True

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 32, cv2.CAP_PROP_FRAME_HEIGHT: 24}.get(prop, 0)

        def grab(self):
            self.shown += 1
            return self.shown <= 200

        def read(self):
            self.shown += 1
            return self.shown <= 200, np.full((24, 32, 3), self.shown % 255, np.uint8)

        def release(self):
            pass

    class SlowDetector(FixedDetector):
        def detect_batch(self, images):
            time.sleep(0.02 * len(images))
            return super().detect_batch(images)

    monkeypatch.setattr(io_mod.cv2, "VideoCapture", FastCamera)
    timings: dict = {}
    table = predictor.predict_video(0, detector=SlowDetector(), batch_size=8, timings=timings)
    frames = table["frame"].tolist()
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert timings["dropped"] > 0 and len(frames) + timings["dropped"] == 200


def test_thread_plan_leaves_the_detector_a_core():
    plan = plan_threads(cpus=2)
    assert (plan.torch, plan.detector, plan.opencv) == (1, 1, 1)
    assert plan_threads(cpus=1).torch == 1 and plan_threads(cpus=8).torch == 7
    assert plan_threads(3, cpus=2).torch == 3 and plan_threads(cpus=2).to_dict()["cpus"] == 2
