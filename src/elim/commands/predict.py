"""``elim predict INPUT… --model RUN_DIR``: valence/arousal for photos, folders, videos, webcams."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elim.errors import ElimError

SHOWN = ["source", "frame", "face", "valence", "arousal", "score", "status"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="valence/arousal of the faces in photos, folders, videos or a webcam",
        description=(
            "Detect faces, crop them like the training data of RUN_DIR and predict valence and "
            "arousal. INPUT: image files, folders (--recursive for subfolders), video files "
            "(mp4, avi, mov, mkv, ...) or a webcam index. Output: CSV, JSON or Parquet by the "
            "-o extension; without -o a table (or JSON with --json) on stdout. Exit status 1 "
            "when an input failed (the others are still processed)."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image, folder, video or webcam index")
    p.add_argument("--model", "-m", required=True, metavar="RUN_DIR", help="run directory of `elim train`")
    p.add_argument("-o", "--out", metavar="FILE", help="write the table to FILE (.csv, .json, .parquet)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--recursive", "-r", action="store_true", help="include subfolders of folders")
    p.add_argument("--webcam", type=int, action="append", default=[], metavar="N", help="webcam index (Ctrl-C stops)")
    p.add_argument("--detector", default="mtcnn", choices=["mtcnn", "yunet", "none"], help="face detector (default mtcnn)")
    p.add_argument("--detector-weights", metavar="PATH", help="YuNet ONNX file for --detector yunet")
    p.add_argument("--detect-size", type=int, default=640, metavar="PX", help="downscale images to this longest side for detection (default 640)")
    p.add_argument("--no-detect", action="store_true", help="inputs are already cropped faces (= --detector none)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="images / frames per batch (default 32)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="process one video frame in N (default 1)")
    p.add_argument("--detect-every", type=int, default=1, metavar="K", help="run the detector on one processed frame in K, reuse boxes in between (default 1)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop a video or webcam after N processed frames")
    p.add_argument("--smooth", metavar="SPEC", help="smooth videos per face track: ema:0.3 or savgol:9")
    p.add_argument("--features", action="store_true", help="add the feature vector z as columns f0..")
    p.add_argument("--video-out", metavar="OUT.mp4", help="write annotated video(s) (box, V/A, V–A disc)")
    p.add_argument("--plot", metavar="DIR", help="write a V/A time-series PNG per video into DIR")
    p.add_argument("--margin", type=float, metavar="M", help="crop margin around the detected box (default: the run's preprocess.margin)")
    p.add_argument("--grayscale", action="store_true", default=None, help="feed grayscale crops (default: the run's preprocess.grayscale)")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="torch CPU threads (default: torch's own; 1 is often fastest on a busy CPU)")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.inference.inputs import collect_inputs
    from elim.inference.pipeline import Options, run_inputs
    from elim.inference.predictor import load
    from elim.inference.smoothing import parse_smoothing
    from elim.inference.table import table_format, write_table

    fmt = table_format(args.out)
    parse_smoothing(args.smooth)
    for flag in ("batch_size", "every", "detect_every", "detect_size"):
        if getattr(args, flag) < 1:
            raise ElimError(f"--{flag.replace('_', '-')} must be >= 1")
    inputs = collect_inputs([*args.inputs, *args.webcam], recursive=args.recursive)
    if not inputs:
        raise ElimError("nothing to predict: give image/video/folder INPUTs or --webcam N")
    if args.video_out:
        from elim.inference.annotate import FOURCC

        if Path(args.video_out).suffix.lower() not in FOURCC:
            raise ElimError(f"--video-out {args.video_out}: use one of {', '.join(FOURCC)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    predictor = load(args.model, device=args.device, margin=args.margin, grayscale=args.grayscale)
    name = "none" if args.no_detect else args.detector
    options: dict = {"max_side": args.detect_size} if name != "none" else {}
    if name == "yunet":
        options["weights"] = args.detector_weights
    detector = predictor.detector(name, **options)

    def report(message: str) -> None:
        print(f"elim predict: {message}", file=sys.stderr)

    table, outcomes = run_inputs(
        predictor,
        inputs,
        Options(
            detector=detector, batch_size=args.batch_size, every=args.every,
            detect_every=args.detect_every, smoothing=args.smooth, features=args.features,
            max_frames=args.max_frames, video_out=args.video_out, plot_dir=args.plot,
        ),
        on_error=report,
    )
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "no_face", "error")}
    summary = {
        "inputs": len(outcomes), **counts, "rows": len(table),
        "out": args.out, "files": [f for o in outcomes for f in o.outputs],
    }
    if fmt is not None:
        write_table(table, args.out, fmt)
        if args.json:
            print(json.dumps(summary, indent=2))
    elif args.json:
        print(table.to_json(orient="records", indent=1))
    else:
        import pandas as pd

        shown = table[[c for c in SHOWN if c in table]].copy()
        shown["source"] = [Path(s).name if not s.startswith("<") else s for s in shown["source"]]
        signed = {c: (lambda v: "-" if pd.isna(v) else f"{v:+.3f}") for c in ("valence", "arousal")}
        print(shown.to_string(index=False, formatters=signed, float_format="{:.3f}".format, na_rep="-"))
    print(
        f"elim predict: {summary['inputs']} input(s): {counts['ok']} ok, "
        f"{counts['no_face']} without a face, {counts['error']} failed; {len(table)} row(s)"
        + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 1 if counts["error"] else 0
