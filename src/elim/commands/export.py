"""``elim export RUN_DIR --format onnx|torchscript [-o FILE]``: a standalone model file."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's model to ONNX or TorchScript",
        description=(
            "Write the network of RUN_DIR (preprocessed (N, 3, S, S) float input -> (N, 2) "
            "valence/arousal, dynamic batch) as ONNX or TorchScript, with a JSON sidecar "
            "FILE.json that documents the face crop and normalisation to apply first."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", "-f", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("-o", "--out", metavar="FILE", help="default RUN_DIR/model.onnx or model.pt")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--margin", type=float, metavar="M", help="crop margin documented in the sidecar (default: the run's preprocess.margin)")
    p.add_argument("--grayscale", action="store_true", default=None, help="document grayscale crops (default: the run's preprocess.grayscale)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.inference.export import export_model

    path, meta = export_model(
        args.run_dir, args.format, args.out, opset=args.opset, margin=args.margin,
        grayscale=args.grayscale,
    )
    if args.json:
        print(json.dumps({"format": args.format, "file": str(path), "sidecar": str(meta)}, indent=2))
    else:
        print(f"{args.format}: {path}\npreprocessing: {meta}")
    return 0
