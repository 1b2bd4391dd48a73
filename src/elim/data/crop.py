"""Square face crops: the one cropping rule shared by the cache builder and ``elim predict``.

Boxes are ``(x0, y0, x1, y1)`` in source pixel coordinates, where pixel ``i`` covers the
interval ``[i, i + 1)``; so a box of the whole W×H image is ``(0, 0, W, H)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from elim.config import DEFAULT_MARGIN
from elim.data.io import to_rgb3
from elim.deps import cv2

Box = tuple[float, float, float, float]

#: Shortest side (source pixels) of a face region worth learning from: smaller ones (a 1×1
#: image, a 3-pixel box) are blown up into blurs, so the cache skips them as ``too_small``.
MIN_FACE_PIXELS = 8


def square_box(box: Sequence[float], margin: float = 0.0) -> Box:
    """Square with the centre of ``box`` and side ``max(w, h) · (1 + margin)``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if not (w > 0 and h > 0):
        raise ValueError(f"box {tuple(box)} has no area (need x1 > x0 and y1 > y0)")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    side = max(w, h) * (1.0 + margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def box_from_landmarks(points: np.ndarray | Sequence[Sequence[float]]) -> Box:
    """Tight box around landmark points (N, 2) as (x, y); NaN points are ignored."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ValueError("no finite landmark points")
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    # a point covers one pixel: include the last row / column
    return (float(x0), float(y0), float(x1) + 1.0, float(y1) + 1.0)


def face_side(shape: Sequence[int], box: Sequence[float] | None) -> float:
    """Shorter side, in source pixels, of the part of an image a face crop is made from.

    Parameters
    ----------
    shape
        The image's shape (H, W, ...).
    box
        The face box ``(x0, y0, x1, y1)``, or None for the whole image.

    Returns
    -------
    float
        ``min(H, W)`` without a box, else the shorter side of the box clipped to the image
        (0 when it lies outside); compare with :data:`MIN_FACE_PIXELS`.
    """
    h, w = int(shape[0]), int(shape[1])
    if box is None:
        return float(min(h, w))
    x0, y0, x1, y1 = (float(v) for v in box)
    return max(0.0, min(min(x1, w) - max(x0, 0.0), min(y1, h) - max(y0, 0.0)))


def crop_square(shape: Sequence[int], box: Sequence[float] | None, margin: float
                ) -> tuple[int, int, int]:
    """The pixel square ``(x0, y0, side)`` that :func:`crop_face` cuts from an image of
    ``shape`` (H, W, ...): the margin-enlarged square of ``box`` rounded to whole pixels, or
    for ``box=None`` the centred square of side min(H, W)."""
    if box is None:
        h, w = int(shape[0]), int(shape[1])
        side = min(h, w)
        return (w - side) // 2, (h - side) // 2, side
    x0, y0, x1, y1 = square_box(box, margin)
    side = max(1, round(x1 - x0))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return math.floor(cx - side / 2 + 0.5), math.floor(cy - side / 2 + 0.5), side


def crop_face(
    image: np.ndarray,
    box: Sequence[float] | None,
    size: int,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Crop the face of ``image`` (H×W×3 uint8) into a ``size``×``size``×3 uint8 array.

    With a box: the square of :func:`square_box` (``margin`` enlarges its side), padded by
    replicating the edge pixels where it leaves the image. With ``box=None`` the whole image
    is the face: its centred square (side ``min(H, W)``, no margin). Shrinking uses area
    interpolation, enlarging bilinear.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    image = to_rgb3(np.asarray(image))
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("empty image")
    x0, y0, side = crop_square(image.shape, box, margin)
    x1, y1 = x0 + side, y0 + side
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 <= ix0 or iy1 <= iy0:
        raise ValueError(f"box {tuple(box)} lies outside the {w}×{h} image")
    patch = image[iy0:iy1, ix0:ix1]
    pads = (iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1)  # top, bottom, left, right
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (size, size), interpolation=interp)
    return np.ascontiguousarray(patch, dtype=np.uint8)
