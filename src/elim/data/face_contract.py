"""The face contract: what a training face looked like, and the one rule that cuts such a face
out of any image.

A run records its contract (``config.json["preprocess"]["face"]``) and ``elim predict`` replays
it, so that a face found in a photo reaches the model framed, coloured and sized as the
training faces were. Its parts:

- ``image_size``: the side of the square crop.
- ``colour``: ``"gray"`` when (nearly) every training face is grey — its three channels equal,
  as decoded from a greyscale source (:func:`face_colour`) — else ``"rgb"``. Gray contracts
  convert every crop to grey and repeat it on the three channels.
- geometry, ``mode``:

  ``"box"``       training faces were cut from boxes (given by the dataset or found by the
                  detector when the cache was built): the square around the box centre with
                  side max(w, h)·(1 + ``margin``) (:func:`elim.data.crop.crop_face`); predict
                  cuts the same square around the detector's box.
  ``"template"``  training images were used whole (datasets that come as face crops: CK+48,
                  Aff-Wild2 ``cropped_aligned``, CSVs without boxes). Where the face sits in
                  those crops is *measured*: every sampled training crop goes through the
                  detector's view (:func:`view_crop`) and the medians of the crop-relative box
                  and five landmarks are the :class:`FaceTemplate`. Predict cuts a first
                  window that puts the detected box where the template box is (scale and
                  translation), looks at that crop through the same view, and cuts the
                  final window: the scale and translation (no rotation, least squares) that
                  put the eyes and the nose tip seen there onto the template's
                  (:data:`STABLE_LANDMARKS`: an expression moves them least) —
                  :meth:`FaceContract.cut`. Measuring and placing through the same view makes
                  the detector's bias on small, tight, blurred crops the same on both sides.

- ``align`` (optional, ``data.align``): every face is warped by the similarity transform
  (rotation, scale, translation; least squares, :func:`similarity`) that maps its five
  landmarks, as seen in its unaligned crop, onto the template landmarks — in the cache for
  training faces (:func:`align_crop`) and in :meth:`FaceContract.cut` for predict, through the
  same function.

The view of a crop (:func:`view_crop`): the crop resized to :data:`VIEW_SIZE` px, framed by a
grey border of :data:`VIEW_PAD` of that side (a face touching the crop's edges is still found
whole), run through the default detector (``elim.detection.DEFAULT_DETECTOR``, recorded as
``elim.detection.DETECTOR_NAME``); box and landmarks are returned in crop-relative coordinates
(0..1 across the crop; pixel i covers [i/S, (i + 1)/S)).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from elim.data.crop import crop_face, crop_square, square_box
from elim.deps import cv2
from elim.errors import CheckpointError, DataError, ElimError

__all__ = [
    "CONTRACT_SAMPLE",
    "MIN_FOUND",
    "STABLE_LANDMARKS",
    "VIEW_INFO",
    "VIEW_PAD",
    "VIEW_SIZE",
    "Aligner",
    "Colour",
    "CropViewer",
    "FaceContract",
    "FaceTemplate",
    "Mode",
    "View",
    "align_crop",
    "align_matrix",
    "align_template",
    "contract_of_cache",
    "face_colour",
    "measure_template",
    "sample_rows",
    "scale_shift",
    "similarity",
    "to_gray",
    "view_crop",
    "warp_face",
    "window_from_box",
]

#: Colour of the training faces.
Colour = Literal["rgb", "gray"]
#: How a face box becomes the crop window (see the module docstring).
Mode = Literal["box", "template"]

#: Side (px) a crop is resized to before the detector looks at it.
VIEW_SIZE = 160
#: Grey border around the resized crop, as a fraction of :data:`VIEW_SIZE` on each side.
VIEW_PAD = 0.25
#: Grey level of that border.
VIEW_FILL = 128
#: The view as recorded in a contract's / an aligned cache's ``measured`` / ``align`` entry.
VIEW_INFO = {"size": VIEW_SIZE, "pad": VIEW_PAD}
#: Training crops measured for a contract (evenly spaced over the training rows).
CONTRACT_SAMPLE = 100
#: Least fraction of sampled crops in which the detector must find a face for a template.
MIN_FOUND = 0.5
#: A face is grey when its channels differ by at most this much on average (0..255 levels).
GRAY_SPREAD = 1.0
#: Fraction of sampled faces that must be grey for the contract's colour to be ``"gray"``.
GRAY_FRACTION = 0.95
#: Decimals of template coordinates (crop-relative: 1e-5 of the crop's side).
TEMPLATE_DIGITS = 5
#: Least fraction of training rows with a box for the geometry to be ``"box"``.
BOXED_FRACTION = 0.5
#: The landmarks (``elim.detection.LANDMARK_NAMES`` positions) that place a face in the
#: ``"template"`` geometry: the eyes and the nose tip, which an expression moves least (the
#: mouth corners move with it, so a smile would be framed unlike a neutral face).
STABLE_LANDMARKS = (0, 1, 2)


# --------------------------------------------------------------------------- the view of a crop
@dataclass(frozen=True)
class View:
    """A face as the detector sees it in a crop: ``box`` (x0, y0, x1, y1) and ``landmarks``
    (5, 2) (or None) in crop-relative coordinates."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None = field(default=None, compare=False)


def view_crop(crop: np.ndarray, detector: Any) -> View | None:
    """The largest face ``detector`` finds in ``crop`` (S×S×3 uint8) as seen at
    :data:`VIEW_SIZE` px inside a :data:`VIEW_PAD` grey border, in crop-relative coordinates;
    None when it finds none."""
    side = int(crop.shape[0])
    interp = cv2.INTER_AREA if side > VIEW_SIZE else cv2.INTER_LINEAR
    big = cv2.resize(np.ascontiguousarray(crop), (VIEW_SIZE, VIEW_SIZE), interpolation=interp)
    pad = round(VIEW_SIZE * VIEW_PAD)
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(VIEW_FILL,) * 3)
    from elim.detection.registry import detect_largest

    face = detect_largest(big, detector)
    if face is None:
        return None
    box = tuple(float((v - pad) / VIEW_SIZE) for v in face.box)
    marks = None if face.landmarks is None else (np.asarray(face.landmarks) - pad) / VIEW_SIZE
    return View(box, marks)  # type: ignore[arg-type]


class CropViewer:
    """:func:`view_crop` with the default detector (``elim.detection.DEFAULT_DETECTOR``),
    loaded on first use and serialised across threads (pickled, a fresh viewer); ``available``
    is False when ``elim.detection`` cannot be imported."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._detector: Any = None
        self._loaded = False

    def __getstate__(self) -> dict:
        return {}  # pickles as a fresh viewer: the detector is loaded again on first use

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    @property
    def available(self) -> bool:
        with self._lock:
            self._load()
            return self._detector is not None

    def _load(self) -> None:
        if not self._loaded:
            try:
                from elim.detection import DEFAULT_DETECTOR, get_detector

                self._detector = get_detector(DEFAULT_DETECTOR)
            except ImportError:
                self._detector = None
            self._loaded = True

    def __call__(self, crop: np.ndarray) -> View | None:
        with self._lock:
            self._load()
            if self._detector is None:
                return None
            return view_crop(crop, self._detector)


def detector_name() -> str | None:
    """``elim.detection.DETECTOR_NAME`` (None without ``elim.detection``)."""
    try:
        from elim.detection import DETECTOR_NAME
    except ImportError:
        return None
    return DETECTOR_NAME


# --------------------------------------------------------------------------- template
@dataclass(frozen=True)
class FaceTemplate:
    """Where the detector's box and the five landmarks (``elim.detection.LANDMARK_NAMES``) sit
    in a training crop, crop-relative (medians over the measured crops)."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        # rounded once, here: a template equals its JSON form (the cache aligns with the
        # numbers predict reads back from config.json)
        box = tuple(round(float(v), TEMPLATE_DIGITS) for v in self.box)
        marks = tuple((round(float(x), TEMPLATE_DIGITS), round(float(y), TEMPLATE_DIGITS))
                      for x, y in self.landmarks)
        if len(box) != 4 or not box[2] > box[0] or not box[3] > box[1] or len(marks) != 5:
            raise ValueError(f"a template needs a box with area and 5 landmarks, got {self}")
        if not all(math.isfinite(v) for v in (*box, *np.ravel(marks))):
            raise ValueError("template coordinates must be finite")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "landmarks", marks)

    def points(self, size: float = 1.0) -> np.ndarray:
        """(5, 2) landmarks scaled to a crop of ``size`` px."""
        return np.asarray(self.landmarks, dtype=np.float64) * size

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "landmarks": [list(p) for p in self.landmarks]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FaceTemplate:
        return cls(tuple(values["box"]), tuple(tuple(p) for p in values["landmarks"]))


def measure_template(views: Sequence[View | None]) -> tuple[FaceTemplate | None, float]:
    """Median box and landmarks of the faces found in ``views`` (one per measured crop).

    Returns
    -------
    (FaceTemplate | None, float)
        The template (None when no view has a face with landmarks) and the fraction of views
        with one.
    """
    found = [v for v in views if v is not None and v.landmarks is not None]
    fraction = len(found) / len(views) if len(views) else 0.0
    if not found:
        return None, fraction
    box = np.median(np.array([v.box for v in found], dtype=np.float64), axis=0)
    marks = np.median(np.stack([v.landmarks for v in found]).astype(np.float64), axis=0)
    return FaceTemplate(tuple(box), tuple(map(tuple, marks))), fraction


# --------------------------------------------------------------------------- geometry
def window_from_box(box: Sequence[float], template_box: Sequence[float]
                    ) -> tuple[float, float, float, float]:
    """The square window (source pixels) in which ``box`` sits where ``template_box`` sits in a
    training crop: side = mean of the width and height ratios, centres matched."""
    x0, y0, x1, y1 = (float(v) for v in box)
    tx0, ty0, tx1, ty1 = (float(v) for v in template_box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {tuple(box)} has no area (need x1 > x0 and y1 > y0)")
    side = ((x1 - x0) / (tx1 - tx0) + (y1 - y0) / (ty1 - ty0)) / 2.0
    cx = (x0 + x1) / 2.0 - ((tx0 + tx1) / 2.0 - 0.5) * side
    cy = (y0 + y1) / 2.0 - ((ty0 + ty1) / 2.0 - 0.5) * side
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix of the similarity transform (rotation, uniform scale, translation; no
    reflection) mapping points ``src`` (N, 2) onto ``dst`` (N, 2) in the least-squares sense
    (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    var = (xs**2).sum() / len(src)
    if not var > 0:
        raise ValueError("landmarks coincide: no similarity transform")
    u, s, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.diag([1.0, 1.0 if np.linalg.det(u @ vt) >= 0 else -1.0])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d)) / var
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def scale_shift(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix of the uniform scale and translation (no rotation) mapping points ``src``
    (N, 2) onto ``dst`` (N, 2) in the least-squares sense."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    xs, xd = src - src.mean(axis=0), dst - dst.mean(axis=0)
    var = (xs**2).sum()
    if not var > 0:
        raise ValueError("landmarks coincide: no scale")
    k = float((xs * xd).sum() / var)
    shift = dst.mean(axis=0) - k * src.mean(axis=0)
    return np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]])


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2×3 affine ``a ∘ b`` (``b`` first)."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``size``×``size``×3 uint8 image of ``image`` under ``matrix`` (2×3, continuous source
    pixels → continuous output pixels), edge pixels replicated outside the image.

    When the transform shrinks (scale < 1), the part of ``image`` it maps from is first shrunk
    to about the output's resolution with area interpolation (as :func:`crop_face` shrinks),
    then warped bilinearly.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 1.0:
        inv = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
        pre = corners @ inv.T
        lo, hi = pre.min(axis=0), pre.max(axis=0)
        context = float(max(1, round(1.0 / scale)))  # one output pixel on each side
        side = float(max(hi - lo)) + 2 * context
        region = (lo[0] - context, lo[1] - context, lo[0] - context + side,
                  lo[1] - context + side)
        x0, y0, pside = crop_square(image.shape, region, 0.0)
        n = max(1, math.ceil(pside * scale))
        image = crop_face(image, region, n, 0.0)
        to_region = np.array([[n / pside, 0, -x0 * n / pside], [0, n / pside, -y0 * n / pside]])
        matrix = _compose(matrix, cv2.invertAffineTransform(to_region))
    # continuous coordinates (pixel i covers [i, i + 1)) → OpenCV's pixel-centre indices
    lin, off = matrix[:, :2], matrix[:, 2]
    cv_matrix = np.hstack([lin, (off + lin @ [0.5, 0.5] - 0.5)[:, None]])
    out = cv2.warpAffine(np.ascontiguousarray(image), cv_matrix, (size, size),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)


def align_matrix(square: tuple[int, int, int], seen: View, template: FaceTemplate, size: int
                 ) -> np.ndarray | None:
    """The alignment of a face: the least-squares similarity (:func:`similarity`) mapping the
    five landmarks ``seen`` in the crop of the pixel square ``square`` = (x0, y0, side) of an
    image onto ``template``'s, scaled to a ``size`` px crop; a 2×3 map from the image's pixels
    to the aligned crop's. None without landmarks."""
    if seen.landmarks is None:
        return None
    x0, y0, side = square
    points = seen.landmarks * side + np.array([x0, y0], dtype=np.float64)
    try:
        return similarity(points, template.points(size))
    except ValueError:
        return None


def align_crop(
    image: np.ndarray,
    square: tuple[int, int, int],
    crop: np.ndarray,
    template: FaceTemplate,
    viewer: Any,
) -> np.ndarray | None:
    """The aligned face of ``image``: the crop ``crop`` (S×S×3, cut from the pixel square
    ``square`` = (x0, y0, side) of ``image``) is looked at (``viewer``, :class:`CropViewer`)
    and ``image`` is warped (:func:`warp_face`) by :func:`align_matrix` into an S×S crop. None
    when no face with landmarks is seen. How the cache aligns training faces; predict aligns
    through the same :func:`align_matrix` in :meth:`FaceContract.place`.
    """
    seen = viewer(crop)
    if seen is None:
        return None
    size = int(crop.shape[0])
    matrix = align_matrix(square, seen, template, size)
    return None if matrix is None else warp_face(image, matrix, size)


@dataclass(frozen=True)
class Aligner:
    """Alignment of training faces in the cache: :func:`align_crop` onto ``template`` with
    ``viewer``."""

    template: FaceTemplate
    viewer: Any

    def __call__(self, image: np.ndarray, box: Sequence[float] | None, margin: float,
                 crop: np.ndarray) -> np.ndarray | None:
        """The aligned version of ``crop`` = ``crop_face(image, box, S, margin)`` (None: no
        face seen in it)."""
        return align_crop(image, crop_square(image.shape, box, margin), crop, self.template,
                          self.viewer)


def to_gray(crop: np.ndarray) -> np.ndarray:
    """Grey (ITU-R 601 luma) repeated on the three channels."""
    return np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


def face_colour(images: np.ndarray) -> tuple[Colour, float]:
    """``("gray", fraction)`` when at least :data:`GRAY_FRACTION` of ``images`` (N, S, S, 3)
    uint8 are grey (mean channel spread ≤ :data:`GRAY_SPREAD`), else ``("rgb", fraction)``;
    ``fraction`` = grey faces / N."""
    images = np.asarray(images)
    if len(images) == 0:
        return "rgb", 0.0
    x = images.astype(np.int16)
    spread = np.maximum(np.abs(x[..., 0] - x[..., 1]), np.abs(x[..., 1] - x[..., 2]))
    gray = spread.reshape(len(x), -1).mean(axis=1) <= GRAY_SPREAD
    fraction = float(gray.mean())
    return ("gray" if fraction >= GRAY_FRACTION else "rgb"), fraction


# --------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class FaceContract:
    """What a run's training faces looked like (see the module docstring).

    Parameters
    ----------
    image_size
        Side of the crop in pixels.
    margin
        ``mode="box"``: the square around the box has side max(w, h)·(1 + margin).
    colour
        ``"gray"`` or ``"rgb"``.
    mode
        ``"box"`` or ``"template"``.
    align
        Warp faces onto the template landmarks (needs ``template``).
    template
        The measured :class:`FaceTemplate` (``mode="template"`` and ``align`` need it).
    measured
        How the contract was measured (sample size, fractions found / grey / with a box, the
        detector, the view, and ``note`` when the geometry fell back to ``"box"``), or None.
    """

    image_size: int
    margin: float  # no default here: training's is elim.config.DEFAULT_MARGIN, given by the callers
    colour: Colour = "rgb"
    mode: Mode = "box"
    align: bool = False
    template: FaceTemplate | None = None
    measured: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", int(self.image_size))
        object.__setattr__(self, "margin", float(self.margin))
        if self.image_size < 1:
            raise ElimError(f"crop image_size must be >= 1, got {self.image_size}")
        if not self.margin >= 0:
            raise ElimError(f"crop margin must be >= 0, got {self.margin}")
        if self.colour not in get_args(Colour):
            raise ElimError(f"face colour must be one of {get_args(Colour)}, got {self.colour!r}")
        if self.mode not in get_args(Mode):
            raise ElimError(f"face mode must be one of {get_args(Mode)}, got {self.mode!r}")
        if (self.mode == "template" or self.align) and self.template is None:
            raise ElimError(f"face mode {self.mode!r} with align={self.align} needs a template")

    @property
    def grayscale(self) -> bool:
        return self.colour == "gray"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (``config.json["preprocess"]["face"]``)."""
        return {
            "image_size": self.image_size,
            "mode": self.mode,
            "margin": self.margin,
            "colour": self.colour,
            "align": self.align,
            "template": None if self.template is None else self.template.to_dict(),
            "measured": self.measured,
        }

    @classmethod
    def from_dict(cls, values: Any, where: Any = None) -> FaceContract:
        """Inverse of :meth:`to_dict`; a malformed section is a :class:`CheckpointError`
        naming ``where``."""
        try:
            template = values.get("template")
            return cls(
                int(values["image_size"]), float(values["margin"]),
                values.get("colour", "rgb"), values.get("mode", "box"),
                bool(values.get("align", False)),
                None if template is None else FaceTemplate.from_dict(template),
                values.get("measured"),
            )
        except (AttributeError, KeyError, TypeError, ValueError, ElimError) as err:
            raise CheckpointError(
                f"{where or 'config'}: config.json has a malformed preprocess.face section "
                f"({err}); re-train the run or give the crop explicitly (--margin)"
            ) from None

    def with_overrides(self, margin: float | None = None, grayscale: bool | None = None
                       ) -> FaceContract:
        """Explicit overrides: ``margin`` → the square of ``mode="box"`` with that margin
        (alignment off); ``grayscale`` → the colour."""
        out = self
        if margin is not None:
            out = replace(out, mode="box", margin=float(margin), align=False)
        if grayscale is not None:
            out = replace(out, colour="gray" if grayscale else "rgb")
        return out

    def _colour(self, crop: np.ndarray) -> np.ndarray:
        return to_gray(crop) if self.grayscale else crop

    def cut(self, image: np.ndarray, box: Sequence[float] | None,
            viewer: Any = None) -> np.ndarray:
        """The model's input crop (S, S, 3) uint8 of the face in ``box`` of ``image``.

        ``box=None``: the image is the face (its centred square, no margin). ``mode="box"``
        without alignment: :func:`crop_face` with ``margin``. Otherwise the crop of
        :meth:`place`: a square window cut by :func:`crop_face`, or with alignment the warp of
        :func:`warp_face`.
        """
        size = self.image_size
        if box is None:
            return self._colour(crop_face(image, None, size, 0.0))
        if self.mode == "box" and not self.align:
            return self._colour(crop_face(image, box, size, self.margin))
        matrix, warped = self._place(image, box, viewer)
        if warped:
            return self._colour(warp_face(image, matrix, size))
        return self._colour(crop_face(image, _window_of(matrix, size), size, 0.0))

    def place(self, image: np.ndarray, box: Sequence[float], viewer: Any = None
              ) -> np.ndarray:
        """The 2×3 map from ``image``'s pixels to the crop's pixels (continuous coordinates)
        of the face in ``box``, as :meth:`cut` uses it.

        ``mode="box"``: the margin square of the box; ``"template"``: :func:`window_from_box`
        of the template box. Unless the geometry is the plain box square, that first window is
        cut and looked at through ``viewer`` (:class:`CropViewer`): the face seen there gives
        the final placement — with ``align`` the similarity of :func:`align_matrix`, else the
        :func:`scale_shift` of the :data:`STABLE_LANDMARKS` seen onto the template's (the
        template window of the box seen when the viewer gives no landmarks). When the viewer
        sees no face (or there is none) the first window stays.
        """
        return self._place(image, box, viewer)[0]

    def _place(self, image: np.ndarray, box: Sequence[float], viewer: Any
               ) -> tuple[np.ndarray, bool]:
        size, shape = self.image_size, np.shape(image)
        if self.mode == "box":
            window = square_box(box, self.margin)
        else:
            assert self.template is not None
            window = window_from_box(box, self.template.box)
        square = crop_square(shape, window, 0.0)
        first = _square_matrix(square, size)
        if viewer is None or self.template is None:
            return first, False
        seen = viewer(self._colour(crop_face(image, window, size, 0.0)))
        if seen is None:
            return first, False
        if self.align:
            matrix = align_matrix(square, seen, self.template, size)
            return (first, False) if matrix is None else (matrix, True)
        x0, y0, side = square
        if seen.landmarks is None:
            seen_box = [seen.box[0] * side + x0, seen.box[1] * side + y0,
                        seen.box[2] * side + x0, seen.box[3] * side + y0]
            window = window_from_box(seen_box, self.template.box)
        else:
            points = seen.landmarks * side + np.array([x0, y0], dtype=np.float64)
            stable = list(STABLE_LANDMARKS)
            window = _window_of(scale_shift(points[stable],
                                            self.template.points(size)[stable]), size)
        return _square_matrix(crop_square(shape, window, 0.0), size), False


def _square_matrix(square: tuple[int, int, int], size: int) -> np.ndarray:
    """2×3 map of the pixel square (x0, y0, side) onto a ``size`` px crop."""
    x0, y0, side = square
    k = size / side
    return np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]])


def _window_of(matrix: np.ndarray, size: int) -> tuple[float, float, float, float]:
    """The source window (x0, y0, x1, y1) a rotation-free ``matrix`` maps onto the crop."""
    k = float(matrix[0, 0])
    x0, y0 = -matrix[0, 2] / k, -matrix[1, 2] / k
    return (x0, y0, x0 + size / k, y0 + size / k)


# --------------------------------------------------------------------------- measuring a cache
#: views of cache rows the default detector already looked at in this process, per images
#: array (id → row → view), so that the fits of a study measure each face once
_VIEWS: dict[int, dict[int, View | None]] = {}


def _memo(images: Any) -> dict[int, View | None]:
    key = id(images)
    if key not in _VIEWS:
        _VIEWS[key] = {}
        try:
            weakref.finalize(images, _VIEWS.pop, key, None)
        except TypeError:  # not weak-referenceable: no memo
            return _VIEWS.pop(key)
    return _VIEWS[key]


def sample_rows(indices: np.ndarray, n: int = CONTRACT_SAMPLE) -> np.ndarray:
    """At most ``n`` of ``indices``, evenly spaced over them in sorted order (deterministic)."""
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if len(indices) <= n:
        return indices
    return indices[np.linspace(0, len(indices) - 1, n).round().astype(np.int64)]


def contract_of_cache(cache: Any, indices: np.ndarray, margin: float, align: bool = False,
                      viewer: CropViewer | None = None) -> FaceContract:
    """Measure the face contract of the training rows ``indices`` of ``cache``
    (a :class:`elim.data.cache.FaceCache`).

    Colour from :data:`CONTRACT_SAMPLE` sampled faces (:func:`face_colour`). Geometry
    ``"box"`` (with ``margin``) when at least :data:`BOXED_FRACTION` of the sampled rows have
    a box; otherwise ``"template"``, measured on the sampled crops (:func:`view_crop`); when
    the detector finds a face in fewer than :data:`MIN_FOUND` of them (or is unavailable),
    ``"box"`` with margin 0 — the training images are tight crops — and ``measured["note"]``
    says why. ``align`` needs a cache built with alignment (``cache.meta["align"]``), whose
    template is used.
    """
    rows = sample_rows(indices)
    if len(rows) == 0:
        raise DataError("no training faces to measure the face contract on")
    faces = np.asarray(cache.images[rows])
    colour, gray = face_colour(faces)
    table = cache.table
    boxed = float(np.isfinite(table["x0"].to_numpy(np.float64)[rows]).mean()) \
        if "x0" in table.columns else 0.0
    measured: dict[str, Any] = {"sample": len(rows), "gray": round(gray, 4),
                                "boxed": round(boxed, 4)}
    size = int(cache.image_size)
    if align:
        info = cache.meta.get("align") if isinstance(cache.meta, dict) else None
        if not isinstance(info, dict) or "template" not in info:
            raise DataError(
                f"{cache.path or 'the face cache'}: data.align needs a cache built with "
                "alignment (a dataset read from files); train without data.align"
            )
        template = FaceTemplate.from_dict(info["template"])
        measured.update({k: info[k] for k in ("found", "aligned", "not_aligned", "detector",
                                              "view") if k in info})
        mode: Mode = "box" if boxed >= BOXED_FRACTION else "template"
        return FaceContract(size, margin if mode == "box" else 0.0, colour, mode, True,
                            template, measured)
    if boxed >= BOXED_FRACTION:
        return FaceContract(size, margin, colour, "box", False, None, measured)
    memo = _memo(cache.images) if viewer is None else {}  # views of the default detector
    viewer = viewer or CropViewer()
    measured.update({"detector": detector_name(), "view": dict(VIEW_INFO)})
    if not viewer.available:
        measured.update(found=0.0, note="no face detector: whole-image crops cut from the "
                                        "detector box without margin")
        return FaceContract(size, 0.0, colour, "box", False, None, measured)
    views = []
    for row, face in zip(rows.tolist(), faces):
        if row not in memo:
            memo[row] = viewer(face)
        views.append(memo[row])
    template, found = measure_template(views)
    measured["found"] = round(found, 4)
    if template is None or found < MIN_FOUND:
        measured["note"] = (f"the detector found a face in {found:.0%} of {len(rows)} sampled "
                            f"training crops (< {MIN_FOUND:.0%}): whole-image crops cut from the "
                            "detector box without margin")
        return FaceContract(size, 0.0, colour, "box", False, None, measured)
    return FaceContract(size, 0.0, colour, "template", False, template, measured)


def align_template(crops: np.ndarray, viewer: CropViewer) -> tuple[FaceTemplate, dict]:
    """The template that a cache built with alignment warps its faces onto: measured on
    ``crops`` (a sample of its unaligned crops). DataError when too few faces are found."""
    if not viewer.available:
        raise DataError("data.align needs the face detector (elim.detection); it is unavailable")
    template, found = measure_template([viewer(c) for c in crops])
    if template is None or found < MIN_FOUND:
        raise DataError(
            f"data.align: the detector found a face in {found:.0%} of {len(crops)} sampled "
            f"crops (needs {MIN_FOUND:.0%}); train without data.align"
        )
    return template, {"found": round(found, 4), "sample": len(crops),
                      "detector": detector_name(), "view": dict(VIEW_INFO)}
