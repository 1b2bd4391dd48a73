"""Aff-Wild2 reader (Kollias & Zafeiriou, 2019), valence-arousal track of the ABAW challenges.

Expected layout::

    ROOT/cropped_aligned/<video>/00001.jpg, 00002.jpg, ...   organisers' aligned faces,
                                                             1-indexed, zero-padded to 5
    ROOT/**/VA_Estimation_Challenge/Train_Set/<video>.txt    (anywhere under ROOT: releases
    ROOT/**/VA_Estimation_Challenge/Validation_Set/<video>.txt  nest it differently; the
                                                             older name ``VA_Set`` works too)

Each annotation file starts with the header ``valence,arousal`` and then holds one ``v,a``
line per video frame: line k after the header belongs to frame k (1-indexed), values in
[-1, 1], and ``-5`` marks a frame to ignore. Videos with two people come as
``<video>_left`` / ``<video>_right`` files, each its own identity, with images in
``cropped_aligned/<video>_left`` etc. ``Train_Set`` becomes split ``train``,
``Validation_Set`` split ``val`` (the paper reports the validation set, Table 3) and a
labelled ``Test_Set`` split ``test``. Image folders of videos added in later releases may sit
in further ``cropped_aligned*`` folders; all of them are used. The faces are already cropped
and aligned, so the records carry no box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from elim.data.records import ReadResult, SkipReport
from elim.datasets import register_dataset
from elim.datasets.files import (
    as_root,
    check_frame_step,
    find_dirs,
    frame_records,
    frames_by_number,
    read_numeric_lines,
)
from elim.errors import DataError

ANNOTATION_DIR_NAMES = ("va_estimation_challenge", "va_set")
SPLIT_DIRS = {"train_set": "train", "validation_set": "val", "test_set": "test"}
IMAGES_DIR_NAME = "cropped_aligned"
IGNORE_VALUE = -5.0

LAYOUT_HINT = (
    "expected ROOT/cropped_aligned/<video>/00001.jpg ... and a folder "
    "VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt somewhere under ROOT "
    "(unpack the images and the annotation archive into ROOT, or pass images_dir / "
    "annotations_dir)"
)


def find_annotation_root(root: Path) -> Path:
    """The unique ``VA_Estimation_Challenge`` (or ``VA_Set``) folder under ``root``."""
    found = find_dirs(
        root,
        lambda p: p.name.casefold() in ANNOTATION_DIR_NAMES,
        max_depth=5,
        prune=lambda p: p.name.casefold() == IMAGES_DIR_NAME,
    )
    if not found:
        raise DataError(f"aff-wild2: no VA_Estimation_Challenge folder under {str(root)!r}; "
                        f"{LAYOUT_HINT}")
    if len(found) > 1:
        listed = ", ".join(str(p) for p in found[:4])
        raise DataError(f"aff-wild2: several annotation folders under {str(root)!r} ({listed}); "
                        "pass annotations_dir to choose one")
    return found[0]


def find_split_dirs(annotations: Path) -> dict[str, Path]:
    """``{"train": .../Train_Set, "val": .../Validation_Set, ...}`` below ``annotations``."""
    found = find_dirs(annotations, lambda p: p.name.casefold() in SPLIT_DIRS, max_depth=3,
                      prune=lambda p: False)
    splits: dict[str, Path] = {}
    for folder in found:
        split = SPLIT_DIRS[folder.name.casefold()]
        if split in splits:
            raise DataError(f"aff-wild2: two {folder.name} folders ({splits[split]}, {folder}); "
                            "pass annotations_dir pointing at the right one")
        splits[split] = folder
    if not splits:
        raise DataError(f"aff-wild2: no Train_Set/Validation_Set folder in {str(annotations)!r}; "
                        f"{LAYOUT_HINT}")
    return splits


def find_image_folders(root: Path) -> dict[str, Path]:
    """Video name -> its image folder, over every ``cropped_aligned*`` folder under ``root``.

    Releases may split the images over several such folders (e.g. the videos added in later
    challenges); a doubled ``cropped_aligned/cropped_aligned`` level is descended.
    """
    roots = find_dirs(root, lambda p: p.name.casefold().startswith(IMAGES_DIR_NAME),
                      max_depth=3, prune=lambda p: p.name.casefold() in ANNOTATION_DIR_NAMES)
    if not roots:
        raise DataError(f"aff-wild2: no cropped_aligned folder under {str(root)!r}; {LAYOUT_HINT}")
    return video_folders([r / r.name if (r / r.name).is_dir() else r for r in roots])


def video_folders(image_roots: list[Path]) -> dict[str, Path]:
    """Video name -> image folder over ``image_roots``; a video in two places is an error."""
    out: dict[str, Path] = {}
    for images in image_roots:
        for folder in sorted(p for p in images.iterdir() if p.is_dir()):
            if folder.name in out:
                raise DataError(f"aff-wild2: video {folder.name!r} has two image folders "
                                f"({out[folder.name]}, {folder}); keep one or pass images_dir")
            out[folder.name] = folder
    return out


def _read_video(
    label_file: Path, folder: Path | None, split: str, step: int, skipped: SkipReport
) -> pd.DataFrame | None:
    """Records of one annotated video (or ``None``); problems are counted in ``skipped``."""
    video = label_file.stem
    labels = read_numeric_lines(label_file, 2)
    n = len(labels)
    if n == 0:
        skipped.add("empty annotation file", str(label_file))
        return None
    number = np.arange(1, n + 1)                       # frame k <-> line k, 1-indexed
    keep = (number - 1) % step == 0
    if (~keep).any():
        skipped.add(f"not sampled (frame_step={step})", str(label_file), int((~keep).sum()))
    labels, number = labels[keep], number[keep]

    unparsed = ~np.isfinite(labels).all(axis=1)
    ignored = ~unparsed & (labels == IGNORE_VALUE).any(axis=1)
    outside = ~unparsed & ~ignored & (np.abs(labels) > 1.0).any(axis=1)
    for mask, reason in ((unparsed, "unparseable annotation line"),
                         (ignored, "annotation -5 (frame to ignore)"),
                         (outside, "valence/arousal outside [-1, 1]")):
        if mask.any():
            skipped.add(reason, f"{label_file}:{int(number[mask][0]) + 1}", int(mask.sum()))
    valid = ~(unparsed | ignored | outside)
    labels, number = labels[valid], number[valid]

    images = frames_by_number(folder) if folder is not None else {}
    if not images:
        if len(number):
            skipped.add("video without a cropped_aligned folder", str(label_file), len(number))
        return None
    has_image = np.array([k in images for k in number], dtype=bool)
    if (~has_image).any():
        first = int(number[~has_image][0])
        skipped.add("frame without an image (no face)", str(folder / f"{first:05d}.jpg"),
                    int((~has_image).sum()))
    labels, number = labels[has_image], number[has_image]
    return pd.DataFrame({
        "path": [str(images[k]) for k in number],
        "identity": video, "group": video, "split": split,
        "valence": labels[:, 0].astype(np.float32), "arousal": labels[:, 1].astype(np.float32),
    })


@register_dataset("aff-wild2")
def read(
    root: str | Path | None,
    frame_step: int = 1,
    splits: tuple[str, ...] | list[str] | None = None,
    images_dir: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    progress: bool = True,
) -> ReadResult:
    """Read the Aff-Wild2 VA track under ``root`` into face records.

    ``frame_step``: keep frames 1, 1 + n, 1 + 2n, ... of every video. ``splits``: subset of
    ``train``/``val``/``test`` to read (default: every split found). ``images_dir`` /
    ``annotations_dir`` override the folders found by searching ``root`` (by default every
    ``cropped_aligned*`` folder is used).
    """
    step = check_frame_step(frame_step)
    base = as_root(root, "aff-wild2")
    if images_dir:
        images_root = Path(images_dir).expanduser()
        if not images_root.is_dir():
            raise DataError(f"aff-wild2: images_dir {str(images_root)!r} is not a directory")
        folders = video_folders([images_root])
    else:
        folders = find_image_folders(base)
    annotations = Path(annotations_dir).expanduser() if annotations_dir else find_annotation_root(base)
    split_dirs = find_split_dirs(annotations)
    if splits is not None:
        unknown = sorted(set(splits) - set(SPLIT_DIRS.values()))
        if unknown:
            raise DataError(f"aff-wild2: unknown split(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(SPLIT_DIRS.values())}")
        split_dirs = {s: d for s, d in split_dirs.items() if s in set(splits)}
    files = [(s, f) for s, d in sorted(split_dirs.items()) for f in sorted(d.glob("*.txt"))]
    if not files:
        raise DataError(f"aff-wild2: no <video>.txt annotation file in "
                        f"{', '.join(str(d) for d in split_dirs.values())}; {LAYOUT_HINT}")
    skipped = SkipReport()
    parts: list[pd.DataFrame | None] = []
    seen: dict[str, str] = {}
    for split, label_file in tqdm(files, desc="aff-wild2 videos", unit="video",
                                  disable=None if progress else True):
        if label_file.stem in seen:
            raise DataError(f"aff-wild2: video {label_file.stem!r} is annotated in both "
                            f"{seen[label_file.stem]} and {split}; remove one annotation file")
        seen[label_file.stem] = split
        parts.append(_read_video(label_file, folders.get(label_file.stem), split, step, skipped))
    records = frame_records(parts, "aff-wild2", base, skipped, LAYOUT_HINT)
    return ReadResult(records=records, skipped=skipped, source=str(base))
