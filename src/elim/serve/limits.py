"""What one ``elim serve`` process accepts: sizes, counts, time and queue."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from elim.errors import ElimError


@dataclass(frozen=True)
class Limits:
    """The limits of a server (``elim serve`` flags of the same names).

    Parameters
    ----------
    max_upload_mb
        Largest request body in MB (10⁶ bytes); a larger one is answered 413 before it is read.
    max_pixels
        Largest image (width × height, read from the header before decoding) and largest video
        frame; beyond it 413 (the decompression-bomb guard).
    max_files
        Most files in one multipart request.
    max_video_frames
        Most processed frames of one uploaded video (the rest is not decoded); ``every`` in
        the request spreads them over a longer video.
    timeout_s
        Time limit of one request (reading it, waiting in the queue, predicting); beyond it 504.
    queue
        Requests that may wait for a busy worker; beyond ``workers + queue`` requests in
        progress, 503 with ``Retry-After``.
    retry_after_s
        The ``Retry-After`` of a 503.
    """

    max_upload_mb: float = 25.0
    max_pixels: int = 25_000_000
    max_files: int = 16
    max_video_frames: int = 300
    timeout_s: float = 60.0
    queue: int = 16
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_pixels", "max_files", "max_video_frames", "timeout_s"):
            if not getattr(self, name) > 0:
                raise ElimError(f"serve limit {name} must be > 0, got {getattr(self, name)}")
        for name in ("queue", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ElimError(f"serve limit {name} must be >= 0, got {getattr(self, name)}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def as_dict(self) -> dict:
        return asdict(self)
