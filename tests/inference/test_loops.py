"""The pieces under the predictor: rows, the image loop and the video loop (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from inference_support import FixedDetector

from elim.detection import Face
from elim.inference.images import iter_image_rows
from elim.inference.rows import FacesIn, face_rows
from elim.inference.video import iter_video_rows, video_name


def _constant_rows(items):
    """A RowsFor step that 'predicts' (0.5, -0.5) for every face."""
    n = sum(len(i.faces) for i in items)
    return face_rows(items, np.tile([[0.5, -0.5]], (n, 1)), None)


def test_face_rows_one_per_face_and_no_face_rows():
    image = np.zeros((4, 4, 3), np.uint8)
    faces = [Face((0, 0, 2, 2), 0.9), Face((1, 1, 3, 4), 0.8)]
    items = [
        FacesIn({"source": "a"}, image, faces),
        FacesIn({"source": "b"}, image, []),
        FacesIn({"source": "c", "frame": 3}, image, faces[:1], ids=[7]),
    ]
    va = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    rows = face_rows(items, va, feats)
    assert [(r["source"], r.get("face"), r["status"]) for r in rows] == [
        ("a", 0, "ok"), ("a", 1, "ok"), ("b", None, "no_face"), ("c", 7, "ok"),
    ]
    assert rows[1]["x1"] == 3 and rows[1]["score"] == 0.8 and rows[3]["valence"] == 0.5
    np.testing.assert_array_equal(rows[3]["features"], [4, 5])
    assert rows[3]["frame"] == 3


def test_image_loop_chunks_errors_and_order(noise_image):
    images = [noise_image(seed=0), np.zeros((5, 5, 3), np.float32), noise_image(seed=1)]
    detector = FixedDetector([(0, 0, 30, 30), (40, 40, 90, 75)])
    chunks = list(iter_image_rows(images, detector, _constant_rows, batch_size=2))
    assert [len(c) for c in chunks] == [3, 2]  # 2 faces + 1 error, then 2 faces
    rows = [r for c in chunks for r in c]
    assert [(r["_position"], r.get("face")) for r in rows] == [(0, 0), (0, 1), (1, None), (2, 0), (2, 1)]
    assert rows[2]["status"].startswith("error: <array 1>: expected a uint8")
    assert detector.calls == 2  # the unreadable input never reaches the detector


def test_image_loop_isolates_a_failing_detection(noise_image):
    class Picky(FixedDetector):
        def detect_batch(self, images):
            if any(im.shape[0] == 20 for im in images):
                raise ValueError("odd size")
            return super().detect_batch(images)

    rows = next(iter_image_rows([noise_image(), noise_image(20, 20)], Picky(), _constant_rows))
    assert [r["status"] for r in rows] == ["ok", "error: detection failed (odd size)"]


def test_video_loop_tracks_times_and_records(noise_image):
    class Sink(list):
        write = list.append

    frames = [noise_image(seed=s) for s in range(7)]
    detector, sink, timings = FixedDetector(), Sink(), {}
    stream = iter_video_rows(
        frames, detector, _constant_rows, every=2, batch_size=3, detect_every=2,
        timings=timings, record=sink,
    )
    chunks = list(stream)
    assert [[r["frame"] for r in c] for c in chunks] == [[0, 2, 4], [6]]
    rows = [r for c in chunks for r in c]
    assert {r["face"] for r in rows} == {0} and {r["source"] for r in rows} == {"<frames>"}
    np.testing.assert_allclose([r["timestamp"] for r in rows], np.array([0, 2, 4, 6]) / 30)
    assert detector.calls == 2  # processed frames 0 and 2 of 4 (frames 0 and 4)
    assert len(sink) == 4 and set(timings) == {"decode", "detect", "model", "dropped"}
    assert timings["dropped"] == 0
    with pytest.raises(ValueError, match="detect_every"):
        next(iter_video_rows(frames, detector, _constant_rows, detect_every=0))


def test_video_names():
    assert video_name("clip.mp4") == "clip.mp4" and video_name(2) == "webcam:2"
    assert video_name(iter([])) == "<frames>"
