"""``elim predict INPUT… --model RUN_DIR``: valence/arousal for photos, folders, videos, webcams."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from elim.detection import DEFAULT_DETECTOR, DETECTORS
    from elim.inference.identity_norm import GROUPINGS

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
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS), help=f"face detector (default {DEFAULT_DETECTOR}, shipped with elim)")
    p.add_argument("--detector-weights", metavar="PATH", help="another YuNet ONNX file for --detector yunet (default: the shipped one)")
    p.add_argument("--detect-size", type=int, default=640, metavar="PX", help="downscale images to this longest side for detection (default 640)")
    p.add_argument("--no-detect", action="store_true", help="inputs are already cropped faces (= --detector none)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="images / frames per batch (default 32)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="process one video frame in N (default 1)")
    p.add_argument("--detect-every", type=int, default=1, metavar="K", help="run the detector on one processed frame in K, reuse boxes in between (default 1)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop a video or webcam after N processed frames")
    p.add_argument("--smooth", metavar="SPEC", help="smooth videos per face track: ema:0.3 or savgol:9")
    p.add_argument("--features", action="store_true", help="add the feature vector z as columns f0..")
    p.add_argument("--identity-norm", choices=list(GROUPINGS), metavar="BY",
                   help="test-time identity normalisation (an extension, off by default): "
                        "normalise each person's faces with Eqs. 3-4 against the run's "
                        "reference bank; one person = a video's face track (track), all faces "
                        "of one input (input) or of one folder (folder). The plain predictions "
                        "go to valence_plain/arousal_plain")
    p.add_argument("--video-out", metavar="OUT.mp4", help="write annotated video(s) (box, V/A, V–A disc)")
    p.add_argument("--plot", metavar="DIR", help="write a V/A time-series PNG per video into DIR")
    p.add_argument("--margin", type=float, metavar="M", help="crop margin around the detected box (default: the run's preprocess.margin)")
    p.add_argument("--grayscale", action="store_true", default=None, help="feed grayscale crops (default: the run's preprocess.grayscale)")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="torch CPU threads (default: all cores but the detector's one)")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.inference.pipeline import Job, Options, run_job
    from elim.inference.table import table_text

    job = Job(
        run_dir=args.model,
        inputs=[*args.inputs, *args.webcam],
        options=Options(
            detector="none" if args.no_detect else args.detector, batch_size=args.batch_size,
            every=args.every, detect_every=args.detect_every, smoothing=args.smooth,
            features=args.features, max_frames=args.max_frames, video_out=args.video_out,
            plot_dir=args.plot,
        ),
        recursive=args.recursive, out=args.out, detector_weights=args.detector_weights,
        detect_size=args.detect_size, margin=args.margin, grayscale=args.grayscale,
        device=args.device, threads=args.threads, identity_norm=args.identity_norm,
    )
    report = run_job(job, on_error=lambda message: print(f"elim predict: {message}", file=sys.stderr))
    if args.out is not None:
        if args.json:
            print(json.dumps(report.summary(), indent=2))
    elif args.json:
        print(report.table.to_json(orient="records", indent=1))
    else:
        print(table_text(report.table))
    print(f"elim predict: {report.summary_line()}", file=sys.stderr)
    return 1 if report.failed else 0
