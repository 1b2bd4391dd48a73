"""Decoding images and video frames into H×W×3 uint8 RGB arrays.

Every failure is a :class:`~elim.errors.DataError` whose message names the file, so that the
cache builder can count it as a skipped record and the CLI can print it as one line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from elim.errors import DataError

#: Largest image (in pixels) decoded by default: 40 Mpx, about 120 MB as RGB uint8.
MAX_PIXELS = 40_000_000

#: File name suffixes read as still images (a folder walk keeps these; content sniffing aside).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
#: File name suffixes read as videos.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)


def is_video(path: str | Path) -> bool:
    """True when ``path`` has a video file extension."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


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
    from PIL import Image, UnidentifiedImageError

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


def _refuse_large(path: Path, pixels: int, shape: str, max_pixels: int | None) -> None:
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


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode the image at ``path`` into an H×W×3 uint8 RGB array.

    Grayscale and 16-bit images are converted to 8-bit RGB; alpha is dropped. Raises
    :class:`DataError` naming the file when it is missing, empty, not a decodable image, or
    larger than ``max_pixels`` (checked from the header before decoding; None = no limit).
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
    if bgr is None or bgr.size == 0:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    _refuse_large(path, bgr.shape[0] * bgr.shape[1], f"{bgr.shape[1]}×{bgr.shape[0]}", max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class VideoReader:
    """Sequential frame access to one video, kept open between calls.

    Decoding is sequential (``grab`` skips unwanted frames; seeking is avoided because it is
    inexact for many codecs). Successive :meth:`frames` calls with increasing frame numbers
    continue where the previous one stopped, so a long video whose frames are requested in
    several batches is still decoded once; an earlier frame reopens the video.
    """

    def __init__(self, path: str | Path, max_pixels: int | None = MAX_PIXELS):
        self.path = Path(path)
        self.max_pixels = max_pixels
        _check_file(self.path)
        self._cap = None
        self._open()

    def _open(self) -> None:
        self.close()
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise DataError(f"{self.path}: cannot open video (corrupt or unsupported codec)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            _refuse_large(self.path, width * height, f"{width}×{height}", self.max_pixels)
        except DataError:
            cap.release()
            raise
        self._cap = cap
        self._next = 0  # index of the frame the next grab() returns
        self._ended = False

    def frames(self, frames: Iterable[int]) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(frame, RGB image)`` for each requested 0-based frame, in increasing order;
        ``None`` for frames past the end of the video."""
        wanted = sorted({int(f) for f in frames})
        if wanted and wanted[0] < 0:
            raise DataError(f"{self.path}: negative frame index {wanted[0]}")
        if self._cap is None or (wanted and wanted[0] < self._next):
            self._open()
        cap = self._cap
        for frame in wanted:
            while not self._ended and self._next < frame:
                self._ended = not cap.grab()
                self._next += 1
            image = None
            if not self._ended:
                ok, bgr = cap.read()
                self._next += 1
                if ok and bgr is not None:
                    image = cv2.cvtColor(to_rgb3(bgr), cv2.COLOR_BGR2RGB)
                else:
                    self._ended = True
            yield frame, image

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
