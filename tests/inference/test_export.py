"""`elim export`: ONNX and TorchScript files match PyTorch within 1e-4."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from elim.cli import main
from elim.errors import ElimError
from elim.inference.export import export_model
from elim.runs import load_run


@pytest.fixture(scope="module")
def reference(run_dir):
    model, _ = load_run(run_dir)
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return x, model(x).numpy()


def test_onnx_matches_pytorch(run_dir, reference, tmp_path):
    import onnxruntime as ort

    path, meta = export_model(run_dir, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, expected = reference
    np.testing.assert_allclose(session.run(["va"], {"image": x.numpy()})[0], expected, atol=1e-4)
    one = session.run(["va"], {"image": x[:1].numpy()})[0]  # dynamic batch axis
    np.testing.assert_allclose(one, expected[:1], atol=1e-4)
    side = json.loads(meta.read_text())
    assert side["input"]["shape"] == ["N", 3, 64, 64]
    assert side["preprocess"]["margin"] == 0.25 and side["preprocess"]["mean"] == [0.5] * 3


def test_torchscript_matches_pytorch(run_dir, reference, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", str(run_dir), "--format", "torchscript", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sidecar"] == f"{out}.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        scripted = torch.jit.load(str(out))
    x, expected = reference
    with torch.no_grad():
        np.testing.assert_allclose(scripted(x).numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(scripted(x[:3]).numpy(), expected[:3], atol=1e-4)


def test_unknown_format(run_dir):
    with pytest.raises(ElimError, match="unknown export format"):
        export_model(run_dir, "tflite")



def test_sidecar_margin_is_the_runs_unless_overridden(run_dir, tmp_path, capsys):
    from elim.runs import load_run

    _, config = load_run(run_dir)
    _, meta = export_model(run_dir, "torchscript", tmp_path / "a.pt")
    assert json.loads(meta.read_text())["preprocess"]["margin"] == config["preprocess"]["margin"]
    out = tmp_path / "b.pt"
    assert main(["export", str(run_dir), "-f", "torchscript", "-o", str(out), "--margin", "0", "--grayscale"]) == 0
    side = json.loads((tmp_path / "b.pt.json").read_text())["preprocess"]
    assert side["margin"] == 0.0 and side["grayscale"] is True
    assert any("grayscale" in step for step in side["steps"])
