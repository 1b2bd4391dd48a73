"""Valence/arousal for photos, arrays, videos and webcams with a trained run directory.

``elim.load(run_dir)`` rebuilds the model of a run (``elim.runs.load_run``) together with its
preprocessing; the returned :class:`ElimPredictor` finds faces (``elim.detection``), crops them
with the same rule as training (``elim.data.crop.crop_face`` with the run's margin, then
``elim.models.Preprocess``), and maps each crop through f_φ then f_θ (Eq. 5).

Every method returns (or yields) rows with the columns of :data:`elim.inference.table.COLUMNS`:
``source, frame, timestamp, face, x0, y0, x1, y1, score, valence, arousal, status``, plus
``f0 … f{d-1}`` (the feature z) with ``return_features=True``. ``status`` is ``ok``,
``no_face`` (one row for an input without any face) or ``error: …``. For photos ``face`` numbers
the faces of the image (0, 1, …) and ``frame`` / ``timestamp`` are empty; for videos ``face`` is
the id of the face track (``elim.inference.tracking``), stable across frames.

Videos are decoded as a stream (``elim.inference.stream``) and processed in batches of
``batch_size`` frames: frames → detection → crops → model; nothing else is kept in memory but
the output rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elim.detection import Detector, Face, get_detector
from elim.errors import CheckpointError, DataError, ElimError
from elim.inference.smoothing import Smoothing, parse_smoothing, smooth_table
from elim.inference.stream import Frame, batched, iter_frames, source_name
from elim.inference.table import rows_to_frame
from elim.inference.tracking import IoUTracker

ImageInput = str | Path | np.ndarray | Any  # Any: PIL.Image.Image


class ElimPredictor:
    """A trained ELIM model with its preprocessing, ready for images and videos."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: dict,
        device: str | torch.device = "cpu",
        run_dir: str | Path | None = None,
        margin: float | None = None,
        grayscale: bool | None = None,
    ) -> None:
        """``margin`` / ``grayscale`` override the run's ``preprocess`` values (None: keep)."""
        from elim.models.preprocess import Preprocess

        pre = config.get("preprocess")
        if not isinstance(pre, dict) or not {"image_size", "mean", "std"} <= set(pre):
            raise CheckpointError(
                f"{run_dir or 'config'}: config.json has no complete 'preprocess' section "
                "(image_size, mean, std, margin); re-save the run with elim.runs.save_run"
            )
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.image_size = int(pre["image_size"])
        self.margin = float(pre.get("margin", 0.0) if margin is None else margin)
        self.grayscale = bool(pre.get("grayscale", False) if grayscale is None else grayscale)
        if self.margin < 0:
            raise ElimError(f"crop margin must be >= 0, got {self.margin}")
        self.preprocess = Preprocess(self.image_size, pre["mean"], pre["std"])
        self._detectors: dict[str, Detector] = {}

    @property
    def feature_dim(self) -> int:
        return int(self.model.feature_dim)

    # ------------------------------------------------------------------ building blocks
    def detector(self, detector: str | Detector | None, **options: Any) -> Detector:
        """A detector instance: a name (cached per predictor), ``None`` (= ``none``) or itself."""
        if detector is not None and not isinstance(detector, str):
            return detector
        key = "none" if detector is None else detector.lower()
        if options:
            return get_detector(key, **options)
        if key not in self._detectors:
            self._detectors[key] = get_detector(key)
        return self._detectors[key]

    def crop(self, image: np.ndarray, face: Face | None) -> np.ndarray:
        """The model's input crop of ``face`` (``None``: the whole image is the face)."""
        from elim.data.crop import crop_face

        crop = crop_face(image, None if face is None else face.box, self.image_size, self.margin)
        if self.grayscale:
            import cv2

            crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        return crop

    def predict_crops(
        self, crops: np.ndarray, batch_size: int = 64, return_features: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S, 3) uint8 crops → (N, 2) valence/arousal and (N, d) features (or None)."""
        n = len(crops)
        va = np.empty((n, 2), dtype=np.float32)
        feats = np.empty((n, self.feature_dim), dtype=np.float32) if return_features else None
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                x = self.preprocess(np.ascontiguousarray(crops[start : start + batch_size]))
                z = self.model.features(x.to(self.device))
                va[start : start + len(z)] = self.model.predict_head(z).float().cpu().numpy()
                if feats is not None:
                    feats[start : start + len(z)] = z.float().cpu().numpy()
        return va, feats

    def _face_rows(
        self,
        items: Sequence[tuple[dict, np.ndarray, list[Face], list[int] | None]],
        detector: Detector,
        batch_size: int,
        return_features: bool,
    ) -> list[dict]:
        """Rows for images with known faces. ``items``: (row template, image, faces, face ids)."""
        whole = getattr(detector, "name", "") == "none"
        crops, owners = [], []
        for k, (_, image, faces, _) in enumerate(items):
            for j, face in enumerate(faces):
                crops.append(self.crop(image, None if whole else face))
                owners.append((k, j))
        va, feats = (
            self.predict_crops(np.stack(crops), batch_size, return_features)
            if crops
            else (np.empty((0, 2)), None)
        )
        by_item: dict[int, list[int]] = {}
        for n, (k, _) in enumerate(owners):
            by_item.setdefault(k, []).append(n)
        rows = []
        for k, (base, _, faces, ids) in enumerate(items):
            if not faces:
                rows.append({**base, "status": "no_face"})
                continue
            for j, n in enumerate(by_item[k]):
                face = faces[j]
                row = {
                    **base,
                    "face": ids[j] if ids is not None else j,
                    "x0": face.box[0], "y0": face.box[1], "x1": face.box[2], "y1": face.box[3],
                    "score": face.score,
                    "valence": float(va[n, 0]), "arousal": float(va[n, 1]),
                    "status": "ok",
                }
                if feats is not None:
                    row["features"] = feats[n]
                rows.append(row)
        return rows

    # ------------------------------------------------------------------ images
    def iter_predict(
        self,
        images: ImageInput | Iterable[ImageInput],
        detector: str | Detector | None = "mtcnn",
        batch_size: int = 64,
        return_features: bool = False,
    ) -> Iterator[list[dict]]:
        """Like :meth:`predict`, yielding the rows of each chunk of ``batch_size`` inputs."""
        det = self.detector(detector)
        for chunk in batched(enumerate(_as_inputs(images)), batch_size):
            loaded, rows = [], []
            for position, item in chunk:
                name = _input_name(item, position)
                base = {"source": name, "_position": position}
                try:
                    loaded.append((base, _load_image(item, name)))
                except (DataError, ValueError, OSError) as err:
                    rows.append({**base, "status": f"error: {_message(err)}"})
            found = _detect_each(det, [im for _, im in loaded])
            items = []
            for (base, image), faces in zip(loaded, found):
                if isinstance(faces, Exception):
                    rows.append({**base, "status": f"error: detection failed ({faces})"})
                else:
                    items.append((base, image, faces, None))
            rows += self._face_rows(items, det, batch_size, return_features)
            rows.sort(key=lambda r: (r["_position"], r.get("face", -1)))
            yield rows

    def predict(
        self,
        images: ImageInput | Iterable[ImageInput],
        detector: str | Detector | None = "mtcnn",
        batch_size: int = 64,
        return_features: bool = False,
    ) -> pd.DataFrame:
        """Valence/arousal of every face in ``images``: file paths, RGB uint8 arrays
        (H×W×3, or N×H×W×3 for several) or PIL images; one input or a list of them.

        ``detector=None`` (or ``"none"``) treats each input as an already cropped face.
        Unreadable inputs give a row with ``status = "error: …"``; inputs without a face a row
        with ``status = "no_face"``.
        """
        rows = [r for chunk in self.iter_predict(images, detector, batch_size, return_features) for r in chunk]
        return rows_to_frame(rows, self.feature_dim if return_features else 0)

    # ------------------------------------------------------------------ videos
    def iter_video(
        self,
        source: str | Path | int | Iterable[np.ndarray],
        every: int = 1,
        batch_size: int = 32,
        max_frames: int | None = None,
        detector: str | Detector | None = "mtcnn",
        detect_every: int = 1,
        return_features: bool = False,
        timings: dict[str, float] | None = None,
        record: Any = None,
    ) -> Iterator[list[dict]]:
        """Stream a video: yield the rows of each batch of ``batch_size`` processed frames.

        ``every``: process one frame in ``every``. ``detect_every``: run the detector on one
        processed frame in ``detect_every`` and reuse the latest boxes in between (a speed knob
        for slow detectors; 1 = detect on every frame). ``timings`` (a dict) accumulates the
        seconds spent in ``decode``, ``detect`` and ``model`` (cropping + preprocessing +
        network). ``record`` (an object with ``write(bgr)``, e.g. ``cv2.VideoWriter``) receives
        every processed frame, for annotating webcam sessions afterwards.
        """
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        det = self.detector(detector)
        name = source_name(source) if isinstance(source, (str, Path, int)) else "<frames>"
        timings = {} if timings is None else timings
        for key in ("decode", "detect", "model"):
            timings.setdefault(key, 0.0)
        tracker = IoUTracker()
        held: list[Face] = []
        processed = 0
        frames = _timed(iter_frames(source, every, max_frames), timings, "decode")
        for batch in batched(frames, batch_size):
            if record is not None:
                import cv2

                for frame in batch:
                    record.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
            with _stopwatch(timings, "detect"):
                due = [k for k in range(len(batch)) if (processed + k) % detect_every == 0]
                found = dict(zip(due, det.detect_batch([batch[k].image for k in due])))
            items = []
            for k, frame in enumerate(batch):
                held = found.get(k, held)
                ids = tracker.update([f.box for f in held])
                base = {"source": name, "frame": frame.index, "timestamp": frame.timestamp}
                items.append((base, frame.image, held, ids))
            with _stopwatch(timings, "model"):
                rows = self._face_rows(items, det, batch_size, return_features)
            processed += len(batch)
            yield rows

    def predict_video(
        self,
        source: str | Path | int | Iterable[np.ndarray],
        every: int = 1,
        smoothing: str | Smoothing | None = None,
        batch_size: int = 32,
        max_frames: int | None = None,
        detector: str | Detector | None = "mtcnn",
        detect_every: int = 1,
        return_features: bool = False,
        progress: bool = False,
        timings: dict[str, float] | None = None,
        record: Any = None,
    ) -> pd.DataFrame:
        """One row per face and processed frame (a ``no_face`` row for frames without one),
        smoothed per face track with ``smoothing`` (``"ema:0.3"``, ``"savgol:9"``; see
        :mod:`elim.inference.smoothing`). Raises :class:`DataError` when the video cannot be
        opened. A webcam session runs until ``max_frames`` or Ctrl-C. ``timings`` and
        ``record``: see :meth:`iter_video`."""
        parse_smoothing(smoothing)  # fail before decoding anything
        stream = self.iter_video(
            source, every, batch_size, max_frames, detector, detect_every, return_features,
            timings=timings, record=record,
        )
        name = source_name(source) if isinstance(source, (str, Path, int)) else "frames"
        rows: list[dict] = []
        with _progress(progress, name) as bar:
            try:
                for chunk in stream:
                    rows += chunk
                    bar.update(len({r["frame"] for r in chunk}))
            except KeyboardInterrupt:
                if not isinstance(source, int):
                    raise
                stream.close()  # a webcam session ends with Ctrl-C: keep what was seen
        table = rows_to_frame(rows, self.feature_dim if return_features else 0)
        return smooth_table(table, smoothing)


def load(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    margin: float | None = None,
    grayscale: bool | None = None,
) -> ElimPredictor:
    """Load the run directory written by ``elim train`` (or ``elim.runs.save_run``).

    Crops follow the run's ``preprocess`` section; ``margin`` and ``grayscale`` override it
    (e.g. ``margin=0`` for a model trained on tightly pre-cropped faces such as CK+48, whose
    images were used whole, so the run's margin never applied).
    """
    from elim.runs import load_run

    model, config = load_run(run_dir, device=device)
    return ElimPredictor(model, config, device, run_dir, margin=margin, grayscale=grayscale)


def predict_video(
    source: str | Path | int | Iterable[np.ndarray],
    model: ElimPredictor | str | Path,
    every: int = 1,
    smoothing: str | Smoothing | None = None,
    batch_size: int = 32,
    max_frames: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Valence/arousal along a video file, webcam index or iterable of RGB frames.

    ``model`` is an :class:`ElimPredictor` or a run directory. See
    :meth:`ElimPredictor.predict_video` for the options (``detector``, ``detect_every``,
    ``return_features``, ``progress``).
    """
    predictor = model if isinstance(model, ElimPredictor) else load(model)
    return predictor.predict_video(source, every, smoothing, batch_size, max_frames, **options)


# ---------------------------------------------------------------------- helpers
def _as_inputs(images: ImageInput | Iterable[ImageInput]) -> list:
    if isinstance(images, (str, Path)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if _is_pil(images):
        return [images]
    return list(images)


def _is_pil(item: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(item, Image.Image)


def _input_name(item: Any, position: int) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    return f"<{'image' if _is_pil(item) else 'array'} {position}>"


def _load_image(item: Any, name: str) -> np.ndarray:
    """Path / PIL / array → H×W×3 uint8 RGB; DataError or ValueError naming the input."""
    from elim.data.io import read_image, to_rgb3

    if isinstance(item, (str, Path)):
        return read_image(item)
    if _is_pil(item):
        return np.asarray(item.convert("RGB"))
    array = np.asarray(item)
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: expected a uint8 RGB array, got dtype {array.dtype}")
    try:
        return np.ascontiguousarray(to_rgb3(array))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _detect_each(det: Detector, images: list[np.ndarray]) -> list[list[Face] | Exception]:
    """Batched detection; when the batch fails, image by image so one bad input stays alone."""
    if not images:
        return []
    try:
        return list(det.detect_batch(images))
    except (RuntimeError, ValueError) as batch_err:
        out: list[list[Face] | Exception] = []
        for image in images:
            try:
                out.append(det.detect(image))
            except (RuntimeError, ValueError) as err:
                out.append(err)
        if all(isinstance(o, Exception) for o in out) and len(out) > 1:
            raise ElimError(f"face detection failed on every image: {batch_err}") from batch_err
        return out


def _message(err: Exception) -> str:
    return str(err).strip() or type(err).__name__


def _timed(frames: Iterator[Frame], timings: dict[str, float], key: str) -> Iterator[Frame]:
    """Pass frames through, adding the time spent producing each one to ``timings[key]``."""
    while True:
        start = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            timings[key] += time.perf_counter() - start
            return
        timings[key] += time.perf_counter() - start
        yield frame


@contextmanager
def _stopwatch(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] += time.perf_counter() - start


@contextmanager
def _progress(enabled: bool, name: str):
    from tqdm.auto import tqdm

    bar = tqdm(desc=name, unit="frame", disable=None if enabled else True)
    try:
        yield bar
    finally:
        bar.close()
