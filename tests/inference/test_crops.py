"""The face-crop step replays the run's face contract (config.json preprocess.face; older runs:
preprocess.margin and grayscale)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from elim.data.crop import crop_face
from elim.data.face_contract import FaceContract, FaceTemplate, to_gray, window_from_box
from elim.errors import CheckpointError, ElimError
from elim.inference.crops import FaceCrop, run_preprocess
from elim.inference.predictor import ElimPredictor, load

BOX = (10.0, 12.0, 50.0, 60.0)


def _without_margin(run_dir, tmp_path):
    """A copy of the run whose config.json lacks preprocess.margin."""
    import shutil

    copy = tmp_path / "no-margin"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["preprocess"]["margin"]
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_the_run_margin_is_replayed(noise_image):
    image = noise_image()
    pre = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "margin": 0.4}
    crop = FaceCrop.of_run(pre)
    assert crop == FaceCrop(FaceContract(32, 0.4, "rgb"))
    np.testing.assert_array_equal(crop(image, BOX), crop_face(image, BOX, 32, 0.4))
    tight = FaceCrop.of_run(pre, margin=0.0)  # an explicit override wins
    np.testing.assert_array_equal(tight(image, BOX), crop_face(image, BOX, 32, 0.0))
    assert not np.array_equal(tight(image, BOX), crop(image, BOX))
    stack = crop.stack([(image, BOX), (image, None)])
    assert stack.shape == (2, 32, 32, 3) and stack.dtype == np.uint8
    np.testing.assert_array_equal(stack[1], crop_face(image, None, 32, 0.4))
    assert crop.stack([]).shape == (0, 32, 32, 3)


def test_grayscale_runs_crop_gray_on_three_channels(noise_image):
    from elim.deps import cv2

    image = noise_image()
    pre = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "margin": 0.2, "grayscale": True}
    crop = FaceCrop.of_run(pre)(image, BOX)
    gray = cv2.cvtColor(crop_face(image, BOX, 32, 0.2), cv2.COLOR_RGB2GRAY)
    for c in range(3):
        np.testing.assert_array_equal(crop[..., c], gray)
    assert not FaceCrop.of_run(pre, grayscale=False).grayscale


def test_no_margin_in_the_run_and_no_override_is_an_error(run_dir, tmp_path):
    copy = _without_margin(run_dir, tmp_path)
    with pytest.raises(CheckpointError, match="preprocess.margin") as err:
        load(copy)
    assert str(copy) in str(err.value) and "--margin" in str(err.value)
    assert load(copy, margin=0.1).margin == pytest.approx(0.1)
    from elim.inference.export import export_model

    with pytest.raises(CheckpointError, match="preprocess.margin"):
        export_model(copy, "torchscript", tmp_path / "m.pt")


def test_incomplete_preprocess_and_bad_margins():
    with pytest.raises(CheckpointError, match="missing mean, std"):
        run_preprocess({"preprocess": {"image_size": 8}}, "runs/x")
    with pytest.raises(CheckpointError, match="missing image_size"):
        run_preprocess({}, "runs/x")
    with pytest.raises(ElimError, match="margin must be >= 0"):
        FaceCrop(FaceContract(8, -0.1))


def test_predictor_crops_with_the_run_contract(predictor, noise_image, fixed_detector):
    image = noise_image()
    pre = predictor.config["preprocess"]
    face = fixed_detector.detect(image)[0]
    np.testing.assert_array_equal(
        predictor.crop(image, face), crop_face(image, face.box, pre["image_size"], pre["margin"])
    )
    assert predictor.face_crop == FaceCrop.of_run(pre)


def test_predict_crops_is_the_models_infer(predictor, noise_image):
    """One forward loop: predict_crops gives exactly elim.models.infer's numbers, any batching."""
    from elim.models import infer

    crops = np.stack([predictor.crop(noise_image(seed=s), None) for s in range(5)])
    va, feats = predictor.predict_crops(crops, batch_size=2, return_features=True)
    want_va, want_feats = infer(predictor.model, predictor.preprocess, [crops], features=True)
    np.testing.assert_allclose(va, want_va, atol=1e-6)
    np.testing.assert_allclose(feats, want_feats, atol=1e-6)
    empty, none = predictor.predict_crops(crops[:0])
    assert empty.shape == (0, 2) and none is None


def test_grayscale_override_on_a_colour_run(run_dir, noise_image):
    from elim.runs import load_run

    model, config = load_run(run_dir)
    gray = ElimPredictor(model, config, grayscale=True)
    crop = gray.crop(noise_image(), None)
    assert (crop[..., 0] == crop[..., 1]).all() and gray.margin == config["preprocess"]["margin"]


TEMPLATE = FaceTemplate((0.1, 0.05, 0.9, 1.0),
                        ((0.32, 0.4), (0.68, 0.4), (0.5, 0.6), (0.36, 0.76), (0.64, 0.76)))


def _with_face(run_dir, tmp_path, contract):
    """A copy of the run whose config.json holds ``contract`` as preprocess.face."""
    import shutil

    copy = tmp_path / "with-face"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["preprocess"]["face"] = contract.to_dict()
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_a_run_with_a_face_section_replays_it_without_flags(run_dir, tmp_path, noise_image):
    size = json.loads((run_dir / "config.json").read_text())["preprocess"]["image_size"]
    contract = FaceContract(size, 0.0, "gray", "template", False, TEMPLATE, {"sample": 1})
    predictor = load(_with_face(run_dir, tmp_path, contract))
    assert predictor.face_crop.contract == contract
    assert predictor.grayscale and predictor.margin == 0.0  # what serve's /v1/model shows
    image = noise_image(120, 120)
    crop = predictor.crop(image, None)  # whole image: its centred square, in grey
    np.testing.assert_array_equal(crop, to_gray(crop_face(image, None, size)))
    from elim.detection import Face

    face = Face(BOX, 0.9)
    got = predictor.crop(image, face)  # noise has no face: the template window stays
    want = to_gray(crop_face(image, window_from_box(BOX, TEMPLATE.box), size, 0.0))
    np.testing.assert_array_equal(got, want)
    # explicit overrides still win: the box square with that margin, colour as asked
    override = load(_with_face(run_dir, tmp_path / "o", contract), margin=0.25, grayscale=False)
    np.testing.assert_array_equal(override.crop(image, face), crop_face(image, BOX, size, 0.25))


def test_the_export_sidecar_documents_the_contract(run_dir, tmp_path):
    from elim.inference.export import sidecar
    from elim.runs import load_run

    contract = FaceContract(64, 0.0, "gray", "template", True, TEMPLATE, {"sample": 1})
    copy = _with_face(run_dir, tmp_path, contract)
    _, config = load_run(copy)
    pre = sidecar(config, "onnx", copy)["preprocess"]
    assert FaceContract.from_dict(pre["face"]) == contract and pre["grayscale"] is True
    text = " ".join(pre["steps"])
    assert "template" in text and "similarity" in text and "grayscale" in text
    legacy = sidecar(load_run(run_dir)[1], "onnx", run_dir)["preprocess"]
    assert legacy["face"]["mode"] == "box" and "max(w, h) * (1 + margin)" in legacy["steps"][1]


def test_a_trained_run_records_its_contract_and_predict_replays_it(tiny_config, tmp_path,
                                                                   capsys):
    """fit measures the contract on the training faces (synthetic: drawn faces filling the
    image, no boxes, in colour) and writes it to config.json; load() replays it as is, and
    `elim predict --json -o` reports it."""
    from elim.cli import main
    from elim.deps import cv2
    from elim.training import fit

    result = fit(tiny_config(), tmp_path / "run", checkpoints=False, quiet=True)
    face = json.loads((tmp_path / "run" / "config.json").read_text())["preprocess"]["face"]
    assert face == result.config["preprocess"]["face"]
    assert face["colour"] == "rgb" and face["image_size"] == 16 and face["measured"]["boxed"] == 0
    assert face["mode"] in ("template", "box")  # template when the detector finds the faces
    assert load(tmp_path / "run").face_crop.contract == FaceContract.from_dict(face)
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((40, 40, 3), 90, np.uint8))
    assert main(["predict", str(photo), "--model", str(tmp_path / "run"), "--json",
                 "-o", str(tmp_path / "va.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["face"] == face


@pytest.mark.data
def test_an_aligned_run_aligns_in_training_and_in_predict(tiny_config, tmp_path):
    """data.align: the cache warps the training faces onto the measured template, the run
    records it, predict replays it (its crop of a training photo is that photo's training face)
    and `elim evaluate` reopens the aligned cache."""
    import pandas as pd
    from inference_support import LONDON

    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent")
    from elim.datasets import open_dataset
    from elim.evaluation import evaluate_run
    from elim.training import fit

    labels = pd.read_csv(LONDON / "labels.csv", dtype={"identity": str})
    csv = tmp_path / "london.csv"
    for p in labels["path"]:  # links inside the dataset's root (the reader trusts them)
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).symlink_to(LONDON / p)
    pd.DataFrame({"path": list(labels["path"]),
                  "identity": labels["identity"],
                  "valence": [0.6 if e == "smiling" else 0.0 for e in labels["expression"]],
                  "arousal": 0.1, "detect": True}).to_csv(csv, index=False)
    data = {"dataset": "csv", "root": str(csv), "cache_dir": str(tmp_path / "cache"),
            "align": True, "options": {}, "margin": 0.1, "image_size": 32,
            "fractions": [0.5, 0.25, 0.25]}
    result = fit(tiny_config(data=data), tmp_path / "run", checkpoints=False, quiet=True)
    face = result.config["preprocess"]["face"]
    assert face["align"] and face["mode"] == "box" and face["measured"]["not_aligned"] == 0
    cache = open_dataset("csv", str(csv), 32, cache_dir=tmp_path / "cache", margin=0.1,
                         align=True, progress=False)
    predictor = load(tmp_path / "run")
    row = cache.table.iloc[0]
    from elim.data.io import read_image

    box = tuple(row[c] for c in ("x0", "y0", "x1", "y1"))
    np.testing.assert_array_equal(predictor.face_crop(read_image(row["path"]), box),
                                  cache.images[0])
    assert evaluate_run(tmp_path / "run", progress=False)["n"] == len(result.splits.test)
