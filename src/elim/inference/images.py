"""The image loop: photos, arrays and PIL images → rows, in chunks of ``batch_size`` inputs.

Each chunk is loaded (a failing input becomes an ``error: …`` row), detected in one batch
(image by image when the batch fails, so one bad input stays alone) and handed with its faces
to the predictor's :data:`~elim.inference.rows.RowsFor` step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from elim.detection import Detector, Face
from elim.errors import DataError, ElimError
from elim.inference.rows import FacesIn, RowsFor, error_message, error_row
from elim.inference.stream import batched

ImageInput = str | Path | np.ndarray | Any  # Any: PIL.Image.Image


def iter_image_rows(
    images: ImageInput | Iterable[ImageInput],
    detector: Detector,
    rows_for: RowsFor,
    batch_size: int = 64,
) -> Iterator[list[dict]]:
    """Yield the rows of each chunk of ``batch_size`` inputs, sorted by input then face.

    Every row carries ``_position``, the 0-based position of its input.
    """
    for chunk in batched(enumerate(as_inputs(images)), batch_size):
        loaded, rows = [], []
        for position, item in chunk:
            base = {"source": input_name(item, position), "_position": position}
            try:
                loaded.append((base, load_input(item, base["source"])))
            except (DataError, ValueError, OSError) as err:
                rows.append(error_row(base, error_message(err)))
        found = detect_each(detector, [image for _, image in loaded])
        items = []
        for (base, image), faces in zip(loaded, found):
            if isinstance(faces, Exception):
                rows.append(error_row(base, f"detection failed ({faces})"))
            else:
                items.append(FacesIn(base, image, faces))
        rows += rows_for(items)
        rows.sort(key=lambda r: (r["_position"], r.get("face", -1)))
        yield rows


def as_inputs(images: ImageInput | Iterable[ImageInput]) -> list:
    """One input or several as a list; an N×H×W×3 array is N images."""
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


def input_name(item: Any, position: int) -> str:
    """The ``source`` of an input: its path, ``<image i>`` (PIL) or ``<array i>``."""
    if isinstance(item, (str, Path)):
        return str(item)
    return f"<{'image' if _is_pil(item) else 'array'} {position}>"


def load_input(item: Any, name: str) -> np.ndarray:
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


def detect_each(detector: Detector, images: list[np.ndarray]) -> list[list[Face] | Exception]:
    """Batched detection; when the batch fails, image by image so one bad input stays alone
    (its entry is the exception). ElimError when every image of the batch fails."""
    if not images:
        return []
    try:
        return list(detector.detect_batch(images))
    except (RuntimeError, ValueError) as batch_err:
        out: list[list[Face] | Exception] = []
        for image in images:
            try:
                out.append(detector.detect(image))
            except (RuntimeError, ValueError) as err:
                out.append(err)
        if all(isinstance(o, Exception) for o in out) and len(out) > 1:
            raise ElimError(f"face detection failed on every image: {batch_err}") from batch_err
        return out
