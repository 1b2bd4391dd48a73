"""IoU tracker linking face boxes across frames."""

from __future__ import annotations

import numpy as np

from elim.inference.tracking import IoUTracker, iou_matrix


def test_iou_matrix_values():
    a = [(0, 0, 10, 10)]
    b = [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)]
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix([], b).shape == (0, 3)


def test_ids_follow_boxes_whatever_their_order():
    tracker = IoUTracker()
    left, right = (0, 0, 10, 10), (50, 0, 60, 10)
    assert tracker.update([left, right]) == [0, 1]
    moved_left, moved_right = (2, 0, 12, 10), (52, 1, 62, 11)
    assert tracker.update([moved_right, moved_left]) == [1, 0]


def test_new_face_gets_a_new_id_and_old_tracks_expire():
    tracker = IoUTracker(max_age=2)
    assert tracker.update([(0, 0, 10, 10)]) == [0]  # step 0
    assert tracker.update([(100, 100, 110, 110)]) == [1]  # step 1: far away, a new face
    assert tracker.update([]) == []  # step 2
    assert tracker.update([(1, 0, 11, 10), (101, 100, 111, 110)]) == [2, 1]  # track 0 unseen for 3
