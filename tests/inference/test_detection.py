"""Face detectors: MTCNN on real photos, coordinate mapping, YuNet errors, the `none` backend."""

from __future__ import annotations

import numpy as np
import pytest

from elim.detection import (
    Detector,
    Face,
    MTCNNDetector,
    WholeImageDetector,
    YuNetDetector,
    detect_largest,
    get_detector,
)
from elim.errors import ElimError


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return get_detector("mtcnn")


@pytest.fixture(scope="module")
def london_images(london_photos):
    from elim.data.io import read_image

    return [read_image(p) for p in london_photos]


def test_exactly_one_face_per_london_photo(mtcnn, london_images):
    found = mtcnn.detect_batch(london_images)
    assert len(found) == 24
    for image, faces in zip(london_images, found):
        assert len(faces) == 1
        x0, y0, x1, y1 = faces[0].box
        h, w = image.shape[:2]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        # a portrait: the face is large and in the middle third horizontally
        assert x1 - x0 > w / 6 and w / 3 < (x0 + x1) / 2 < 2 * w / 3
        assert faces[0].score > 0.9
        assert faces[0].landmarks.shape == (5, 2)


def test_boxes_are_in_source_pixels(mtcnn, london_images):
    """The same picture at two resolutions gives boxes that differ by the scale factor."""
    import cv2

    small = cv2.resize(london_images[0], (600, 600), interpolation=cv2.INTER_AREA)
    large = cv2.resize(small, (1200, 1200), interpolation=cv2.INTER_NEAREST)
    (a,), (b,) = mtcnn.detect(small), mtcnn.detect(large)
    np.testing.assert_allclose(np.array(b.box) / 2, a.box, atol=6)


def test_batch_keeps_order_across_sizes(mtcnn, london_images):
    import cv2

    blank = np.full((240, 320, 3), 127, np.uint8)
    face = cv2.resize(london_images[1], (400, 400), interpolation=cv2.INTER_AREA)
    found = mtcnn.detect_batch([blank, face, blank])
    assert [len(f) for f in found] == [0, 1, 0]
    assert found[1] == [] or found[1][0].box[2] <= 400


def test_detect_largest(mtcnn, london_images):
    face = detect_largest(london_images[0], mtcnn)
    assert isinstance(face, Face) and face.area > 0
    assert detect_largest(np.zeros((120, 160, 3), np.uint8), mtcnn) is None


def test_no_face_in_blank_image(mtcnn):
    assert mtcnn.detect(np.full((480, 640, 3), 200, np.uint8)) == []


def test_rejects_non_rgb_input(mtcnn):
    with pytest.raises(ValueError, match="uint8 RGB"):
        mtcnn.detect(np.zeros((10, 10), np.uint8))


def test_none_detector_returns_whole_image():
    det = get_detector("none")
    assert isinstance(det, WholeImageDetector) and isinstance(det, Detector)
    assert get_detector(None).name == "none"
    (face,) = det.detect(np.zeros((30, 40, 3), np.uint8))
    assert face.box == (0.0, 0.0, 40.0, 30.0) and face.score == 1.0


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(ElimError, match="unknown face detector 'haar'.*mtcnn"):
        get_detector("haar")


def test_yunet_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ELIM_YUNET", raising=False)
    with pytest.raises(ElimError, match="--detector-weights"):
        get_detector("yunet")
    with pytest.raises(ElimError, match="not found"):
        get_detector("yunet", weights=tmp_path / "missing.onnx")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(ElimError, match="not a usable YuNet"):
        get_detector("yunet", weights=bogus)


def test_yunet_rows_map_back_to_source_pixels():
    # x, y, w, h, five landmarks, score — in the detector's (downscaled by 0.5) pixels
    row = np.array([[10, 20, 30, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0.95]], np.float32)
    (face,) = YuNetDetector._faces(row, 0.5, 200, 200)
    assert face.box == (20.0, 40.0, 80.0, 120.0)
    assert face.score == pytest.approx(0.95)
    np.testing.assert_allclose(face.landmarks[0], [2, 4])
    assert YuNetDetector._faces(None, 1.0, 10, 10) == []
