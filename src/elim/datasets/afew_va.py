"""AFEW-VA reader (Kossaifi et al., 2017): 600 film clips with per-frame valence/arousal.

Expected layout (the published release; zip parts may add one folder level, e.g.
``ROOT/<part>/NNN/``)::

    ROOT/001/00000.png, 00001.png, ...      frames, 0-indexed, uncropped film frames
    ROOT/001/001.json                        {"actor": ..., "video_id": "001",
                                              "frames": {"00000": {"valence": v,
                                              "arousal": a, "landmarks": [[x, y] x 68]}}}

Labels are integers in [-10, 10] and are divided by 10. The face box of every frame is the
tight box of its 68 landmarks (columns ``x0..y1``); the cache squares it and adds the margin,
so no face detector runs. ``identity`` is the clip folder (the paper groups IDs "based on
folders"), or the actor with ``identity="actor"``; ``group`` is always the normalised actor,
so group-wise cross-validation (the paper's 5:1 protocol, 6 folds) never puts one person on
both sides even when the identity is the clip.

The small helpers :func:`frames_by_number`, :func:`check_frame_step` and :func:`find_dirs`
are shared with the Aff-Wild and Aff-Wild2 readers.
"""

from __future__ import annotations

import json
import warnings
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
    frames_by_number,
    read_label_bytes,
)
from elim.errors import DataError

LABEL_SCALE = 10.0
IDENTITY_MODES = ("clip", "actor")

LAYOUT_HINT = (
    "expected one folder per clip, ROOT/NNN/ with frames 00000.png, 00001.png, ... and "
    "ROOT/NNN/NNN.json (the AFEW-VA release; unpack every zip part under ROOT)"
)


# ----------------------------------------------------------------------------- AFEW-VA
def normalise_actor(name: object) -> str:
    """Canonical actor name: case-folded, underscores as spaces, single spaces."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _is_clip_dir(folder: Path) -> bool:
    return (folder / f"{folder.name}.json").is_file()


def _is_orphan_clip(folder: Path) -> bool:
    """A numbered folder with frames but without its ``NNN.json``."""
    return folder.name.isdigit() and not _is_clip_dir(folder) and bool(frames_by_number(folder))


def find_clips(root: Path, skipped: SkipReport) -> list[Path]:
    """Clip folders ``NNN`` holding ``NNN.json``, at most two levels below ``root``.

    Numbered folders with frames but no JSON are counted in ``skipped``.
    """
    found = find_dirs(root, lambda p: _is_clip_dir(p) or _is_orphan_clip(p), max_depth=2,
                      prune=lambda p: False)
    clips = [p for p in found if _is_clip_dir(p)]
    for orphan in (p for p in found if not _is_clip_dir(p)):
        skipped.add("clip folder without its NNN.json (whole clip skipped)", str(orphan))
    if not clips:
        raise DataError(f"afew-va: no clip folder with its JSON found under {str(root)!r}; "
                        f"{LAYOUT_HINT}")
    names = [c.name for c in clips]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(
            f"afew-va: clip folder(s) {', '.join(dupes[:5])} appear more than once under "
            f"{str(root)!r}; keep one copy of each clip"
        )
    return clips


def _landmark_points(value: object) -> np.ndarray | None:
    """``value`` as a finite (n, 2) array with a non-degenerate box, else ``None``."""
    try:
        pts = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 2 or not np.isfinite(pts).all():
        return None
    if np.ptp(pts[:, 0]) <= 0 or np.ptp(pts[:, 1]) <= 0:
        return None
    return pts


def _label(entry: dict, key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read_clip(
    clip: Path, identity_mode: str, frame_step: int, skipped: SkipReport
) -> list[dict]:
    """Records of one clip; problems are counted in ``skipped``."""
    from elim.data.crop import box_from_landmarks

    json_path = clip / f"{clip.name}.json"
    images = frames_by_number(clip)
    try:
        meta = json.loads(read_label_bytes(json_path).decode("utf-8"))
        frames = meta["frames"]
        if not isinstance(frames, dict):
            raise TypeError("'frames' is not an object")
    except (DataError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"afew-va: skipping clip {clip.name}: cannot read {json_path} ({err})",
                      stacklevel=3)
        skipped.add("clip with unreadable JSON (whole clip skipped)", str(json_path))
        return []

    actor = meta.get("actor")
    group = normalise_actor(actor) if actor not in (None, "") else f"clip {clip.name}"
    identity = clip.name if identity_mode == "clip" else group
    rows: list[dict] = []
    labelled: set[int] = set()
    for key in sorted(frames):
        entry = frames[key]
        item = f"{json_path}#{key}"
        if not str(key).isdigit() or not isinstance(entry, dict):
            skipped.add("malformed frame entry in JSON", item)
            continue
        number = int(key)
        labelled.add(number)
        if number % frame_step:
            skipped.add(f"not sampled (frame_step={frame_step})", item)
            continue
        image = images.get(number)
        if image is None:
            skipped.add("frame in JSON without an image", item)
            continue
        valence, arousal = _label(entry, "valence"), _label(entry, "arousal")
        if valence is None or arousal is None:
            skipped.add("missing or non-numeric valence/arousal", item)
            continue
        if abs(valence) > LABEL_SCALE or abs(arousal) > LABEL_SCALE:
            skipped.add("valence/arousal outside [-10, 10]", item)
            continue
        points = _landmark_points(entry.get("landmarks"))
        if points is None:
            skipped.add("missing or malformed landmarks", item)
            continue
        x0, y0, x1, y1 = (float(v) for v in box_from_landmarks(points))
        rows.append({
            "path": str(image), "identity": identity, "group": group,
            "valence": valence / LABEL_SCALE, "arousal": arousal / LABEL_SCALE,
            "x0": x0, "y0": y0, "x1": x1, "y1": y1,
        })
    for number in sorted(set(images) - labelled):
        skipped.add("image without a JSON entry", str(images[number]))
    return rows


@register_dataset("afew-va")
def read(
    root: str | Path | None,
    identity: str = "clip",
    frame_step: int = 1,
    progress: bool = True,
) -> ReadResult:
    """Read AFEW-VA under ``root`` into face records (one per labelled frame).

    ``identity``: ``"clip"`` (default, the clip folder) or ``"actor"`` (JSON ``actor``).
    ``frame_step``: keep every n-th frame of each clip (0-based frame index multiple of n).
    """
    if identity not in IDENTITY_MODES:
        raise DataError(f"afew-va: identity must be one of {', '.join(IDENTITY_MODES)}, "
                        f"got {identity!r}")
    step = check_frame_step(frame_step)
    base = as_root(root, "afew-va")
    skipped = SkipReport()
    rows: list[dict] = []
    for clip in tqdm(find_clips(base, skipped), desc="afew-va clips", unit="clip",
                     disable=None if progress else True):
        rows.extend(_read_clip(clip, identity, step, skipped))
    columns = ["path", "identity", "group", "valence", "arousal", "x0", "y0", "x1", "y1"]
    records = pd.DataFrame(rows, columns=columns)
    for col in ("valence", "arousal"):
        records[col] = records[col].astype(np.float32)
    if records.empty:
        raise DataError(f"afew-va: no usable frame under {str(base)!r} ({skipped.summary()}); "
                        f"{LAYOUT_HINT}")
    return ReadResult(records=records, skipped=skipped, source=str(base))
