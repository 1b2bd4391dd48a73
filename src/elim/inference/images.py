"""The image loop: photos, arrays and PIL images → rows, in chunks of ``batch_size`` inputs.

Inputs are decoded in a background thread while the previous ones are detected and predicted
(:class:`elim.inference.stages.Prefetch`). Each chunk is loaded (a failing input becomes an
``error: …`` row), detected in one batch
(image by image when the batch fails, so one bad input stays alone as an ``error: …`` row and
the others go on) and handed with its faces to the predictor's
:data:`~elim.inference.rows.RowsFor` step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from elim.detection import Detector, Face
from elim.errors import DataError
from elim.inference.rows import FacesIn, RowsFor, error_message, error_row
from elim.inference.stages import Prefetch
from elim.inference.stream import batched

ImageInput = str | Path | np.ndarray | Any  # Any: PIL.Image.Image

logger = logging.getLogger("elim.inference")

#: Inputs decoded ahead of detection (each a full-size image in memory).
LOAD_AHEAD = 4


def iter_image_rows(
    images: ImageInput | Iterable[ImageInput],
    detector: Detector,
    rows_for: RowsFor,
    batch_size: int = 64,
) -> Iterator[list[dict]]:
    """Yield the rows of each chunk of ``batch_size`` inputs, sorted by input then face.

    Every row carries ``_position``, the 0-based position of its input. Inputs are decoded in a
    background thread, :data:`LOAD_AHEAD` ahead of detection and the model.
    """
    loaded = Prefetch(_load(as_inputs(images)), LOAD_AHEAD, name="load")
    try:
        for chunk in batched(loaded, batch_size):
            rows = [error_row(base, image) for base, image in chunk if isinstance(image, str)]
            good = [(base, image) for base, image in chunk if not isinstance(image, str)]
            found = detect_each(detector, [image for _, image in good])
            items = []
            for (base, image), faces in zip(good, found):
                if isinstance(faces, str):
                    rows.append(error_row(base, faces))
                else:
                    items.append(FacesIn(base, image, faces))
            rows += rows_for(items)
            rows.sort(key=lambda r: (r["_position"], r.get("face", -1)))
            yield rows
    finally:
        loaded.close()


def _load(inputs: list) -> Iterator[tuple[dict, np.ndarray | str]]:
    """(row template, RGB image or the reason it could not be loaded) per input."""
    for position, item in enumerate(inputs):
        base = {"source": input_name(item, position), "_position": position}
        try:
            yield base, load_input(item, base["source"])
        except (DataError, ValueError, OSError) as err:
            yield base, error_message(err)


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
        from elim.deps import Image
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


def detect_each(detector: Detector, images: list[np.ndarray]) -> list[list[Face] | str]:
    """Batched detection; when the batch fails, image by image so that one bad input stays
    alone: its entry is then the reason (a string) for its ``error: …`` row. The detector's
    internal messages are logged (logger ``elim.inference``), not shown."""
    if not images:
        return []
    try:
        return list(detector.detect_batch(images))
    except (RuntimeError, ValueError):
        out: list[list[Face] | str] = []
        for image in images:
            try:
                out.append(detector.detect(image))
            except (RuntimeError, ValueError) as err:
                out.append(_reason(detector, err))
        return out


def _reason(detector: Detector, err: Exception) -> str:
    """What an ``error: …`` row says about a failed detection: our own ValueErrors (a bad
    image) as they are; anything else only by its type, its message going to the log."""
    if isinstance(err, ValueError):
        return f"detection failed ({error_message(err)})"
    logger.warning("face detection failed inside %s: %s", getattr(detector, "name", detector), err)
    return f"face detection failed ({type(err).__name__} inside the {getattr(detector, 'name', '')} detector)"
