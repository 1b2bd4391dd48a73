"""Python API: elim.load → ElimPredictor.predict / predict_video."""

from __future__ import annotations

import itertools
import tracemalloc
import types

import numpy as np
import pytest
import torch

from elim.data.crop import crop_face
from elim.errors import CheckpointError, DataError
from elim.inference.predictor import ElimPredictor, load, predict_video
from elim.inference.table import COLUMNS
from elim.models.preprocess import Preprocess


def _manual(predictor: ElimPredictor, image: np.ndarray, box) -> np.ndarray:
    """The training-side pipeline spelled out: crop_face + margin, Preprocess, f_θ ∘ f_φ."""
    pre = predictor.config["preprocess"]
    crop = crop_face(image, box, pre["image_size"], pre["margin"])
    x = Preprocess(pre["image_size"], pre["mean"], pre["std"])(crop[None])
    with torch.no_grad():
        return predictor.model(x).numpy()[0]


def test_load_reads_preprocessing(predictor, run_dir):
    import elim

    assert elim.load is load and elim.predict_video is predict_video
    pre = predictor.config["preprocess"]
    assert predictor.image_size == pre["image_size"] == 64
    assert predictor.margin == pytest.approx(0.25)
    assert not predictor.model.training
    with pytest.raises(CheckpointError):
        load(run_dir / "does-not-exist")


def test_numpy_pil_and_path_inputs_agree(predictor, london_photos, tmp_path):
    from elim.data.io import read_image
    from elim.deps import Image, cv2

    path = tmp_path / "face.png"  # a smaller copy keeps detection quick
    small = cv2.resize(read_image(london_photos[0]), (400, 400), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    array = read_image(path)
    table = predictor.predict([path, array, Image.open(path)])
    assert list(table.columns) == COLUMNS
    assert list(table["source"]) == [str(path), "<array 1>", "<image 2>"]
    assert (table["status"] == "ok").all() and (table["face"] == 0).all()
    values = table[["x0", "y0", "x1", "y1", "valence", "arousal"]].to_numpy()
    np.testing.assert_allclose(values[1:], values[[0, 0]], atol=1e-5)
    box = table.loc[0, ["x0", "y0", "x1", "y1"]].to_numpy(float)
    np.testing.assert_allclose(
        table.loc[0, ["valence", "arousal"]].to_numpy(float), _manual(predictor, array, box), atol=1e-5
    )


def test_crops_follow_the_training_rule(predictor, noise_image, fixed_detector):
    images = [noise_image(seed=s) for s in range(3)]
    table = predictor.predict(images, detector=fixed_detector, batch_size=2)
    assert len(table) == 3 and (table["status"] == "ok").all()
    for k, image in enumerate(images):
        expected = _manual(predictor, image, fixed_detector.boxes[0])
        np.testing.assert_allclose(table.loc[k, ["valence", "arousal"]].to_numpy(float), expected, atol=1e-5)


def test_several_faces_per_image(predictor, noise_image):
    from inference_support import FixedDetector

    det = FixedDetector([(0, 0, 30, 30), (40, 40, 90, 75)])
    table = predictor.predict(noise_image(), detector=det)
    assert list(table["face"]) == [0, 1]
    assert table.loc[1, "x1"] == 90.0


def test_no_detector_uses_the_whole_image(predictor, noise_image):
    image = noise_image(64, 64)
    for detector in (None, "none"):
        table = predictor.predict(image, detector=detector)
        assert table.loc[0, ["x0", "y0", "x1", "y1"]].tolist() == [0, 0, 64, 64]
        np.testing.assert_allclose(
            table.loc[0, ["valence", "arousal"]].to_numpy(float), _manual(predictor, image, None), atol=1e-5
        )


def test_no_face_and_bad_inputs_give_flagged_rows(predictor, noise_image, tmp_path):
    blank = np.full((120, 160, 3), 255, np.uint8)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    table = predictor.predict(
        [blank, np.zeros((20, 20, 3), np.float32), text, tmp_path / "missing.png", noise_image()],
        detector="mtcnn",
    )
    assert table["status"].iloc[0] == "no_face"
    assert table["status"].iloc[1].startswith("error: <array 1>: expected a uint8")
    assert table["status"].iloc[2].startswith("error: ") and "notes.jpg" in table["status"].iloc[2]
    assert "not found" in table["status"].iloc[3]
    assert len(table) == 5 and table["valence"].iloc[:4].isna().all()


def test_four_dimensional_array_is_a_batch(predictor, noise_image):
    stack = np.stack([noise_image(seed=s) for s in range(4)])
    table = predictor.predict(stack, detector=None)
    assert list(table["source"]) == [f"<array {k}>" for k in range(4)]


def test_features_are_what_the_head_sees(predictor, noise_image):
    table = predictor.predict([noise_image(seed=s) for s in range(3)], detector=None, return_features=True)
    names = [f"f{j}" for j in range(predictor.feature_dim)]
    assert list(table.columns) == COLUMNS + names
    with torch.no_grad():
        va = predictor.model.predict_head(torch.tensor(table[names].to_numpy(np.float32))).numpy()
    np.testing.assert_allclose(va, table[["valence", "arousal"]].to_numpy(), atol=1e-5)


def test_grayscale_runs_feed_gray_crops(run_dir, noise_image):
    from elim.deps import cv2
    from elim.runs import load_run

    model, config = load_run(run_dir)
    config["preprocess"]["grayscale"] = True
    gray_predictor = ElimPredictor(model, config)
    image = noise_image(64, 64, seed=3)  # the model's size: no resizing between the two routes
    crop = gray_predictor.crop(image, None)
    assert (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all()
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    a = gray_predictor.predict([image, gray], detector=None)
    np.testing.assert_allclose(a.loc[0, ["valence", "arousal"]], a.loc[1, ["valence", "arousal"]], atol=1e-6)


# ---------------------------------------------------------------------- videos
def test_video_from_arrays_every_and_max_frames(predictor, noise_image, fixed_detector):
    frames = [noise_image(seed=s) for s in range(10)]
    table = predictor.predict_video(frames, every=3, detector=fixed_detector, batch_size=2)
    assert list(table["frame"]) == [0, 3, 6, 9]
    np.testing.assert_allclose(table["timestamp"], np.array([0, 3, 6, 9]) / 30.0)
    assert (table["face"] == 0).all() and (table["source"] == "<frames>").all()
    table = predict_video(frames, predictor, max_frames=4, detector=fixed_detector)
    assert list(table["frame"]) == [0, 1, 2, 3]


def test_detect_every_reuses_boxes(predictor, noise_image, fixed_detector):
    frames = [noise_image(seed=s) for s in range(11)]
    table = predictor.predict_video(frames, detector=fixed_detector, detect_every=4, batch_size=3)
    assert fixed_detector.calls == 3  # frames 0, 4, 8
    assert len(table) == 11 and (table["status"] == "ok").all()
    assert (table["face"] == 0).all()


def test_frames_without_faces_get_a_row(predictor):
    frames = [np.full((100, 100, 3), 255, np.uint8)] * 3
    table = predictor.predict_video(frames, detector="mtcnn")
    assert list(table["status"]) == ["no_face"] * 3 and list(table["frame"]) == [0, 1, 2]


def test_video_smoothing_keeps_raw_values(predictor, noise_image, fixed_detector):
    frames = [noise_image(seed=s) for s in range(9)]
    raw = predictor.predict_video(frames, detector=fixed_detector)
    smooth = predictor.predict_video(frames, detector=fixed_detector, smoothing="ema:0.5")
    np.testing.assert_allclose(smooth["valence_raw"], raw["valence"])
    expected = raw["valence"].to_numpy().copy()
    for t in range(1, len(expected)):
        expected[t] = 0.5 * raw["valence"].iloc[t] + 0.5 * expected[t - 1]
    np.testing.assert_allclose(smooth["valence"], expected, atol=1e-9)


def test_video_stream_is_lazy(predictor, noise_image, fixed_detector):
    """An endless source: the first batch arrives without reading the rest."""
    stream = predictor.iter_video(itertools.repeat(noise_image()), batch_size=4, detector=fixed_detector)
    assert isinstance(stream, types.GeneratorType)
    first = next(stream)
    assert [r["frame"] for r in first] == [0, 1, 2, 3]
    stream.close()


def test_long_video_memory_stays_flat(predictor, tmp_path, fixed_detector):
    """Peak Python memory for 150 frames is about that of 15 frames (never all frames held)."""
    from elim.benchmarks.predict import make_face_video

    face = np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    video = make_face_video(tmp_path / "long.avi", [face], 150, size=(160, 120))

    def peak(n: int) -> int:
        tracemalloc.start()
        table = predictor.predict_video(video, max_frames=n, detector=fixed_detector, batch_size=8)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(table) == n
        return top

    short, long = peak(15), peak(150)
    frame_bytes = 160 * 120 * 3
    assert long - short < 20 * frame_bytes  # holding 135 more frames would add ~7.8 MB


def test_unopenable_video_raises(predictor, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="broken.mp4"):
        predictor.predict_video(bad)
    with pytest.raises(DataError, match="not found"):
        predictor.predict_video(tmp_path / "absent.avi")
