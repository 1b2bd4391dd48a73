"""Running a predictor over a mixed list of inputs (what ``elim predict`` does).

Each input is processed on its own terms — photos in batches, videos and webcams as streams —
and a failing input becomes an ``error: …`` row plus a message, never the end of the run.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from elim.detection import Detector
from elim.errors import DataError
from elim.inference.annotate import open_writer, plot_timeseries, write_annotated_video
from elim.inference.inputs import Input
from elim.inference.predictor import ElimPredictor
from elim.inference.stream import DEFAULT_FPS, iter_frames, open_capture, video_fps
from elim.inference.table import rows_to_frame


@dataclass
class Outcome:
    """How one input went: status ``ok``, ``no_face`` or ``error`` (with ``message``)."""

    name: str
    kind: str
    status: str
    message: str = ""
    outputs: tuple[str, ...] = ()


@dataclass
class Options:
    detector: str | Detector | None = "mtcnn"
    batch_size: int = 32
    every: int = 1
    detect_every: int = 1
    smoothing: str | None = None
    features: bool = False
    max_frames: int | None = None
    video_out: str | Path | None = None
    plot_dir: str | Path | None = None
    progress: bool = True


def output_path(base: str | Path, name: str, several: bool) -> Path:
    """``base`` itself for a single video; ``<stem>_<video name><suffix>`` for several."""
    base = Path(base)
    if not several:
        return base
    stem = Path(name).stem if not name.startswith("webcam:") else name.replace(":", "")
    return base.with_name(f"{base.stem}_{stem}{base.suffix}")


def _status(rows: pd.DataFrame) -> tuple[str, str]:
    errors = rows["status"][rows["status"].str.startswith("error")]
    if len(errors):
        return "error", errors.iloc[0].removeprefix("error: ")
    return ("ok", "") if rows["status"].eq("ok").any() else ("no_face", "")


def run_inputs(
    predictor: ElimPredictor,
    inputs: Sequence[Input],
    options: Options,
    on_error: Callable[[str], None] = lambda message: None,
) -> tuple[pd.DataFrame, list[Outcome]]:
    """Predict on every input in order; returns the combined table and one outcome per input."""
    dim = predictor.feature_dim if options.features else 0
    n_videos = sum(i.kind in ("video", "webcam") for i in inputs)
    tables: list[pd.DataFrame] = []
    outcomes: list[Outcome] = []
    for is_image, group in itertools.groupby(inputs, key=lambda i: i.kind == "image"):
        group = list(group)
        if is_image:
            rows = []
            chunks = predictor.iter_predict(
                [i.source for i in group], options.detector, options.batch_size, options.features
            )
            with tqdm(total=len(group), unit="image", disable=None if options.progress else True) as bar:
                for chunk in chunks:
                    rows += chunk
                    bar.update(len({r["_position"] for r in chunk}))
            table = rows_to_frame(rows, dim)
            tables.append(table)
            for position, item in enumerate(group):
                status, message = _status(table[[r["_position"] == position for r in rows]])
                outcomes.append(Outcome(item.name, "image", status, message))
            continue
        for item in group:
            if item.kind == "error":
                tables.append(rows_to_frame([{"source": item.name, "status": f"error: {item.message}"}], dim))
                outcomes.append(Outcome(item.name, "error", "error", item.message))
                continue
            table, outcome = _run_video(predictor, item, options, n_videos > 1, dim)
            tables.append(table)
            outcomes.append(outcome)
    for outcome in outcomes:
        if outcome.status == "error":
            on_error(outcome.message)
    table = pd.concat(tables, ignore_index=True) if tables else rows_to_frame([], dim)
    return table, outcomes


def _run_video(
    predictor: ElimPredictor, item: Input, options: Options, several: bool, dim: int
) -> tuple[pd.DataFrame, Outcome]:
    webcam = item.kind == "webcam"
    with tempfile.TemporaryDirectory(prefix="elim-webcam-") as tmp:
        recording = Path(tmp) / "session.avi" if webcam and options.video_out else None
        recorder = None
        try:
            if recording is not None:
                cap = open_capture(item.source)
                width, height = int(cap.get(3)), int(cap.get(4))  # CAP_PROP_FRAME_WIDTH / HEIGHT
                cap.release()
                recorder = open_writer(recording, DEFAULT_FPS, (width, height))
            table = predictor.predict_video(
                item.source, options.every, options.smoothing, options.batch_size,
                options.max_frames, detector=options.detector,
                detect_every=options.detect_every, return_features=options.features,
                progress=options.progress, record=recorder,
            )
        except DataError as err:
            message = str(err)
            return (
                rows_to_frame([{"source": item.name, "status": f"error: {message}"}], dim),
                Outcome(item.name, item.kind, "error", message),
            )
        finally:
            if recorder is not None:
                recorder.release()
        outputs = []
        if options.video_out and len(table):
            out = output_path(options.video_out, item.name, several)
            if recording is not None:
                frames = iter_frames(recording)
                numbers = sorted(int(f) for f in table["frame"].dropna().unique())
                span = float(table["timestamp"].max() - table["timestamp"].min())
                fps = (len(numbers) - 1) / span if span > 0 else DEFAULT_FPS
            else:
                frames = iter_frames(item.source, options.every, options.max_frames)
                numbers = None
                fps = _source_fps(item.source) / options.every
            outputs.append(str(write_annotated_video(frames, table, out, fps, numbers)))
        if options.plot_dir and len(table):
            stem = output_path("x.png", item.name, True).stem.removeprefix("x_")
            png = Path(options.plot_dir) / f"{stem}.png"
            outputs.append(str(plot_timeseries(table, png, title=item.name)))
    if not len(table):
        message = f"{item.name}: no frame could be decoded"
        return (
            rows_to_frame([{"source": item.name, "status": f"error: {message}"}], dim),
            Outcome(item.name, item.kind, "error", message),
        )
    status, message = _status(table)
    return table, Outcome(item.name, item.kind, status, message, tuple(outputs))


def _source_fps(source: str | int) -> float:
    cap = open_capture(source)
    try:
        return video_fps(cap) or DEFAULT_FPS
    finally:
        cap.release()
