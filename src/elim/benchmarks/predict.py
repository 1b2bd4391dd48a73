"""``elim bench predict``: frames per second of the video pipeline, stage by stage.

A 640×480 video with one face (a London-set photo, moved a little every frame; a drawn synthetic
face when ../shared/data/london_faces is absent) and a ``cnn-small`` run directory with random
weights are made on the fly. Each setting (detector × detect every × detect size) then runs the
video once and reports, from that single run, the throughput of decoding, detection and the
model (crop + preprocess + network), end to end (frames / wall time), the detector's share and
the resident memory along the video; then photos per second over a folder of 1350×1350 JPEGs
(the London photos, else drawn faces). Threads follow ``elim.inference.threads.plan_threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

LONDON = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "london_faces"


def london_photos(root: Path = LONDON, limit: int | None = None) -> list[Path]:
    """The London-set photos (neutral first), or [] when the folder is absent."""
    if not root.is_dir():
        return []
    photos = sorted(root.glob("neutral/*.jpg")) + sorted(root.glob("smiling/*.jpg"))
    return photos[:limit]


def synthetic_face(size: int = 480, seed: int = 0) -> np.ndarray:
    """A drawn face (elim's synthetic renderer) on a grey background, size×size RGB uint8."""
    from elim.datasets.synthetic_draw import FaceRenderer, sample_appearance

    renderer = FaceRenderer(sample_appearance(np.random.default_rng(seed)), size)
    faces, alpha = renderer.render(np.array([0.3]), np.array([0.1]))
    background = np.full((size, size, 3), 0.55, np.float32)
    image = faces[0] + background * (1.0 - alpha[..., None])
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def make_face_video(
    path: str | Path,
    faces: Sequence[np.ndarray],
    n_frames: int,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    shift: int = 12,
) -> Path:
    """Write an MJPG video: frame t shows ``faces[t % len(faces)]`` scaled to the frame height,
    centred and shifted by up to ``shift`` pixels along a small ellipse (a slowly moving head)."""
    from elim.deps import cv2

    width, height = size
    scaled = []
    for face in faces:
        s = height / face.shape[0]
        scaled.append(cv2.resize(face, (round(face.shape[1] * s), height), interpolation=cv2.INTER_AREA))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write MJPG video")
    try:
        for t in range(n_frames):
            face = scaled[t % len(scaled)]
            canvas = np.full((height, width, 3), 128, np.uint8)
            phase = 2 * np.pi * t / 48
            dx, dy = round(shift * np.sin(phase)), round(shift / 2 * np.cos(phase))
            x0 = (width - face.shape[1]) // 2 + dx
            # paste with clipping on every side
            fx0, fy0 = max(0, -x0), max(0, -dy)
            cx0, cy0 = max(0, x0), max(0, dy)
            w = min(face.shape[1] - fx0, width - cx0)
            h = min(face.shape[0] - fy0, height - cy0)
            canvas[cy0 : cy0 + h, cx0 : cx0 + w] = face[fy0 : fy0 + h, fx0 : fx0 + w]
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def make_random_run(
    run_dir: str | Path, backbone: str = "cnn-small", margin: float | None = None, seed: int = 0
) -> Path:
    """A run directory with random weights (for speed measurements and tests), whose
    ``config.json`` is written as training writes it (``elim.runs.run_config``); ``margin``:
    the crop margin (None: the training default, ``DataConfig.margin``)."""
    import torch

    from elim.config import Config, ModelConfig
    from elim.models import build_model
    from elim.runs import run_config, save_run

    config = Config(model=ModelConfig(backbone=backbone))
    if margin is not None:
        config.data.margin = float(margin)
    torch.manual_seed(seed)
    values = run_config(config)
    return save_run(run_dir, build_model(values["model"]), values)


def rss_mb() -> float | None:
    """Resident memory of this process in MB (None where /proc is absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_stages(
    predictor,
    video: Path,
    detector: str,
    detect_every: int,
    batch_size: int,
    detect_size: int,
    threads: int = 1,
    det=None,
) -> dict:
    """One end-to-end :meth:`ElimPredictor.iter_video` run of ``video`` with per-stage timers,
    with the detector instance ``det`` (warmed up by the caller) or, when None, a fresh one
    (:func:`~elim.inference.pipeline.choose_detector` of ``detector``, ``detect_size`` and
    ``threads``).

    Returns frames per second of decoding, detection, the model (crop + preprocess + network)
    and end to end (frames / wall time; the stages overlap, see :mod:`elim.inference.video`),
    the detector's share of the stages' busy time, and the resident memory after the first
    10 % of the frames, at its peak and at the end (growth = end − first).
    """
    from elim.inference.pipeline import choose_detector
    from elim.inference.table import rows_to_frame

    if det is None:
        det = choose_detector(predictor, detector, detect_size=detect_size, threads=threads)
    timings: dict[str, float] = {}
    samples: list[tuple[int, float | None]] = []
    rows: list[dict] = []
    start = time.perf_counter()
    for chunk in predictor.iter_video(
        video, batch_size=batch_size, detector=det, detect_every=detect_every, timings=timings
    ):
        rows += chunk
        samples.append((len(rows), rss_mb()))
    wall = time.perf_counter() - start
    table = rows_to_frame(rows)
    frames = int(table["frame"].nunique())
    detected = len(range(0, frames, detect_every))
    busy = timings["decode"] + timings["detect"] + timings["model"]
    memory = [m for _, m in samples if m is not None]
    first = next((m for n, m in samples if m is not None and n >= frames / 10), None)
    return {
        "detector": detector,
        "detect_every": detect_every,
        "detect_size": detect_size,
        "batch_size": batch_size,
        "frames": frames,
        "frames_with_face": int(table.loc[table["status"] == "ok", "frame"].nunique()),
        "seconds": round(wall, 3),
        "fps_end_to_end": round(frames / wall, 1),
        "fps_decode": round(frames / timings["decode"], 1),
        "fps_detect": round(frames / timings["detect"], 1),
        "ms_per_detection": round(1000 * timings["detect"] / max(detected, 1), 2),
        "fps_model": round(frames / timings["model"], 1),
        "detect_share": round(timings["detect"] / busy, 3),
        "rss_mb_first": None if first is None else round(first, 1),
        "rss_mb_peak": round(max(memory), 1) if memory else None,
        "rss_mb_end": round(memory[-1], 1) if memory else None,
        "rss_mb_growth": None if first is None else round(memory[-1] - first, 1),
    }


def measure_photos(predictor, photos: Sequence[Path], detector: str, batch_size: int,
                   threads: int = 1) -> dict:
    """Photos per second of :meth:`ElimPredictor.predict` over ``photos`` (files: decoding,
    detection, crops and the model), and how many gave exactly one face."""
    from elim.deps import Image
    from elim.inference.pipeline import choose_detector

    det = choose_detector(predictor, detector, threads=threads)
    predictor.predict(photos[:1], detector=det)  # warm-up
    start = time.perf_counter()
    table = predictor.predict(list(photos), detector=det, batch_size=batch_size)
    wall = time.perf_counter() - start
    ok = table[table["status"] == "ok"]
    with Image.open(photos[0]) as first:
        width, height = first.size
    return {
        "detector": detector,
        "photos": len(photos),
        "size": f"{width}x{height} JPEG",
        "one_face": int((ok.groupby("source").size() == 1).sum()),
        "seconds": round(wall, 3),
        "photos_per_second": round(len(photos) / wall, 1),
    }


def photo_folder(folder: Path, n: int = 24) -> list[Path]:
    """The London photos (1350×1350 JPEG), else ``n`` drawn faces written as 1350×1350 JPEGs
    into ``folder``."""
    from elim.deps import cv2

    photos = london_photos()
    if photos:
        return photos
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        face = cv2.resize(synthetic_face(480, seed=k), (1350, 1350), interpolation=cv2.INTER_LINEAR)
        path = folder / f"face_{k:02d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
        out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from elim.deps import cv2
    from elim.inference.pipeline import choose_detector
    from elim.inference.predictor import load
    from elim.inference.threads import apply_threads, plan_threads

    plan = apply_threads(plan_threads(args.threads))
    with tempfile.TemporaryDirectory(prefix="elim-bench-predict-") as tmp:
        photos = london_photos(limit=1)
        if photos:
            from elim.data.io import read_image

            faces, source = [read_image(photos[0])], f"london_faces/{photos[0].parent.name}/{photos[0].name}"
        else:
            faces, source = [synthetic_face()], "synthetic face"
        video = make_face_video(Path(tmp) / "face.avi", faces, args.frames)
        predictor = load(args.model or make_random_run(Path(tmp) / "run", args.backbone))
        results = []
        for name in args.detector:
            for size in args.detect_size:
                # One detector per setting, warmed up (load, allocate) before it is timed.
                det = choose_detector(predictor, name, detect_size=size, threads=plan.detector)
                predictor.predict_video(video, max_frames=2, detector=det)
                results += [
                    measure_stages(predictor, video, name, k, args.batch_size, size, plan.detector,
                                   det=det)
                    for k in args.detect_every
                ]
        photos = photo_folder(Path(tmp) / "photos", args.photos)[: args.photos]
        photo_rows = [
            measure_photos(predictor, photos, name, args.batch_size, plan.detector)
            for name in args.detector
        ] if photos else []
    report = {
        "video": f"640x480, {args.frames} frames, one face ({source})",
        "model": args.model or f"{args.backbone} (random weights)",
        "face": predictor.face_crop.contract.to_dict(),  # the crop geometry that was timed
        "backbone": predictor.config["model"]["backbone"],
        "image_size": predictor.image_size,
        "threads": {**plan.to_dict(), "torch_now": torch.get_num_threads(),
                    "opencv_now": cv2.getNumThreads()},
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "results": results,
        "photos": photo_rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['video']}; model {report['model']} ({predictor.image_size} px, face crop "
        f"{report['face']['mode']}); threads "
        f"torch {plan.torch}, detector {plan.detector}, opencv {plan.opencv} of {plan.cpus} CPUs"
    )
    head = ["detector", "detect_every", "detect_size", "fps_end_to_end", "fps_decode", "fps_detect",
            "ms_per_detection", "fps_model", "detect_share", "rss_mb_peak", "rss_mb_growth"]
    print("  ".join(f"{h:>14}" for h in head))
    for r in results:
        print("  ".join(f"{r[h]!s:>14}" for h in head))
    for r in photo_rows:
        print(f"photos ({r['photos']} × {r['size']}, {r['detector']}): "
              f"{r['photos_per_second']} photos/s, {r['one_face']} with exactly one face")
    return 0


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("values must be >= 1")
    return values


def _detectors(text: str) -> list[str]:
    from elim.detection import DETECTORS

    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in DETECTORS or n == "none"]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected detector names among {', '.join(d for d in DETECTORS if d != 'none')}, "
            f"got {text!r}"
        )
    return names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="frames per second of video prediction (decode, detect, model, end to end)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--frames", type=int, default=1000, help="length of the generated video (default 1000)")
    p.add_argument("--detector", type=_detectors, default=["yunet", "mtcnn"], metavar="NAME[,NAME…]", help="detectors to compare (default yunet,mtcnn)")
    p.add_argument("--detect-every", type=_ints, default=[1, 5], metavar="K[,K…]", help="settings to compare (default 1,5)")
    p.add_argument("--detect-size", type=_ints, default=[640], metavar="PX[,PX…]", help="longest sides given to the detector (default 640)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", metavar="RUN_DIR", help="a trained run, timed with its own face contract (default: a random-weight run of --backbone, plain box crops)")
    p.add_argument("--backbone", default="cnn-small", help="backbone of the random run (default cnn-small)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores but the detector's one)")
    p.add_argument("--photos", type=int, default=24, metavar="N", help="photos for the photos/s row (default 24: the London set; 0: no row)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
