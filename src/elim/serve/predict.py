"""Uploads → the prediction table, with the predictor of ``elim predict``.

Photos go through :meth:`ElimPredictor.predict` (decoded here from bytes, see
:mod:`elim.serve.uploads`), videos through :meth:`ElimPredictor.predict_video` (from a
temporary file the server names): the same detection, face crop and model as ``elim predict``,
so the rows have the columns of :data:`elim.inference.table.COLUMNS` and the same values. The
``source`` of every row is the upload's label, never a server path.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from elim.data.io import ImageTooLargeError, VideoReader
from elim.errors import DataError
from elim.serve.limits import Limits
from elim.serve.uploads import VIDEO_SUFFIX, RequestError, Upload, decode_image


@dataclass(frozen=True)
class PredictOptions:
    """What a request may choose (query parameters of ``POST /v1/predict``): ``every`` (one
    video frame in N), ``smooth`` (videos: ``ema:0.3`` or ``savgol:9``), ``features`` (add
    the feature z as ``f0…``)."""

    every: int = 1
    smooth: str | None = None
    features: bool = False


def default_detector(predictor) -> str:
    """The detector :meth:`ElimPredictor.predict` uses when given none: the server's (it
    passes none, so it follows the library's default)."""
    return str(inspect.signature(predictor.predict).parameters["detector"].default)


def predict_uploads(
    predictor, uploads: Sequence[Upload], options: PredictOptions, limits: Limits
) -> pd.DataFrame:
    """The table of all ``uploads`` in order (one row per face, and per frame for videos).

    Parameters
    ----------
    predictor
        An :class:`~elim.inference.predictor.ElimPredictor`.
    uploads
        Sniffed uploads (:func:`elim.serve.uploads.make_upload`).
    options, limits
        The request's options and the server's limits.

    Returns
    -------
    pandas.DataFrame
        :data:`~elim.inference.table.COLUMNS` (+ ``valence_raw, arousal_raw`` when smoothed,
        + ``f0…`` with features).

    Raises
    ------
    RequestError
        413 / 422 for an image or video that is too large or cannot be decoded.
    """
    tables = []
    for upload in uploads:
        if upload.kind == "image":
            image = decode_image(upload, limits.max_pixels)
            table = predictor.predict([image], return_features=options.features)
        else:
            table = _predict_video(predictor, upload, options, limits)
        table["source"] = upload.name
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _predict_video(predictor, upload: Upload, options: PredictOptions, limits: Limits) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="elim-serve-") as tmp:
        path = Path(tmp) / f"upload{VIDEO_SUFFIX[upload.container]}"
        path.write_bytes(upload.data)

        def named(text) -> str:  # the server's file name never leaves the server
            return str(text).replace(str(path), upload.name)

        try:
            VideoReader(path, max_pixels=limits.max_pixels).close()  # frame size, before decoding
            table = predictor.predict_video(
                path, every=options.every, smoothing=options.smooth,
                max_frames=limits.max_video_frames, return_features=options.features,
            )
        except ImageTooLargeError as err:
            raise RequestError(413, named(err)) from None
        except DataError as err:
            raise RequestError(422, named(err)) from None
    if not len(table):
        raise RequestError(422, f"{upload.name}: no frame of the video could be decoded")
    table["status"] = table["status"].map(named)
    return table
