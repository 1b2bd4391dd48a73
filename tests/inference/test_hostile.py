"""Hostile inputs to `elim predict`: bad webcam indices, unwritable or failing output files,
folders of tiny images, detectors failing inside, models that predict NaN, odd image files."""

from __future__ import annotations

import errno
import os

import numpy as np
import pandas as pd
import pytest
import torch

from elim.benchmarks.predict import make_random_run, synthetic_face
from elim.cli import main
from elim.deps import cv2
from elim.errors import ElimError


@pytest.fixture(scope="module")
def face_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("face") / "face.png"
    face = cv2.resize(synthetic_face(480), (160, 160), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """A run whose weights are NaN (save_run writes them as they are)."""
    from elim.runs import load_run, save_run

    run = make_random_run(tmp_path_factory.mktemp("nan") / "run")
    model, config = load_run(run)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return save_run(run, model, config)


@pytest.mark.parametrize("index", ["-1", "99999999999"])
def test_bad_webcam_index_is_one_line(run_dir, capsys, index):
    assert main(["predict", "--webcam", index, "-m", str(run_dir), "--no-detect"]) == 1
    err = capsys.readouterr().err
    assert f"elim predict: webcam {index}: not a webcam index" in err
    assert "Traceback" not in err and "VideoCapture" not in err


def test_unwritable_output_is_refused_before_any_work(run_dir, face_png, tmp_path, monkeypatch):
    from elim.inference.pipeline import Job, Options, run_job

    never = tmp_path / "no-run"  # never loaded: the output is checked first
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ElimError, match=r"file/out.csv: cannot write the table there .* not a folder"):
        run_job(Job(never, [face_png], Options(progress=False), out=blocker / "out.csv"))
    (tmp_path / "x.csv").mkdir()
    with pytest.raises(ElimError, match="x.csv: is a folder"):
        run_job(Job(never, [face_png], Options(progress=False), out=tmp_path / "x.csv"))

    import elim.inference.table as table_module

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(table_module.tempfile, "mkstemp", read_only)
    with pytest.raises(ElimError, match=r"out.csv: cannot write the table there \(Read-only"):
        run_job(Job(never, [face_png], Options(progress=False), out=tmp_path / "out.csv"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_any_work(face_png, tmp_path):
    from elim.inference.pipeline import Job, Options, run_job

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ElimError, match="cannot write the table there"):
            run_job(Job(tmp_path / "no-run", [face_png], Options(progress=False), out=folder / "o.csv"))
    finally:
        folder.chmod(0o755)


def test_failed_write_keeps_the_old_table(run_dir, face_png, tmp_path, monkeypatch, capsys):
    """A full disk while writing: the previous out.csv survives, one line names the file."""
    import elim.fileio

    out = tmp_path / "out.csv"
    out.write_text("previous results\n")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(elim.fileio.os, "fsync", full_disk)
    assert main(["predict", str(face_png), "-m", str(run_dir), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"elim predict: error: {out}: cannot write the table (No space left on device); an "
                       "existing file there is kept unchanged")
    assert not any("Traceback" in line for line in err)
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_folder_of_tiny_images_and_one_face(run_dir, face_png, tmp_path, capsys, detector):
    folder = tmp_path / "icons"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(40):
        cv2.imwrite(str(folder / f"icon{k:02d}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (folder / "zz-face.png").write_bytes(face_png.read_bytes())
    out = tmp_path / "out.csv"
    code = main(["predict", str(folder), "-m", str(run_dir), "--detector", detector,
                 "--batch-size", "32", "-o", str(out)])
    assert code == 0
    table = pd.read_csv(out)
    assert table["status"].tolist() == ["no_face"] * 40 + ["ok"]
    assert "41 input(s): 1 ok, 40 without a face, 0 failed" in capsys.readouterr().err


def test_detector_failures_inside_stay_internal(predictor, noise_image, caplog):
    class Broken:
        name = "broken"

        def detect(self, image):
            raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")

        def detect_batch(self, images):
            raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")

    table = predictor.predict([noise_image(seed=s) for s in range(3)], detector=Broken())
    assert table["status"].tolist() == [
        "error: face detection failed (RuntimeError inside the broken detector)"] * 3
    assert "torch.cat" in caplog.text  # logged for whoever debugs, never in the table


def test_nan_weights_are_refused_at_load(nan_run, capsys):
    """(load_run's own check: tests/runs/test_store.py) `elim predict` says so in one line."""
    assert main(["predict", str(nan_run), "-m", str(nan_run), "--no-detect"]) == 2
    err = capsys.readouterr().err
    assert "NaN or inf" in err and "model.safetensors" in err and "Traceback" not in err


def test_non_finite_predictions_are_errors(run_dir, noise_image):
    from elim.inference.predictor import ElimPredictor
    from elim.inference.rows import NON_FINITE
    from elim.runs import load_run

    model, config = load_run(run_dir)
    with torch.no_grad():
        for p in model.head.parameters():
            p.fill_(float("nan"))
    table = ElimPredictor(model, config).predict([noise_image()], detector=None)
    assert table["status"].tolist() == [f"error: {NON_FINITE}"]
    assert table[["valence", "arousal"]].isna().all().all() and table["x1"].notna().all()


def test_extension_less_gif_faces(run_dir, tmp_path, capsys):
    """A classic face set: GIF data named subject01.happy, no image suffix."""
    from elim.deps import Image

    folder = tmp_path / "yalefaces"
    folder.mkdir()
    for k, mood in enumerate(["happy", "sad", "surprised"]):
        face = cv2.resize(synthetic_face(480, seed=k), (200, 200), interpolation=cv2.INTER_AREA)
        Image.fromarray(face).convert("L").save(folder / f"subject01.{mood}", format="GIF")
    (folder / "Readme").write_text("the Yale faces")
    out = tmp_path / "out.csv"
    assert main(["predict", str(folder), "-m", str(run_dir), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert [os.path.basename(s) for s in table["source"]] == [
        "subject01.happy", "subject01.sad", "subject01.surprised"]
    assert (table["status"] == "ok").all()
