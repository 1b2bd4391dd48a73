"""Face detectors: YuNet (default, shipped) and MTCNN on real photos, rotated photos, the shared
landmark order, coordinate mapping, tiny images, the model file's checksum, the `none` backend."""

from __future__ import annotations

import numpy as np
import pytest

from elim.detection import (
    DEFAULT_DETECTOR,
    LANDMARK_NAMES,
    Detector,
    Face,
    MTCNNDetector,
    WholeImageDetector,
    YuNetDetector,
    detect_largest,
    get_detector,
)
from elim.detection.faces import to_faces
from elim.errors import ElimError


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return get_detector("mtcnn")


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return get_detector()


@pytest.fixture(scope="module")
def london_images(london_photos):
    from elim.data.io import read_image

    return [read_image(p) for p in london_photos]


@pytest.fixture(scope="module")
def mtcnn_faces(mtcnn, london_images):
    return mtcnn.detect_batch(london_images)


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    from elim.deps import cv2

    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _check_portrait_face(image: np.ndarray, faces: list[Face], min_score: float) -> None:
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    h, w = image.shape[:2]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # a portrait: the face is large and in the middle third horizontally
    assert x1 - x0 > w / 6 and w / 3 < (x0 + x1) / 2 < 2 * w / 3
    assert faces[0].score > min_score
    assert faces[0].landmarks.shape == (5, 2)


def test_default_detector_is_the_shipped_yunet(yunet):
    assert DEFAULT_DETECTOR == "yunet" and isinstance(yunet, YuNetDetector)
    assert isinstance(yunet, Detector) and yunet.threads == 1
    assert len(LANDMARK_NAMES) == 5 and LANDMARK_NAMES[2] == "nose_tip"


def test_exactly_one_face_per_london_photo(yunet, mtcnn_faces, london_images):
    for image, faces in zip(london_images, yunet.detect_batch(london_images)):
        _check_portrait_face(image, faces, 0.9)
    for image, faces in zip(london_images, mtcnn_faces):
        _check_portrait_face(image, faces, 0.9)


@pytest.mark.parametrize("degrees", [30, -30])
def test_exactly_one_face_per_rotated_london_photo(yunet, london_images, degrees):
    for image in london_images:
        faces = yunet.detect(_rotate(image, degrees))
        assert len(faces) == 1 and faces[0].score > 0.8


def test_yunet_boxes_agree_with_mtcnn(yunet, mtcnn_faces, london_images):
    """Every box coordinate within 10 % of the MTCNN box's width."""
    for image, (m,) in zip(london_images, mtcnn_faces):
        (y,) = yunet.detect(image)
        width = m.box[2] - m.box[0]
        assert np.abs(np.subtract(y.box, m.box)).max() < 0.10 * width


def test_both_detectors_give_landmarks_in_the_same_order(yunet, mtcnn_faces, london_images):
    """LANDMARK_NAMES order for both: each YuNet point is nearest to MTCNN's point of the same
    name, and within 6 % of the face width of it (4 px on a 64-px model crop)."""
    for image, (m,) in zip(london_images, mtcnn_faces):
        (y,) = yunet.detect(image)
        distance = np.linalg.norm(y.landmarks[:, None, :] - m.landmarks[None, :, :], axis=2)
        assert (distance.argmin(axis=1) == np.arange(5)).all()
        assert distance.diagonal().max() < 0.06 * (m.box[2] - m.box[0])
        for points in (y.landmarks, m.landmarks):
            left_eye, right_eye, nose, mouth_left, mouth_right = points
            assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
            assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_boxes_are_in_source_pixels(yunet, mtcnn, london_images):
    """The same picture at two resolutions gives boxes that differ by the scale factor."""
    from elim.deps import cv2

    small = cv2.resize(london_images[0], (600, 600), interpolation=cv2.INTER_AREA)
    large = cv2.resize(small, (1200, 1200), interpolation=cv2.INTER_NEAREST)
    for detector in (yunet, mtcnn):
        (a,), (b,) = detector.detect(small), detector.detect(large)
        np.testing.assert_allclose(np.array(b.box) / 2, a.box, atol=6)


def test_yunet_takes_any_image_size(yunet, london_images):
    from elim.deps import cv2

    odd = cv2.resize(london_images[2], (333, 517), interpolation=cv2.INTER_AREA)  # not ×32
    (face,) = yunet.detect(odd)
    assert 0 <= face.box[0] < face.box[2] <= 333 and 0 <= face.box[1] < face.box[3] <= 517


def test_batch_keeps_order_across_sizes(yunet, mtcnn, london_images):
    from elim.deps import cv2

    blank = np.full((240, 320, 3), 127, np.uint8)
    face = cv2.resize(london_images[1], (400, 400), interpolation=cv2.INTER_AREA)
    for detector in (yunet, mtcnn):
        found = detector.detect_batch([blank, face, blank])
        assert [len(f) for f in found] == [0, 1, 0] and found[1][0].box[2] <= 400


def test_detect_largest(london_images):
    face = detect_largest(london_images[0])  # the default detector
    assert isinstance(face, Face) and face.area > 0
    assert detect_largest(np.zeros((120, 160, 3), np.uint8)) is None


def test_no_face_in_blank_or_noise(yunet, mtcnn):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for detector in (yunet, mtcnn):
        assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []
        assert detector.detect(noise) == []


def test_tiny_images_have_no_face_and_do_not_fail(yunet, mtcnn):
    """8×8 or 1×1 images (a folder of icons) are faceless, alone or in a batch."""
    tiny = [np.full((8, 8, 3), v, np.uint8) for v in range(40)] + [np.zeros((1, 1, 3), np.uint8)]
    for detector in (yunet, mtcnn):
        assert detector.detect_batch(tiny) == [[] for _ in tiny]


def test_rejects_non_rgb_input(yunet, mtcnn):
    for detector in (yunet, mtcnn):
        with pytest.raises(ValueError, match="uint8 RGB"):
            detector.detect(np.zeros((10, 10), np.uint8))


def test_face_record():
    face = Face((1, 2, 5, 8), 0.5, [[0, 0]] * 5)
    assert face.box == (1.0, 2.0, 5.0, 8.0) and face.area == 24.0
    assert face.landmarks.dtype == np.float64 and face.landmarks.shape == (5, 2)
    assert face == Face((1, 2, 5, 8), 0.5)  # landmarks do not take part in equality
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        Face((0, 0, 1, 1), 1.0, np.zeros((68, 2)))


def test_outputs_map_back_to_source_pixels():
    # x0, y0, x1, y1 and five landmarks in the detector's (downscaled by 0.5) pixels
    boxes = np.array([[10, 20, 40, 60], [300, 300, 300.2, 310]], np.float32)
    points = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    (face,) = to_faces(boxes, np.array([0.95, 0.9]), points, 0.5, 200, 200)  # 2nd: < 1 px wide
    assert face.box == (20.0, 40.0, 80.0, 120.0)
    assert face.score == pytest.approx(0.95)
    np.testing.assert_allclose(face.landmarks[1], [4, 6])


def test_none_detector_returns_whole_image():
    det = get_detector("none")
    assert isinstance(det, WholeImageDetector) and isinstance(det, Detector)
    assert get_detector(None).name == "none"
    (face,) = det.detect(np.zeros((30, 40, 3), np.uint8))
    assert face.box == (0.0, 0.0, 40.0, 30.0) and face.score == 1.0


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(ElimError, match="unknown face detector 'haar'.*yunet"):
        get_detector("haar")


def test_corrupt_shipped_model_is_a_one_line_error(tmp_path, monkeypatch):
    import elim.detection.yunet as yunet_module

    bad = tmp_path / yunet_module.YUNET_FILE
    data = bytearray(yunet_module.packaged_weights().read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(yunet_module, "packaged_weights", lambda: bad)
    yunet_module._packaged_graph.cache_clear()
    try:
        with pytest.raises(ElimError) as err:
            get_detector("yunet")
        message = str(err.value)
        assert message.startswith(f"{bad}: corrupt YuNet model file") and "\n" not in message
        assert "reinstall" in message
    finally:
        yunet_module._packaged_graph.cache_clear()


def test_other_yunet_files(tmp_path, london_images):
    """--detector-weights: a missing or non-YuNet file is a clear error; a YuNet file works."""
    import shutil

    with pytest.raises(ElimError, match="not found"):
        get_detector("yunet", weights=tmp_path / "missing.onnx")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(ElimError, match="not a usable YuNet"):
        get_detector("yunet", weights=bogus)
    from elim.detection import packaged_weights

    copy = tmp_path / "copy.onnx"
    shutil.copyfile(str(packaged_weights()), copy)
    detector = get_detector("yunet", weights=copy, max_side=320)
    assert detector.weights == str(copy) and len(detector.detect(london_images[0])) == 1
