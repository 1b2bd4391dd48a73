"""``elim bench predict``: frames per second of the video pipeline, stage by stage.

A 640×480 video with one face (a London-set photo, moved a little every frame; a drawn synthetic
face when ../shared/data/london_faces is absent) and a ``cnn-small`` run directory with random
weights are made on the fly. Each setting then runs :meth:`ElimPredictor.predict_video` once
and reports, from that single run, the throughput of decoding, detection and the model (crop +
preprocess + network) and end to end (frames / wall time).
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
    import cv2

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


def measure_stages(
    predictor,
    video: Path,
    detect_every: int,
    batch_size: int,
    detect_size: int,
) -> dict:
    """One end-to-end :meth:`ElimPredictor.predict_video` run of ``video`` with per-stage
    timers: frames per second of decoding, detection, the model and end to end."""
    from elim.detection import get_detector

    detector = get_detector("mtcnn", max_side=detect_size)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    table = predictor.predict_video(
        video, batch_size=batch_size, detector=detector, detect_every=detect_every, timings=timings
    )
    wall = time.perf_counter() - start
    frames = int(table["frame"].nunique())
    detected = len(range(0, frames, detect_every))
    return {
        "detect_every": detect_every,
        "detect_size": detect_size,
        "batch_size": batch_size,
        "frames": frames,
        "frames_with_face": int(table.loc[table["status"] == "ok", "frame"].nunique()),
        "seconds": round(wall, 3),
        "fps_end_to_end": round(frames / wall, 1),
        "fps_decode": round(frames / timings["decode"], 1),
        "fps_detect": round(frames / timings["detect"], 1),
        "ms_per_detection": round(1000 * timings["detect"] / max(detected, 1), 1),
        "fps_model": round(frames / timings["model"], 1),
    }


def run(args: argparse.Namespace) -> int:
    import torch

    from elim.inference.predictor import load

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="elim-bench-predict-") as tmp:
        photos = london_photos(limit=1)
        if photos:
            from elim.data.io import read_image

            faces, source = [read_image(photos[0])], f"london_faces/{photos[0].parent.name}/{photos[0].name}"
        else:
            faces, source = [synthetic_face()], "synthetic face"
        video = make_face_video(Path(tmp) / "face.avi", faces, args.frames)
        predictor = load(make_random_run(Path(tmp) / "run", args.backbone))
        predictor.predict_video(video, max_frames=2)  # warm-up (allocations, MTCNN weights)
        results = [
            measure_stages(predictor, video, k, args.batch_size, size)
            for size in args.detect_size
            for k in args.detect_every
        ]
    report = {
        "video": f"640x480, {args.frames} frames, one face ({source})",
        "backbone": args.backbone,
        "image_size": predictor.image_size,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['video']}; backbone {args.backbone} ({predictor.image_size} px); "
        f"torch threads {report['torch_threads']} of {report['cpu_count']} CPUs"
    )
    head = ["detect_every", "detect_size", "fps_end_to_end", "fps_decode", "fps_detect", "ms_per_detection", "fps_model", "frames_with_face"]
    print("  ".join(f"{h:>16}" for h in head))
    for r in results:
        print("  ".join(f"{r[h]:>16}" for h in head))
    return 0


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("values must be >= 1")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="frames per second of video prediction (decode, detect, model, end to end)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--frames", type=int, default=150, help="length of the generated video (default 150)")
    p.add_argument("--detect-every", type=_ints, default=[1, 5], metavar="K[,K…]", help="settings to compare (default 1,5)")
    p.add_argument("--detect-size", type=_ints, default=[640, 320], metavar="PX[,PX…]", help="longest sides given to MTCNN (default 640,320)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backbone", default="cnn-small")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
