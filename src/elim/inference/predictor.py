"""Valence/arousal for photos, arrays, videos and webcams with a trained run directory.

``elim.load(run_dir)`` rebuilds the model of a run (``elim.runs.load_run``) together with its
preprocessing; the returned :class:`ElimPredictor` is a thin facade over the pieces of
:mod:`elim.inference`: it finds faces (``elim.detection``), crops them with the run's face
contract (:class:`elim.inference.crops.FaceCrop`: ``crop_face`` with the run's margin, optional
grayscale), and maps the crops through f_φ then f_θ (Eq. 5) with ``elim.models.infer``, the one
batched inference loop. The image loop is :mod:`elim.inference.images`, the video loop
:mod:`elim.inference.video`, the rows :mod:`elim.inference.rows`.

Every method returns (or yields) rows with the columns of :data:`elim.inference.table.COLUMNS`:
``source, frame, timestamp, face, x0, y0, x1, y1, score, valence, arousal, status``, plus
``f0 … f{d-1}`` (the feature z) with ``return_features=True``. ``status`` is ``ok``,
``no_face`` (one row for an input without any face) or ``error: …``. For photos ``face`` numbers
the faces of the image (0, 1, …) and ``frame`` / ``timestamp`` are empty; for videos ``face`` is
the id of the face track (``elim.inference.tracking``), stable across frames.

Videos are decoded as a stream (``elim.data.io.VideoReader``) and processed in batches of
``batch_size`` frames: frames → detection → crops → model, decoding and detection in their own
threads for files and webcams (:mod:`elim.inference.video`); nothing else is kept in memory
but a few batches of frames and the output rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elim.detection import DEFAULT_DETECTOR, Detector, Face, get_detector
from elim.inference.crops import FaceCrop, run_preprocess
from elim.inference.images import ImageInput, iter_image_rows
from elim.inference.rows import FacesIn, RowsFor, face_rows
from elim.inference.smoothing import Smoothing, parse_smoothing, smooth_table
from elim.inference.stream import VideoSource
from elim.inference.table import rows_to_frame
from elim.inference.video import collect_video_rows, iter_video_rows


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

        pre = run_preprocess(config, run_dir)
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.face_crop = FaceCrop.of_run(pre, margin, grayscale, where=run_dir)
        self.preprocess = Preprocess.from_config(pre)
        self._detectors: dict[str, Detector] = {}

    @property
    def image_size(self) -> int:
        return self.face_crop.image_size

    @property
    def margin(self) -> float:
        return self.face_crop.margin

    @property
    def grayscale(self) -> bool:
        return self.face_crop.grayscale

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
        return self.face_crop(image, None if face is None else face.box)

    def predict_crops(
        self, crops: np.ndarray, batch_size: int = 64, return_features: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S, 3) uint8 crops → (N, 2) valence/arousal and (N, d) features (or None)."""
        from elim.models import infer

        batches = (crops[start : start + batch_size] for start in range(0, len(crops), batch_size))
        return infer(self.model, self.preprocess, batches, device=self.device, features=return_features)

    def _rows_for(self, detector: Detector, batch_size: int, return_features: bool) -> RowsFor:
        """The step images-with-faces → rows: crop every face, predict, build the rows."""
        whole = getattr(detector, "name", "") == "none"  # the face is the whole image

        def rows_for(items: Sequence[FacesIn]) -> list[dict]:
            crops = self.face_crop.stack(
                [(item.image, None if whole else face.box) for item in items for face in item.faces]
            )
            va, feats = self.predict_crops(crops, batch_size, return_features)
            return face_rows(items, va, feats)

        return rows_for

    # ------------------------------------------------------------------ images
    def iter_predict(
        self,
        images: ImageInput | Iterable[ImageInput],
        detector: str | Detector | None = DEFAULT_DETECTOR,
        batch_size: int = 64,
        return_features: bool = False,
    ) -> Iterator[list[dict]]:
        """Like :meth:`predict`, yielding the rows of each chunk of ``batch_size`` inputs
        (each row also carries ``_position``, the index of its input)."""
        det = self.detector(detector)
        return iter_image_rows(images, det, self._rows_for(det, batch_size, return_features), batch_size)

    def predict(
        self,
        images: ImageInput | Iterable[ImageInput],
        detector: str | Detector | None = DEFAULT_DETECTOR,
        batch_size: int = 64,
        return_features: bool = False,
    ) -> pd.DataFrame:
        """Valence/arousal of every face in ``images``.

        Parameters
        ----------
        images
            File paths, RGB uint8 arrays (H×W×3, or N×H×W×3 for several) or PIL images; one
            input or a list of them.
        detector
            ``"yunet"`` (default, :data:`elim.detection.DEFAULT_DETECTOR`), ``"mtcnn"``, a
            :class:`~elim.detection.Detector`, or ``None`` / ``"none"`` to treat each input as
            an already cropped face.
        batch_size
            Inputs per detection and model batch.
        return_features
            Add the feature z = f_φ(x) as columns ``f0 … f{d-1}``.

        Returns
        -------
        pandas.DataFrame
            One row per face with :data:`elim.inference.table.COLUMNS`, in input order. An
            unreadable input gives a row with ``status = "error: …"``, an input without a
            face a row with ``status = "no_face"``.
        """
        chunks = self.iter_predict(images, detector, batch_size, return_features)
        rows = [row for chunk in chunks for row in chunk]
        return rows_to_frame(rows, self.feature_dim if return_features else 0)

    # ------------------------------------------------------------------ videos
    def iter_video(
        self,
        source: VideoSource,
        every: int = 1,
        batch_size: int = 32,
        max_frames: int | None = None,
        detector: str | Detector | None = DEFAULT_DETECTOR,
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
        network; stages of files and webcams run in their own threads and overlap) and the
        count ``dropped`` of webcam frames dropped because the pipeline was behind. ``record`` (an object with ``write(bgr)``, e.g. ``cv2.VideoWriter``) receives
        every processed frame, for annotating webcam sessions afterwards.
        """
        det = self.detector(detector)
        return iter_video_rows(
            source, det, self._rows_for(det, batch_size, return_features), every=every,
            batch_size=batch_size, max_frames=max_frames, detect_every=detect_every,
            timings=timings, record=record,
        )

    def predict_video(
        self,
        source: VideoSource,
        every: int = 1,
        smoothing: str | Smoothing | None = None,
        batch_size: int = 32,
        max_frames: int | None = None,
        detector: str | Detector | None = DEFAULT_DETECTOR,
        detect_every: int = 1,
        return_features: bool = False,
        progress: bool = False,
        timings: dict[str, float] | None = None,
        record: Any = None,
    ) -> pd.DataFrame:
        """Valence/arousal of every face along a video, smoothed per face track.

        Parameters
        ----------
        source
            A video file, a webcam index (the session runs until ``max_frames`` or Ctrl-C,
            and keeps the rows seen so far) or any iterable of H×W×3 uint8 RGB frames.
        every
            Process one frame in ``every``.
        smoothing
            ``None``, ``"ema:0.3"`` or ``"savgol:9"`` (see :mod:`elim.inference.smoothing`);
            the raw values are kept in ``valence_raw`` / ``arousal_raw``.
        batch_size
            Frames per detection and model batch.
        max_frames
            Stop after this many processed frames.
        detector
            As in :meth:`predict`.
        detect_every
            Run the detector on one processed frame in ``detect_every`` and reuse its boxes
            in between.
        return_features
            Add the feature z as columns ``f0 … f{d-1}``.
        progress
            Show a progress bar (frames).
        timings, record
            See :meth:`iter_video`.

        Returns
        -------
        pandas.DataFrame
            One row per face and processed frame (a ``no_face`` row for a frame without
            one); ``face`` is the face track id, ``frame`` / ``timestamp`` the frame's index
            and time in seconds.

        Raises
        ------
        DataError
            When the video file or webcam cannot be opened (the message names it).
        """
        parse_smoothing(smoothing)  # fail before decoding anything
        stream = self.iter_video(
            source, every, batch_size, max_frames, detector, detect_every, return_features,
            timings=timings, record=record,
        )
        rows = collect_video_rows(stream, source, progress)
        table = rows_to_frame(rows, self.feature_dim if return_features else 0)
        return smooth_table(table, smoothing)


def load(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    margin: float | None = None,
    grayscale: bool | None = None,
) -> ElimPredictor:
    """Load the run directory written by ``elim train`` (or ``elim.runs.save_run``).

    Parameters
    ----------
    run_dir
        The run directory (``model.safetensors`` + ``config.json``).
    device
        Torch device for the model.
    margin
        Crop margin around detected boxes; None (default): the run's ``preprocess.margin``.
        E.g. ``margin=0`` for a model trained on tightly pre-cropped faces such as CK+48,
        whose images were used whole, so the run's margin never applied.
    grayscale
        Feed grayscale crops; None (default): the run's ``preprocess.grayscale``.

    Returns
    -------
    ElimPredictor
        The model in eval mode with the run's face contract.

    Raises
    ------
    CheckpointError
        When the run directory, its weights or its ``preprocess`` section is missing.
    """
    from elim.runs import load_run

    model, config = load_run(run_dir, device=device)
    return ElimPredictor(model, config, device, run_dir, margin=margin, grayscale=grayscale)


def predict_video(
    source: VideoSource,
    model: ElimPredictor | str | Path,
    every: int = 1,
    smoothing: str | Smoothing | None = None,
    batch_size: int = 32,
    max_frames: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Valence/arousal along a video file, webcam index or iterable of RGB frames.

    Parameters
    ----------
    source
        A video file, a webcam index or an iterable of H×W×3 uint8 RGB frames.
    model
        An :class:`ElimPredictor`, or a run directory (loaded with :func:`load`).
    every, smoothing, batch_size, max_frames
        As in :meth:`ElimPredictor.predict_video`.
    **options
        ``detector``, ``detect_every``, ``return_features``, ``progress``, ``timings``,
        ``record`` of :meth:`ElimPredictor.predict_video`.

    Returns
    -------
    pandas.DataFrame
        One row per face and processed frame (see :meth:`ElimPredictor.predict_video`).
    """
    predictor = model if isinstance(model, ElimPredictor) else load(model)
    return predictor.predict_video(source, every, smoothing, batch_size, max_frames, **options)
