"""Uploaded bytes: what they are (by content, never by file name), how big, and their pixels.

A client sends bytes and, at most, a file name that only labels its rows (``source``): nothing
a client sends is ever used as a file-system path. :func:`sniff` reads the first bytes
(magic numbers) to tell images from videos; :func:`check_image` reads the image header for its
size before anything is decoded (the decompression-bomb guard); :func:`decode_image` decodes it.
Every refusal is a :class:`RequestError` with the HTTP status it is answered with.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

#: Image containers recognised by their first bytes (what OpenCV decodes).
IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
#: File name suffixes of the video containers :func:`sniff` knows (for the temporary file).
VIDEO_SUFFIX = {"mp4": ".mp4", "avi": ".avi", "matroska": ".mkv"}
#: The name of an upload that came without one (raw bytes).
DEFAULT_NAME = "upload"


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx / 503 / 504) and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its label (``source`` of its rows), bytes and sniffed ``kind``
    (``image`` or ``video``) and ``container`` (jpeg, png, …, mp4, avi, matroska)."""

    name: str
    data: bytes
    kind: str
    container: str


def sniff(data: bytes) -> tuple[str, str] | None:
    """(kind, container) of ``data`` from its first bytes; None when neither image nor video."""
    for magic, container in IMAGE_MAGIC:
        if data.startswith(magic):
            return "image", container
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", "webp"
    if re.match(rb"P[1-6][ \t\r\n]", data[:3]):
        return "image", "pnm"
    if data[4:8] == b"ftyp":  # ISO base media: mp4, mov, m4v, 3gp
        return "video", "mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "video", "avi"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: mkv, webm
        return "video", "matroska"
    return None


def safe_name(filename: str | None) -> str:
    """A client's file name as a label: its last path component, printable, at most 120
    characters (``upload`` when nothing is left)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:120]
    return name or DEFAULT_NAME


def make_upload(data: bytes, filename: str | None) -> Upload:
    """An :class:`Upload` of ``data``; RequestError 400 (empty) or 415 (not an image or video)."""
    name = safe_name(filename)
    if not data:
        raise RequestError(400, f"{name}: empty upload; send an image or a video")
    found = sniff(data)
    if found is None:
        raise RequestError(
            415,
            f"{name}: not an image or video this server reads (JPEG, PNG, BMP, TIFF, WebP, PNM; "
            "MP4/MOV, AVI, MKV/WebM), judged by its content",
        )
    return Upload(name, data, *found)


def check_image(upload: Upload, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image header, before decoding; RequestError 413 beyond
    ``max_pixels`` (a decompression bomb included), 422 when the header is unreadable."""
    from elim.deps import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(upload.data)) as im:
                width, height = int(im.width), int(im.height)
    except Image.DecompressionBombError:
        raise RequestError(413, f"{upload.name}: image too large (decompression bomb refused)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise RequestError(422, f"{upload.name}: not a readable {upload.container} image") from None
    if width * height > max_pixels:
        raise RequestError(
            413,
            f"{upload.name}: image too large ({width}×{height} = {width * height / 1e6:.1f} Mpx > "
            f"{max_pixels / 1e6:.1f} Mpx); downscale it",
        )
    return width, height


def decode_image(upload: Upload, max_pixels: int) -> np.ndarray:
    """H×W×3 uint8 RGB of an image upload (checked by :func:`check_image` first);
    RequestError 413 / 422."""
    from elim.deps import cv2

    check_image(upload, max_pixels)
    bgr = cv2.imdecode(np.frombuffer(upload.data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise RequestError(422, f"{upload.name}: not a readable {upload.container} image (corrupt or truncated)")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:  # a header that lied
        raise RequestError(413, f"{upload.name}: image too large ({bgr.shape[1]}×{bgr.shape[0]})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
