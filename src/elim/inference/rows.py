"""Rows of the prediction table: one per face, or one flagged row for an input without any.

The loops over images (:mod:`elim.inference.images`) and videos (:mod:`elim.inference.video`)
describe each image as a :class:`FacesIn` (row template, image, faces, track ids); a
:data:`RowsFor` step (the predictor's) turns a batch of them into rows with the columns of
:data:`elim.inference.table.COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from elim.detection import Face


@dataclass
class FacesIn:
    """One image and the faces found in it.

    ``base`` holds the row fields shared by its faces (``source``, and ``frame`` /
    ``timestamp`` for videos, ``_position`` for photos); ``ids`` the face track ids (videos;
    None: the faces are numbered 0, 1, … within the image).
    """

    base: dict
    image: np.ndarray
    faces: list[Face]
    ids: list[int] | None = None


#: The status text of a face whose prediction is NaN or infinite.
NON_FINITE = "the model's prediction is not finite (NaN or inf); its weights may be corrupt"

#: The step from a batch of images with their faces to table rows.
RowsFor = Callable[[Sequence[FacesIn]], list[dict]]


def face_rows(items: Sequence[FacesIn], va: np.ndarray, features: np.ndarray | None) -> list[dict]:
    """Rows of ``items`` given the predictions of all their faces, in item then face order.

    ``va`` (N, 2) and ``features`` (N, d) or None hold one row per face of all items together;
    an item without faces gets one ``no_face`` row. A face whose prediction is not finite (NaN
    or inf) gets an ``error: …`` row with its box and empty valence/arousal.
    """
    rows: list[dict] = []
    n = 0
    for item in items:
        if not item.faces:
            rows.append({**item.base, "status": "no_face"})
            continue
        for j, face in enumerate(item.faces):
            x0, y0, x1, y1 = face.box
            row = {
                **item.base,
                "face": item.ids[j] if item.ids is not None else j,
                "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                "score": face.score,
            }
            if np.isfinite(va[n]).all():
                row.update(valence=float(va[n, 0]), arousal=float(va[n, 1]), status="ok")
                if features is not None:
                    row["features"] = features[n]
            else:
                row["status"] = f"error: {NON_FINITE}"
            rows.append(row)
            n += 1
    return rows


def error_row(base: dict, message: str) -> dict:
    """The row of an input that failed: ``status = "error: <message>"``."""
    return {**base, "status": f"error: {message}"}


def error_message(err: Exception) -> str:
    """The text of an exception for an ``error: …`` row (its type when it has none)."""
    return str(err).strip() or type(err).__name__
