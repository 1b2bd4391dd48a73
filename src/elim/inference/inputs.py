"""What ``elim predict INPUT…`` means: image files, folders of them, video files, webcams.

In a folder, a file is a video by its suffix (:data:`elim.data.io.VIDEO_EXTENSIONS`, any case)
and an image by its suffix or, whatever its name, by its content
(:func:`elim.data.io.is_image_file`: e.g. GIF data named ``subject01.happy``). Symbolic links
to files are followed wherever they point (the folder was named by the user, as a CSV dataset's
links inside its root are trusted); a link that points nowhere is an ``error`` input. With
``--recursive`` subfolders are walked, but linked folders are not entered (no cycles, no walk
out of the tree).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elim.data.io import check_webcam_index, is_image_file, is_video, source_name
from elim.errors import DataError


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


def _entries(path: Path, recursive: bool) -> list[Path]:
    """Every non-directory entry of ``path`` (of its subfolders too with ``recursive``, linked
    folders not entered), sorted."""
    if not recursive:
        return sorted(p for p in path.iterdir() if not p.is_dir())
    found = []
    for folder, _, files in os.walk(path, followlinks=False):  # dangling links are in files
        found += [Path(folder) / f for f in files]
    return sorted(found)


def _folder(path: Path, recursive: bool) -> list[Input]:
    found = []
    for p in _entries(path, recursive):
        if not p.exists():
            found.append(Input("error", str(p), f"{p}: broken symbolic link (its target is missing)"))
        elif is_video(p):
            found.append(Input("video", str(p)))
        elif p.is_file() and is_image_file(p):
            found.append(Input("image", str(p)))
    if found:
        return found
    hint = ""
    if not recursive and any(p.is_dir() for p in path.iterdir()):
        hint = " (it has subfolders: add --recursive)"
    return [Input("error", str(path), f"{path}: folder has no images or videos{hint}")]


def _webcam(index: int) -> Input:
    try:
        check_webcam_index(index)
    except DataError as err:
        return Input("error", source_name(index), str(err))
    return Input("webcam", index)


def collect_inputs(inputs: Sequence[str | Path | int], recursive: bool = False) -> list[Input]:
    """Expand command-line inputs in order. A bare integer that is not an existing path is a
    webcam index (out of range: an ``error`` input); a folder contributes its images and videos
    (see the module; sorted; subfolders with ``recursive``); a file is a video by its
    extension, an image otherwise. Missing paths and empty folders become ``error`` inputs, so
    that the other inputs are still processed."""
    out: list[Input] = []
    for item in inputs:
        if isinstance(item, int):
            out.append(_webcam(item))
            continue
        path = Path(item)
        if not path.exists() and str(item).isdigit():
            out.append(_webcam(int(item)))
        elif path.is_dir():
            out.extend(_folder(path, recursive))
        elif not path.exists():
            out.append(Input("error", str(path), f"{path}: file not found"))
        else:
            out.append(Input("video" if is_video(path) else "image", str(path)))
    return out
