"""Export a run's network (f_θ ∘ f_φ, Eq. 5) to ONNX or TorchScript for use without elim.

The exported graph takes the *preprocessed* float tensor ``image`` of shape (N, 3, S, S) and
returns ``va`` of shape (N, 2) (valence, arousal); the batch axis N is dynamic. Face detection,
cropping and normalisation stay outside the graph and are described in a JSON sidecar written
next to the file (``<file>.json``), so that another runtime can reproduce them exactly: the run's
face contract (``preprocess.face``: geometry, template, colour, alignment) and its steps.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from elim.data.face_contract import VIEW_FILL, VIEW_PAD, VIEW_SIZE, FaceContract
from elim.errors import ElimError
from elim.inference.crops import FaceCrop, run_preprocess

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def sidecar(config: dict, fmt: str, run_dir: str | Path, crop: FaceCrop | None = None) -> dict[str, Any]:
    """What a consumer of the exported file needs to know to feed it correctly.

    ``crop``: the face crop to document (default: the run's, :meth:`FaceCrop.of_run`).
    """
    pre = run_preprocess(config, run_dir)
    crop = FaceCrop.of_run(pre, where=run_dir) if crop is None else crop
    size = crop.image_size
    return {
        "format": fmt,
        "source_run": str(Path(run_dir).resolve()),
        "model": config.get("model"),
        "input": {
            "name": "image",
            "shape": ["N", 3, size, size],
            "dtype": "float32",
            "layout": "NCHW, RGB channel order",
        },
        "output": {"name": "va", "shape": ["N", 2], "columns": ["valence", "arousal"]},
        "preprocess": {
            "image_size": size,
            "mean": list(pre["mean"]),
            "std": list(pre["std"]),
            "margin": crop.margin,
            "grayscale": crop.grayscale,
            "face": crop.contract.to_dict(),
            "steps": _steps(crop.contract),
        },
    }


def _steps(contract: FaceContract) -> list[str]:
    """The preprocessing of ``contract`` in words (elim.data.face_contract.FaceContract.cut)."""
    view = (f"look at that crop as the detector did at training time: resize it to {VIEW_SIZE} "
            f"px, add a grey ({VIEW_FILL}) border of {VIEW_PAD:g} x {VIEW_SIZE} px on each side, "
            "run the default detector (preprocess.face.measured.detector) and map its box and "
            "five landmarks back to the crop")
    if contract.mode == "box" and not contract.align:
        geometry = [
            ("take the square with the box centre and side max(w, h) * (1 + margin), padding "
             "outside the image by repeating edge pixels (elim.data.crop.crop_face)"),
            ("resize it to image_size x image_size (area interpolation when shrinking, "
             "bilinear when enlarging)"),
        ]
    else:
        first = ("take the square with the box centre and side max(w, h) * (1 + margin)"
                 if contract.mode == "box" else
                 "take the square window in which the box sits where preprocess.face.template."
                 "box sits in a training crop (crop-relative: side = mean of the width and "
                 "height ratios, centres matched; elim.data.face_contract.window_from_box)")
        geometry = [
            f"{first}, padding outside the image by repeating edge pixels, resized to "
            "image_size x image_size" + (", converted to grayscale" if contract.grayscale
                                         else ""),
            view,
            ("warp the image by the least-squares similarity transform mapping the five "
             "landmarks seen there onto preprocess.face.template.landmarks x image_size "
             "(elim.data.face_contract.align_crop; area-shrunk first when it shrinks)"
             if contract.align else
             "take the template window of the box seen there and cut it as in the first step; "
             "when no face is seen keep the first crop"),
        ]
    return [
        "detect the face box (x0, y0, x1, y1) in the RGB image",
        *geometry,
        *(["convert to grayscale and repeat it on the three channels"]
          if contract.grayscale else []),
        "scale pixels to [0, 1], subtract mean and divide by std per channel",
    ]


def export_model(
    run_dir: str | Path,
    fmt: str = "onnx",
    out: str | Path | None = None,
    opset: int = 17,
    margin: float | None = None,
    grayscale: bool | None = None,
) -> tuple[Path, Path]:
    """Export the model of ``run_dir``; returns (model file, JSON sidecar).

    ``out`` defaults to ``<run_dir>/model.onnx`` or ``<run_dir>/model.pt``. ONNX uses the
    TorchScript-based exporter (``dynamo=False``) with a dynamic batch axis; TorchScript uses
    ``torch.jit.trace``, which records the eval-mode graph (batch size stays free). The sidecar
    documents the run's face crop; ``margin`` / ``grayscale`` override the run's values there
    (as ``elim.load`` does), None keeps them.
    """
    from elim.fileio import write_json
    from elim.runs import load_run

    if fmt not in FORMATS:
        raise ElimError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    model, config = load_run(run_dir, device="cpu")
    crop = FaceCrop.of_run(run_preprocess(config, run_dir), margin, grayscale, where=run_dir)
    out = Path(out) if out is not None else Path(run_dir) / f"model{FORMATS[fmt]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 3, crop.image_size, crop.image_size)
    if fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter notice
            _onnx(model, example, out, opset)
    else:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(out))
    meta = Path(f"{out}.json")
    write_json(meta, sidecar(config, fmt, run_dir, crop))
    return out, meta


def _onnx(model: torch.nn.Module, example: torch.Tensor, out: Path, opset: int) -> None:
    """TorchScript-based ONNX export (needs no onnxscript) with a dynamic batch axis."""
    torch.onnx.export(
        model, (example,), str(out), input_names=["image"], output_names=["va"],
        dynamic_axes={"image": {0: "batch"}, "va": {0: "batch"}},
        opset_version=opset, dynamo=False,
    )
