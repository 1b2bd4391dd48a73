"""Decoding images and video frames into H×W×3 uint8 RGB arrays.

:func:`read_image` decodes still images; :class:`VideoReader` is the one video decoder (files
and webcams), used by the cache builder (chosen frames) and by inference (a stream of frames
with timestamps). Every failure is a :class:`~elim.errors.DataError` whose message names the
file, so that the cache builder can count it as a skipped record and the CLI can print it as
one line.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elim.deps import cv2
from elim.errors import DataError

#: Largest image (in pixels) decoded by default: 40 Mpx, about 120 MB as RGB uint8.
MAX_PIXELS = 40_000_000

#: File name suffixes read as still images (any case). Files with other names are images when
#: Pillow recognises their content (:func:`is_image_file`).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
#: File name suffixes read as videos.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)


def is_video(path: str | Path) -> bool:
    """True when ``path`` has a video file extension (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` is an image by its suffix (:data:`IMAGE_EXTENSIONS`, any case) or, for
    other names (no suffix, ``subject01.happy``), when Pillow recognises its header."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return False
    return _header_size(path) is not None


#: Largest webcam index (OpenCV takes a C int).
MAX_WEBCAM_INDEX = 2**31 - 1


def check_webcam_index(index: int) -> None:
    """DataError unless ``index`` is a webcam index, 0 … :data:`MAX_WEBCAM_INDEX`."""
    if not 0 <= index <= MAX_WEBCAM_INDEX:
        raise DataError(
            f"webcam {index}: not a webcam index; a webcam index is 0 or more (the camera's "
            f"number, at most {MAX_WEBCAM_INDEX})"
        )


class ImageTooLargeError(DataError):
    """The image has more pixels than the configured limit."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes); re-copy or remove it from the labels")


def _header_size(path: Path) -> tuple[int, str] | None:
    """(pixel count, "W×H") read from the file header without decoding, or None if unknown."""
    from elim.deps import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return int(im.width) * int(im.height), f"{im.width}×{im.height}"
    except Image.DecompressionBombError as err:
        # PIL refuses headers beyond twice its own limit before exposing the size; its message
        # holds the pixel count ("Image size (N pixels) exceeds limit ...").
        found = re.search(r"\((\d+) pixels\)", str(err))
        return (int(found.group(1)) if found else 1 << 40), "header"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _refuse_large(path: str | Path, pixels: int, shape: str, max_pixels: int | None) -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ImageTooLargeError(
            f"{path}: image too large ({shape}: {pixels / 1e6:.0f} Mpx > "
            f"{max_pixels / 1e6:.0f} Mpx); downscale it or raise max_pixels"
        )


def to_rgb3(image: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) / (H, W, 1) or RGBA → (H, W, 3); RGB passes through."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape {image.shape}")


def _pillow_rgb(data: np.ndarray) -> np.ndarray | None:
    """The first frame of an image OpenCV cannot decode (GIF), as RGB, with Pillow; or None."""
    import io

    from elim.deps import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data.tobytes())) as im:
                return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode the image at ``path`` into an H×W×3 uint8 RGB array.

    OpenCV decodes it; formats OpenCV cannot read (GIF: its first frame) are decoded with
    Pillow. Grayscale, palette and 16-bit images are converted to 8-bit RGB; alpha is dropped.
    Raises :class:`DataError` naming the file when it is missing, empty, not a decodable image,
    or larger than ``max_pixels`` (checked from the header before decoding; None = no limit).
    """
    path = Path(path)
    _check_file(path)
    size = _header_size(path)
    if size is not None:
        _refuse_large(path, *size, max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from err
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr is not None and bgr.size else _pillow_rgb(data)
    if rgb is None or rgb.size == 0:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    _refuse_large(path, rgb.shape[0] * rgb.shape[1], f"{rgb.shape[1]}×{rgb.shape[0]}", max_pixels)
    return np.ascontiguousarray(rgb)


#: Frame rate assumed where the source does not say (webcams aside: they get wall-clock time).
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class Frame:
    """One decoded frame: 0-based index in the source, time in seconds, H×W×3 uint8 RGB."""

    index: int
    timestamp: float
    image: np.ndarray


def source_name(source: str | Path | int) -> str:
    """How a video source is named in messages and tables: the path, or ``webcam:N``."""
    return f"webcam:{source}" if isinstance(source, int) else str(source)


class VideoReader:
    """The one video decoder: a video file or a webcam index, kept open between calls.

    Decoding is sequential (``grab`` skips unwanted frames; seeking is avoided because it is
    inexact for many codecs). :meth:`frames` gives chosen frames (the cache builder's access:
    successive calls with increasing frame numbers continue where the previous one stopped, so
    a long video whose frames are requested in several batches is still decoded once; an
    earlier frame reopens the source). :meth:`stream` gives every ``every``-th frame with its
    timestamp (inference's access). Raises :class:`DataError` naming the file (or ``webcam
    N``) when the source is missing, empty or cannot be opened, or when its frames have more
    than ``max_pixels`` pixels.
    """

    def __init__(self, source: str | Path | int, max_pixels: int | None = MAX_PIXELS):
        self.webcam = isinstance(source, int) and not isinstance(source, bool)
        if self.webcam:
            check_webcam_index(source)
        self.source: Path | int = source if self.webcam else Path(source)
        self.max_pixels = max_pixels
        if not self.webcam:
            _check_file(self.source)
        self._cap = None
        self._open()

    @property
    def name(self) -> str:
        """The path, or ``webcam:N``."""
        return source_name(self.source)

    @property
    def fps(self) -> float | None:
        """Frames per second reported by the container; None when unknown and for webcams."""
        if self.webcam or self._cap is None:
            return None
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return fps if math.isfinite(fps) and 0 < fps < 1000 else None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames as reported by the source."""
        return self._width, self._height

    def _open(self) -> None:
        self.close()
        try:
            cap = cv2.VideoCapture(self.source if self.webcam else str(self.source))
        except (cv2.error, OverflowError, SystemError, TypeError) as err:
            what = f"webcam {self.source}" if self.webcam else str(self.source)
            raise DataError(f"{what}: OpenCV cannot open it ({type(err).__name__})") from err
        if not cap.isOpened():
            cap.release()
            if self.webcam:
                raise DataError(
                    f"webcam {self.source}: cannot open it (no camera with that index, or busy)"
                )
            raise DataError(f"{self.source}: cannot open video (corrupt file or unsupported codec)")
        self._width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self._height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            _refuse_large(self.name, self._width * self._height,
                          f"{self._width}×{self._height}", self.max_pixels)
        except DataError:
            cap.release()
            raise
        self._cap = cap
        self._next = 0  # index of the frame the next grab() returns
        self._ended = False

    def _decode(self, frame: int) -> np.ndarray | None:
        """Frame ``frame`` (not before the current position) as RGB; None past the end."""
        cap = self._cap
        while not self._ended and self._next < frame:
            self._ended = not cap.grab()
            self._next += 1
        if self._ended:
            return None
        ok, bgr = cap.read()
        self._next += 1
        if not ok or bgr is None:
            self._ended = True
            return None
        return cv2.cvtColor(to_rgb3(bgr), cv2.COLOR_BGR2RGB)

    def frames(self, frames: Iterable[int]) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(frame, RGB image)`` for each requested 0-based frame, in increasing order;
        ``None`` for frames past the end of the video."""
        wanted = sorted({int(f) for f in frames})
        if wanted and wanted[0] < 0:
            raise DataError(f"{self.name}: negative frame index {wanted[0]}")
        if self._cap is None or (wanted and wanted[0] < self._next):
            self._open()
        for frame in wanted:
            yield frame, self._decode(frame)

    def stream(self, every: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
        """Yield frames 0, ``every``, 2·``every``, … (at most ``max_frames``) until the end.

        Skipped frames are only grabbed, not decoded. Timestamps are index / fps for files
        (:data:`DEFAULT_FPS` when the container does not say) and wall-clock seconds since the
        start of the stream for webcams.
        """
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if self._cap is None or self._next:
            self._open()
        fps = self.fps or DEFAULT_FPS
        start = time.monotonic()
        index, produced = 0, 0
        while max_frames is None or produced < max_frames:
            image = self._decode(index)
            if image is None:
                return
            stamp = time.monotonic() - start if self.webcam else index / fps
            yield Frame(index, stamp, image)
            index += every
            produced += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def read_video_frames(
    path: str | Path,
    frames: Iterable[int],
    max_pixels: int | None = MAX_PIXELS,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(frame, image)`` for each requested 0-based frame index, in increasing order,
    from one sequential decode of the video (``None`` past its end). Raises
    :class:`DataError` when the file is missing or cannot be opened."""
    reader = VideoReader(path, max_pixels)
    try:
        yield from reader.frames(frames)
    finally:
        reader.close()


def stream_video(
    source: str | Path | int,
    every: int = 1,
    max_frames: int | None = None,
    max_pixels: int | None = MAX_PIXELS,
) -> Iterator[Frame]:
    """Yield every ``every``-th :class:`Frame` of a video file or webcam (see
    :meth:`VideoReader.stream`); the source is opened at the first frame asked for and closed
    when the iteration ends. Raises :class:`DataError` naming the source when it cannot be
    opened."""
    reader = VideoReader(source, max_pixels)
    try:
        yield from reader.stream(every, max_frames)
    finally:
        reader.close()
