"""Aff-Wild reader (Zafeiriou et al., 2017): 298 YouTube videos with per-frame valence/arousal.

Expected layout (the organisers' release; a doubled ``train/train`` level from unpacking the
archives is accepted)::

    ROOT/videos/{train,test}/<vid>.mp4 | .avi
    ROOT/annotations/train/valence/<vid>.txt     one value in [-1, 1] per line = per frame,
    ROOT/annotations/train/arousal/<vid>.txt     no header; line i <-> frame i (0-based)
    ROOT/bboxes/train/<vid>/<n>.pts              optional face box per frame (also spelled
                                                 ``bboxs``)
    ROOT/landmarks/train/<vid>/<n>.pts           optional 68 landmarks per frame

Box and landmark files use the iBUG ``.pts`` format (``version: 1`` / ``n_points: N`` /
``{`` / one ``x y`` line per point / ``}``): 4 corner points for a box, 68 points for the
landmarks, read as their tight box. A plain text file holding ``x0 y0 x1 y1`` on one line is
accepted too. Public loaders number these files from 1 for the first video frame; when any
video has a file numbered 0 the whole release is read as 0-based (``box_index_base`` forces
either).

Records point at the video (``path``) with a 0-based ``frame`` index; the frame's box comes
from its box (preferred) or landmark file, and frames without one get ``detect=True`` so the
cache runs the face detector. Identity and group are the video. The test labels were not
released with the challenge, so the paper evaluates on a sample of the training set: here
whole videos are held out as split ``val`` (``val_fraction``, ``seed``); annotated
``test`` videos, when present, get split ``test``. With ``val_fraction=0`` and no labelled
test video the records carry no ``split`` column, so that cross-validation by video
(``group_kfold`` on ``group``) or the trainer's own group split applies.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from elim.data.io import is_video
from elim.data.records import BOX_COLUMNS, ReadResult, SkipReport
from elim.datasets import register_dataset
from elim.datasets.files import (
    as_root,
    check_frame_step,
    frame_records,
    read_label_bytes,
    read_numeric_lines,
)
from elim.deps import cv2
from elim.errors import DataError

BOX_DIR_NAMES = ("bboxes", "bboxs")
LANDMARK_DIR_NAMES = ("landmarks",)
BOX_FILE_EXTENSIONS = (".pts", ".txt")
BOX_MODES = ("auto", "bboxes", "landmarks", "detect")
OFFICIAL_SPLITS = ("train", "test")

LAYOUT_HINT = (
    "expected ROOT/videos/{train,test}/<vid>.mp4|.avi and "
    "ROOT/annotations/train/{valence,arousal}/<vid>.txt (optional per-frame boxes in "
    "ROOT/bboxes/train/<vid>/<n>.pts or landmarks in ROOT/landmarks/train/<vid>/<n>.pts)"
)


def parse_box_file(path: Path) -> tuple[float, float, float, float] | None:
    """Face box ``(x0, y0, x1, y1)`` from a ``.pts`` box/landmark file, or ``None`` if malformed.

    Point files (4 corners or 68 landmarks) give the tight box of their points; a single
    line of four numbers is read as ``x0 y0 x1 y1``.
    """
    try:
        text = read_label_bytes(path).decode("utf-8", errors="strict")
    except (DataError, UnicodeDecodeError):
        return None
    rows: list[list[float]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "{}" or ":" in line:
            continue
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            return None
    if len(rows) == 1 and len(rows[0]) == 4:
        x0, y0, x1, y1 = rows[0]
    elif len(rows) >= 2 and all(len(r) == 2 for r in rows):
        pts = np.asarray(rows)
        if not np.isfinite(pts).all():
            return None
        if len(rows) == 4:                       # corner points of a box
            (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        else:                                    # landmarks: one point = one pixel
            from elim.data.crop import box_from_landmarks

            x0, y0, x1, y1 = box_from_landmarks(pts)
    else:
        return None
    box = (float(x0), float(y0), float(x1), float(y1))
    if not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def _first_dir(root: Path, names: tuple[str, ...], split: str) -> Path | None:
    """``ROOT/<name>/<split>`` (or a doubled ``<split>/<split>``) for the first name present."""
    for name in names:
        folder = root / name / split
        if folder.is_dir():
            inner = folder / split
            return inner if inner.is_dir() else folder
    return None


def _video_files(root: Path, split: str) -> dict[str, Path]:
    """Video id -> file under ``ROOT/videos/<split>`` (searching two levels)."""
    folder = root / "videos" / split
    out: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*")) + sorted(folder.glob("*/*")):
            if is_video(path) and path.is_file():
                out.setdefault(path.stem, path)
    return out


def frame_count(path: Path) -> int | None:
    """Frames in the video as the container reports them (``None`` if it cannot be opened)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


def numbered_files(folder: Path) -> dict[int, Path]:
    """Box/landmark files of one video folder by the integer in their name."""
    out: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix.lower() in BOX_FILE_EXTENSIONS and path.stem.isdigit():
                out.setdefault(int(path.stem), path)
    return out


def _label_prefix(
    valence: np.ndarray, arousal: np.ndarray, n_video: int | None, item: str,
    skipped: SkipReport,
) -> int:
    """Length of the usable common prefix of the two label files and the video.

    Every frame position past it is counted in ``skipped`` under one reason: a label line
    past the video's last frame, a line that only one of the two files has, or a video
    frame that neither file labels.
    """
    n_labels = min(len(valence), len(arousal))
    longest = max(len(valence), len(arousal))
    if n_video is None:
        n_video_or_inf = longest
    else:
        n_video_or_inf = n_video
        if longest > n_video:
            skipped.add("label line beyond the video's last frame", item, longest - n_video)
        if n_video > longest:
            skipped.add("video frame without a label line", item, n_video - longest)
    one_sided = min(longest, n_video_or_inf) - n_labels
    if one_sided > 0:
        skipped.add("valence and arousal files differ in length", item, one_sided)
    return min(n_labels, n_video_or_inf)


def _read_video(
    vid: str, video: Path, split: str, ann: Path, box_files: list[dict[int, Path]],
    index_base: int, step: int, check_frames: bool, skipped: SkipReport,
) -> pd.DataFrame | None:
    """Records of one video; ``box_files`` lists its numbered files, best source first."""
    valence = read_numeric_lines(ann / "valence" / f"{vid}.txt", 1, header=False)
    arousal = read_numeric_lines(ann / "arousal" / f"{vid}.txt", 1, header=False)
    n_video = None
    if check_frames:
        n_video = frame_count(video)
        if n_video is None:
            skipped.add("unreadable video (all its labels skipped)", str(video),
                        max(len(valence), len(arousal)))
            return None
        if n_video == 0:
            warnings.warn(f"aff-wild: {video} reports no frame count; trusting the label files",
                          stacklevel=3)
            n_video = None
    item = str(ann / "valence" / f"{vid}.txt")
    n = _label_prefix(valence, arousal, n_video, item, skipped)
    labels = np.stack([valence[:n, 0], arousal[:n, 0]], axis=1)
    frame = np.arange(n)
    keep = frame % step == 0
    if (~keep).any():
        skipped.add(f"not sampled (frame_step={step})", str(video), int((~keep).sum()))
    labels, frame = labels[keep], frame[keep]
    unparsed = ~np.isfinite(labels).all(axis=1)
    outside = ~unparsed & (np.abs(labels) > 1.0).any(axis=1)
    for mask, reason in ((unparsed, "unparseable label line"),
                         (outside, "valence/arousal outside [-1, 1]")):
        if mask.any():
            skipped.add(reason, f"{item} frame {int(frame[mask][0])}", int(mask.sum()))
    valid = ~(unparsed | outside)
    labels, frame = labels[valid], frame[valid]

    boxes = np.full((len(frame), 4), np.nan)
    files: dict[int, Path] = {}
    for numbered in reversed(box_files):       # earlier sources (bboxes) win
        files.update({n - index_base: p for n, p in numbered.items() if n >= index_base})
    malformed = np.zeros(len(frame), dtype=bool)
    for i, f in enumerate(frame):
        path = files.get(int(f))
        if path is not None:
            box = parse_box_file(path)
            if box is None:
                malformed[i] = True
            else:
                boxes[i] = box
    if malformed.any():
        first = files[int(frame[malformed][0])]
        skipped.add("malformed box/landmark file", str(first), int(malformed.sum()))
    keep = ~malformed
    table = pd.DataFrame({
        "path": str(video), "identity": vid, "group": vid, "split": split,
        "frame": frame[keep].astype(np.int64),
        "valence": labels[keep, 0].astype(np.float32),
        "arousal": labels[keep, 1].astype(np.float32),
    })
    for j, col in enumerate(BOX_COLUMNS):
        table[col] = boxes[keep, j]
    table["detect"] = np.isnan(boxes[keep, 0])
    return table


def _hold_out_videos(videos: list[str], val_fraction: float, seed: int) -> set[str]:
    """Training videos moved to split ``val``: about ``val_fraction`` of the videos, chosen
    by :func:`elim.data.splits.group_split` with ``seed``."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"aff-wild: val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0 or len(videos) < 2:
        return set()
    from elim.data.splits import group_split

    names = np.asarray(videos)
    parts = group_split(names, (1.0 - val_fraction, val_fraction), seed)
    return set(names[parts[1]].tolist())


@register_dataset("aff-wild")
def read(
    root: str | Path | None,
    frame_step: int = 1,
    val_fraction: float = 0.2,
    seed: int = 0,
    boxes: str = "auto",
    box_index_base: int | None = None,
    check_frame_count: bool = True,
    progress: bool = True,
) -> ReadResult:
    """Read Aff-Wild under ``root`` into per-frame video records.

    ``frame_step``: keep frames 0, n, 2n, ... of every video. ``val_fraction``/``seed``: the
    share of training videos given split ``val`` (0: no split column
    unless labelled test videos exist).
    ``boxes``: ``auto`` (box files, else landmark files, else the detector), ``bboxes``,
    ``landmarks`` or ``detect`` (detector for every frame). ``box_index_base``: number of
    the first frame's box file (default: 0 if any video has a file ``0.pts``, else 1).
    ``check_frame_count``: compare the label files with the video's frame count.
    """
    step = check_frame_step(frame_step)
    if boxes not in BOX_MODES:
        raise DataError(f"aff-wild: boxes must be one of {', '.join(BOX_MODES)}, got {boxes!r}")
    if box_index_base not in (None, 0, 1):
        raise DataError(f"aff-wild: box_index_base must be 0 or 1, got {box_index_base!r}")
    base = as_root(root, "aff-wild")
    skipped = SkipReport()
    jobs: list[tuple[str, Path, str, Path, list[Path]]] = []
    for split in OFFICIAL_SPLITS:
        videos = _video_files(base, split)
        ann = _first_dir(base, ("annotations",), split)
        labelled = set()
        if ann is not None:
            for path in sorted((ann / "valence").glob("*.txt")):
                vid = path.stem
                if not (ann / "arousal" / path.name).is_file():
                    skipped.add("valence file without an arousal file", str(path))
                elif vid not in videos:
                    skipped.add("label files without a video", str(path))
                else:
                    labelled.add(vid)
            for path in sorted((ann / "arousal").glob("*.txt")):
                if not (ann / "valence" / path.name).is_file():
                    skipped.add("arousal file without a valence file", str(path))
        for vid in sorted(set(videos) - labelled):
            skipped.add("video without label files", str(videos[vid]))
        names = {"auto": BOX_DIR_NAMES + LANDMARK_DIR_NAMES, "bboxes": BOX_DIR_NAMES,
                 "landmarks": LANDMARK_DIR_NAMES, "detect": ()}[boxes]
        box_dirs = [d for d in (_first_dir(base, (n,), split) for n in names) if d is not None]
        for vid in sorted(labelled):
            jobs.append((vid, videos[vid], split, ann, box_dirs))
    if not jobs:
        raise DataError(f"aff-wild: no video with valence and arousal files under "
                        f"{str(base)!r}; {LAYOUT_HINT}")
    train_videos = sorted(v for v, _, s, _, _ in jobs if s == "train")
    held_out = _hold_out_videos(train_videos, val_fraction, seed)
    listings = [[numbered_files(d / vid) for d in box_dirs] for vid, _, _, _, box_dirs in jobs]
    if box_index_base is None:    # one numbering for the whole release
        box_index_base = 0 if any(0 in m for ls in listings for m in ls) else 1
    parts: list[pd.DataFrame | None] = []
    bar = tqdm(list(zip(jobs, listings)), desc="aff-wild videos", unit="video",
               disable=None if progress else True)
    for (vid, video, split, ann, _), box_files in bar:
        name = "val" if vid in held_out else split
        parts.append(_read_video(vid, video, name, ann, box_files, box_index_base, step,
                                 check_frame_count, skipped))
    records = frame_records(parts, "aff-wild", base, skipped, LAYOUT_HINT)
    if set(records["split"]) == {"train"}:      # nothing held out: no split to impose
        records = records.drop(columns="split")
    return ReadResult(records=records, skipped=skipped, source=str(base))
