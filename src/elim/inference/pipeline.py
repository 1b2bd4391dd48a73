"""What ``elim predict`` does: a :class:`Job` in, a :class:`Report` (table + outcomes) out.

:func:`run_job` checks the options, collects the inputs (:mod:`elim.inference.inputs`), loads
the run, chooses the detector, runs every input (:func:`run_inputs`) and writes the table.
Each input is processed on its own terms — photos in batches, videos and webcams as streams —
and a failing input becomes an ``error: …`` row plus a message, never the end of the run.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from elim.data.io import DEFAULT_FPS, VideoReader
from elim.detection import DEFAULT_DETECTOR, Detector
from elim.errors import DataError, ElimError
from elim.inference.annotate import LazyWriter, plot_timeseries, video_codec, write_annotated_video
from elim.inference.identity_norm import GROUPINGS, IdentityNormaliser
from elim.inference.inputs import Input, collect_inputs
from elim.inference.predictor import ElimPredictor, load
from elim.inference.rows import error_row
from elim.inference.smoothing import parse_smoothing
from elim.inference.stream import iter_frames
from elim.inference.table import (
    check_writable,
    feature_columns,
    rows_to_frame,
    table_format,
    write_table,
)
from elim.inference.threads import ThreadPlan, apply_threads, plan_threads

STATUSES = ("ok", "no_face", "error")


@dataclass
class Outcome:
    """How one input went: status ``ok``, ``no_face`` or ``error`` (with ``message``)."""

    name: str
    kind: str
    status: str
    message: str = ""
    outputs: tuple[str, ...] = ()
    dropped: int = 0  # webcam frames dropped because the pipeline was behind


@dataclass
class Options:
    """How each input is processed (``elim predict`` flags of the same names)."""

    detector: str | Detector | None = DEFAULT_DETECTOR
    batch_size: int = 32
    every: int = 1
    detect_every: int = 1
    smoothing: str | None = None
    features: bool = False
    max_frames: int | None = None
    video_out: str | Path | None = None
    plot_dir: str | Path | None = None
    progress: bool = True


@dataclass
class Job:
    """One ``elim predict`` run: the run directory, the inputs, the detector, the options and
    where the table goes (``out``: .csv, .json or .parquet; None: not written)."""

    run_dir: str | Path
    inputs: Sequence[str | Path | int]
    options: Options = field(default_factory=Options)
    recursive: bool = False
    out: str | Path | None = None
    detector_weights: str | Path | None = None
    detect_size: int = 640
    margin: float | None = None
    grayscale: bool | None = None
    device: str = "cpu"
    threads: int = 0  # torch threads; 0: elim.inference.threads.plan_threads decides
    #: test-time identity normalisation (elim.inference.identity_norm; off by default): who is
    #: one person — "track", "input" or "folder" (identity_norm.GROUPINGS)
    identity_norm: str | None = None


@dataclass
class Report:
    """The combined table of a job, one :class:`Outcome` per input, the table's file and the
    threads used."""

    table: pd.DataFrame
    outcomes: list[Outcome]
    out: str | Path | None = None
    threads: ThreadPlan | None = None
    face: dict | None = None  # the face contract the crops followed (FaceContract.to_dict)

    @property
    def dropped(self) -> int:
        """Webcam frames dropped (the pipeline was slower than the camera)."""
        return sum(o.dropped for o in self.outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}

    @property
    def failed(self) -> bool:
        """True when an input failed."""
        return self.counts["error"] > 0

    def summary(self) -> dict:
        """Inputs, counts per status, rows, the table file, the other files written, dropped
        webcam frames, the threads per stage and the face contract."""
        return {
            "inputs": len(self.outcomes), **self.counts, "rows": len(self.table),
            "out": None if self.out is None else str(self.out),
            "files": [f for o in self.outcomes for f in o.outputs],
            "dropped_frames": self.dropped,
            "threads": None if self.threads is None else self.threads.to_dict(),
            "face": self.face,
        }

    def summary_line(self) -> str:
        counts = self.counts
        return (
            f"{len(self.outcomes)} input(s): {counts['ok']} ok, {counts['no_face']} without a "
            f"face, {counts['error']} failed; {len(self.table)} row(s)"
            + (f"; {self.dropped} webcam frame(s) dropped to keep up" if self.dropped else "")
            + (f" -> {self.out}" if self.out else "")
        )


def check_options(options: Options) -> None:
    """ElimError for options that would fail later (before any input is touched)."""
    parse_smoothing(options.smoothing)
    for name in ("batch_size", "every", "detect_every"):
        _check_positive(name, getattr(options, name))
    if options.video_out:
        video_codec(options.video_out)


def check_identity_norm(job: Job) -> None:
    """ElimError for an ``identity_norm`` grouping that is unknown or combined with outputs
    drawn from the plain predictions while the frames stream (smoothing, annotated videos,
    plots)."""
    if job.identity_norm is None:
        return
    if job.identity_norm not in GROUPINGS:
        raise ElimError(f"identity_norm (--identity-norm) must be one of {', '.join(GROUPINGS)}, "
                        f"got {job.identity_norm!r}")
    clash = [flag for flag, value in (("--smooth", job.options.smoothing),
                                      ("--video-out", job.options.video_out),
                                      ("--plot", job.options.plot_dir)) if value]
    if clash:
        raise ElimError(f"--identity-norm changes the predictions after all frames are seen; "
                        f"{', '.join(clash)} would show the plain ones: run without "
                        f"{' and '.join(clash)}, or without --identity-norm")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ElimError(f"{name} (--{name.replace('_', '-')}) must be >= 1, got {value}")


def choose_detector(
    predictor: ElimPredictor,
    detector: str | Detector | None,
    weights: str | Path | None = None,
    detect_size: int = 640,
    threads: int = 1,
) -> Detector:
    """The detector of a job: ``none`` as it is; ``yunet`` / ``mtcnn`` downscaling images to
    the longest side ``detect_size`` (``yunet`` with ``threads`` onnxruntime threads and,
    when given, the ONNX file ``weights`` instead of the shipped one)."""
    if not isinstance(detector, str) or detector.lower() == "none":
        return predictor.detector(detector)
    options: dict = {"max_side": detect_size}
    if detector.lower() == "yunet":
        options.update(weights=weights, threads=threads)
    elif weights is not None:
        raise ElimError("--detector-weights is a YuNet ONNX file: use it with --detector yunet")
    return predictor.detector(detector, **options)


def run_job(job: Job, on_error: Callable[[str], None] = lambda message: None) -> Report:
    """Run ``elim predict``: check the options and that the table can be written, collect the
    inputs, set the threads (:func:`elim.inference.threads.plan_threads`), load the run,
    predict, write the table (atomically).

    Parameters
    ----------
    job
        What to run.
    on_error
        Called with the message of every failed input, in input order.

    Returns
    -------
    Report
        The combined table (written to ``job.out`` when given) and one outcome per input.
    """
    fmt = table_format(None if job.out is None else str(job.out))
    check_options(job.options)
    check_identity_norm(job)
    _check_positive("detect_size", job.detect_size)
    if job.threads < 0:
        raise ElimError(f"threads (--threads) must be >= 0, got {job.threads}")
    if fmt is not None:
        check_writable(job.out)
    inputs = collect_inputs(job.inputs, recursive=job.recursive)
    if not inputs:
        raise ElimError("nothing to predict: give image/video/folder INPUTs or --webcam N")
    plan = apply_threads(plan_threads(job.threads))
    predictor = load(job.run_dir, device=job.device, margin=job.margin, grayscale=job.grayscale)
    normaliser = (None if job.identity_norm is None
                  else IdentityNormaliser.from_predictor(predictor))
    detector = choose_detector(predictor, job.options.detector, job.detector_weights,
                               job.detect_size, plan.detector)
    options = replace(job.options, detector=detector,
                      features=job.options.features or normaliser is not None)
    table, outcomes = run_inputs(predictor, inputs, options, on_error)
    if normaliser is not None:
        table = normaliser.predict_table(table, job.identity_norm)
        if not job.options.features:
            table = table.drop(columns=feature_columns(predictor.feature_dim))
    if fmt is not None:
        write_table(table, job.out, fmt)
    return Report(table, outcomes, job.out, plan, predictor.face_crop.contract.to_dict())


def output_path(base: str | Path, name: str, several: bool) -> Path:
    """``base`` itself for a single video; ``<stem>_<video name><suffix>`` for several."""
    base = Path(base)
    if not several:
        return base
    stem = Path(name).stem if not name.startswith("webcam:") else name.replace(":", "")
    return base.with_name(f"{base.stem}_{stem}{base.suffix}")


def _table_status(rows: pd.DataFrame) -> tuple[str, str]:
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
    """Run every input in order; returns the combined table and one outcome per input."""
    dim = predictor.feature_dim if options.features else 0
    n_videos = sum(i.kind in ("video", "webcam") for i in inputs)
    tables: list[pd.DataFrame] = []
    outcomes: list[Outcome] = []
    for is_image, group in itertools.groupby(inputs, key=lambda i: i.kind == "image"):
        group = list(group)
        if is_image:
            table, found = _run_images(predictor, group, options, dim)
            tables.append(table)
            outcomes += found
            continue
        for item in group:
            if item.kind == "error":
                table, outcome = _failed(item, item.message, dim)
            else:
                table, outcome = _run_video(predictor, item, options, n_videos > 1, dim)
            tables.append(table)
            outcomes.append(outcome)
    for outcome in outcomes:
        if outcome.status == "error":
            on_error(outcome.message)
    table = pd.concat(tables, ignore_index=True) if tables else rows_to_frame([], dim)
    return table, outcomes


def _failed(item: Input, message: str, dim: int) -> tuple[pd.DataFrame, Outcome]:
    """The one-row table and the outcome of an input that failed as a whole."""
    table = rows_to_frame([error_row({"source": item.name}, message)], dim)
    return table, Outcome(item.name, item.kind, "error", message)


def _run_images(
    predictor: ElimPredictor, group: list[Input], options: Options, dim: int
) -> tuple[pd.DataFrame, list[Outcome]]:
    rows: list[dict] = []
    chunks = predictor.iter_predict(
        [i.source for i in group], options.detector, options.batch_size, options.features
    )
    with tqdm(total=len(group), unit="image", disable=None if options.progress else True) as bar:
        for chunk in chunks:
            rows += chunk
            bar.update(len({r["_position"] for r in chunk}))
    table = rows_to_frame(rows, dim)
    outcomes = []
    for position, item in enumerate(group):
        status, message = _table_status(table[[r["_position"] == position for r in rows]])
        outcomes.append(Outcome(item.name, "image", status, message))
    return table, outcomes


def _run_video(
    predictor: ElimPredictor, item: Input, options: Options, several: bool, dim: int
) -> tuple[pd.DataFrame, Outcome]:
    webcam = item.kind == "webcam"
    with tempfile.TemporaryDirectory(prefix="elim-webcam-") as tmp:
        recording = Path(tmp) / "session.avi" if webcam and options.video_out else None
        recorder = LazyWriter(recording, DEFAULT_FPS) if recording is not None else None
        timings: dict = {}
        try:
            table = predictor.predict_video(
                item.source, options.every, options.smoothing, options.batch_size,
                options.max_frames, detector=options.detector,
                detect_every=options.detect_every, return_features=options.features,
                progress=options.progress, timings=timings, record=recorder,
            )
        except DataError as err:
            return _failed(item, str(err), dim)
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
        return _failed(item, f"{item.name}: no frame could be decoded", dim)
    status, message = _table_status(table)
    dropped = int(timings.get("dropped", 0))
    return table, Outcome(item.name, item.kind, status, message, tuple(outputs), dropped)


def _source_fps(source: str | int) -> float:
    reader = VideoReader(source)
    try:
        return reader.fps or DEFAULT_FPS
    finally:
        reader.close()
