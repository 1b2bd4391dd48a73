"""``elim serve --model RUN_DIR``: a local web page (live webcam, uploads) and HTTP API."""

from __future__ import annotations

import argparse
import sys

from elim.errors import ElimError

INSTALL = 'pip install "elim[serve]"  (or, in a checkout, pip install -e ".[serve]")'


def register(sub: argparse._SubParsersAction) -> None:
    from elim.serve.limits import Limits

    d = Limits()
    p = sub.add_parser(
        "serve",
        help="web page (live webcam, uploads) and HTTP API for a trained run",
        description=(
            "Serve RUN_DIR at http://HOST:PORT/: a page with the browser's webcam (live boxes, "
            "V/A disc and time series) and uploads (photos, videos, CSV download), and an API: "
            "POST /v1/predict (the rows of `elim predict --json`), GET /v1/model, GET /healthz, "
            "OpenAPI docs at /docs. Binds 127.0.0.1 unless --host says otherwise."
        ),
    )
    p.add_argument("--model", "-m", required=True, metavar="RUN_DIR", help="run directory of `elim train`")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="prediction threads, one model copy each (default 1)")
    p.add_argument("--queue", type=int, default=d.queue, metavar="N", help=f"requests that may wait for a worker; more get 503 (default {d.queue})")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, metavar="MB", help=f"largest request body (default {d.max_upload_mb:g})")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, metavar="N", help=f"largest image / video frame in pixels (default {d.max_pixels})")
    p.add_argument("--max-files", type=int, default=d.max_files, metavar="N", help=f"most files per request (default {d.max_files})")
    p.add_argument("--max-video-frames", type=int, default=d.max_video_frames, metavar="N", help=f"most processed frames per video (default {d.max_video_frames})")
    p.add_argument("--timeout", type=float, default=d.timeout_s, metavar="S", help=f"time limit per request in seconds (default {d.timeout_s:g})")
    p.add_argument("--margin", type=float, metavar="M", help="crop margin around the detected box (default: the run's preprocess.margin)")
    p.add_argument("--grayscale", action="store_true", default=None, help="feed grayscale crops (default: the run's preprocess.grayscale)")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="torch CPU threads (default 0: the thread plan decides, all cores but the detector's one)")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi_offline  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise ElimError(f"elim serve needs the serve extra ({err.name} is missing): {INSTALL}") from None
    from elim.serve.limits import Limits
    from elim.serve.server import exposure_warning, serve

    limits = Limits(
        max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels, max_files=args.max_files,
        max_video_frames=args.max_video_frames, timeout_s=args.timeout, queue=args.queue,
    )
    warning = exposure_warning(args.host)
    if warning:
        print(f"elim serve: warning: {warning}", file=sys.stderr)
    if args.threads < 0:
        raise ElimError(f"threads (--threads) must be >= 0, got {args.threads}")
    from elim.inference.threads import apply_threads, plan_threads

    # The same plan as `elim predict`: torch, OpenCV and the detector (YuNet's one onnxruntime
    # thread, the predictors' default detector) never oversubscribe the CPU.
    plan = apply_threads(plan_threads(args.threads))
    print(f"elim serve: threads torch {plan.torch}, detector {plan.detector}, opencv {plan.opencv} "
          f"of {plan.cpus} CPUs", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"elim serve: {args.model} at http://{shown}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    serve(
        args.model, args.host, args.port, limits, workers=args.workers, device=args.device,
        margin=args.margin, grayscale=args.grayscale,
    )
    return 0
