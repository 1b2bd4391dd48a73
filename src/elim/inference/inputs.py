"""What ``elim predict INPUT…`` means: image files, folders of them, video files, webcams."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elim.data.io import IMAGE_EXTENSIONS, is_video, source_name


@dataclass(frozen=True)
class Input:
    """One thing to predict on. ``kind``: image, video, webcam, or error (``message`` says why)."""

    kind: str
    source: str | int
    message: str = ""

    @property
    def name(self) -> str:
        """The path, or ``webcam:N``."""
        return source_name(self.source) if self.kind == "webcam" else str(self.source)


def _folder(path: Path, recursive: bool) -> list[Input]:
    files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
    found = [
        Input("video" if is_video(p) else "image", str(p))
        for p in files
        if is_video(p) or p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if found:
        return found
    hint = ""
    if not recursive and any(p.is_dir() for p in path.iterdir()):
        hint = " (it has subfolders: add --recursive)"
    return [Input("error", str(path), f"{path}: folder has no images or videos{hint}")]


def collect_inputs(inputs: Sequence[str | Path | int], recursive: bool = False) -> list[Input]:
    """Expand command-line inputs in order. A bare integer that is not an existing path is a
    webcam index; a folder contributes its images and videos (sorted; subfolders with
    ``recursive``); a file is a video by its extension, an image otherwise. Missing paths and
    empty folders become ``error`` inputs, so that the other inputs are still processed."""
    out: list[Input] = []
    for item in inputs:
        if isinstance(item, int):
            out.append(Input("webcam", item))
            continue
        path = Path(item)
        if not path.exists() and str(item).isdigit():
            out.append(Input("webcam", int(item)))
        elif path.is_dir():
            out.extend(_folder(path, recursive))
        elif not path.exists():
            out.append(Input("error", str(path), f"{path}: file not found"))
        else:
            out.append(Input("video" if is_video(path) else "image", str(path)))
    return out
