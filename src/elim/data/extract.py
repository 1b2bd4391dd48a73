"""Decoding files and cropping every record's face (the work inside a cache build).

Each file is decoded once for all the records that refer to it; video frames come from one
sequential decode kept open across calls (:class:`VideoPool`). Records without a box but with
``detect`` get one from ``elim.detection.detect_largest`` (:class:`LazyDetector`). Caches built
with alignment warp every face onto a template (:class:`elim.data.face_contract.Aligner`).
Failures are outcomes with a skip reason, never exceptions, so a build never stops half-way on
bad data.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from elim.data.crop import MIN_FACE_PIXELS, crop_face, face_side
from elim.data.face_contract import Aligner
from elim.data.io import ImageTooLargeError, VideoReader, is_video, read_image
from elim.data.records import BOX_COLUMNS, SkipReport
from elim.deps import cv2
from elim.errors import DataError


class LazyDetector:
    """``elim.detection.detect_largest`` (the default detector, the shipped YuNet) imported on
    first use; serialised across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._fn = None

    def __call__(self, image: np.ndarray) -> tuple[bool, Any]:
        """Returns ``(available, box or None)``."""
        with self._lock:
            if not self._loaded:
                try:
                    from elim.detection import detect_largest

                    self._fn = detect_largest
                except ImportError:
                    self._fn = None
                self._loaded = True
            if self._fn is None:
                return False, None
            found = self._fn(image)
        if found is None:
            return True, None
        box = getattr(found, "box", found)
        return True, tuple(float(v) for v in list(box)[:4])


class VideoPool:
    """Open :class:`VideoReader` s kept across shards, so that a video whose frames span
    several shards is decoded once; least recently used ones are closed beyond ``size``."""

    def __init__(self, size: int, max_pixels: int | None) -> None:
        self._readers: OrderedDict[str, VideoReader] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size
        self.max_pixels = max_pixels

    def get(self, path: str) -> VideoReader:
        with self._lock:
            reader = self._readers.pop(path, None)
            if reader is None:
                reader = VideoReader(path, self.max_pixels)
            self._readers[path] = reader
            while len(self._readers) > self.size:
                self._readers.popitem(last=False)[1].close()
            return reader

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()


@dataclass
class _Outcome:
    position: int
    face: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    skip: str | None = None
    item: str = ""
    note: str | None = None


def _record_box(row: dict) -> tuple[float, float, float, float] | None:
    if not all(c in row for c in BOX_COLUMNS):
        return None
    box = tuple(float(row[c]) for c in BOX_COLUMNS)
    return box if all(math.isfinite(v) for v in box) else None


def detect_mask(records: pd.DataFrame) -> np.ndarray:
    """Rows flagged ``detect`` (missing / NaN count as False)."""
    if "detect" not in records.columns:
        return np.zeros(len(records), dtype=bool)
    return np.array([_flag(v) for v in records["detect"]], dtype=bool)


def _flag(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _crop_record(
    pos: int, row: dict, image: np.ndarray, size: int, margin: float, detector: LazyDetector,
    item: str, align: Aligner | None = None,
) -> _Outcome:
    box = _record_box(row)
    note = None
    if box is None and _flag(row.get("detect")):
        available, box = detector(image)
        if not available:
            note = "no_detector"
        elif box is None:
            return _Outcome(pos, skip="no_face", item=item)
    try:
        face = crop_face(image, box, size, margin)
    except (ValueError, cv2.error) as err:
        return _Outcome(pos, skip="bad_box", item=f"{item}: {err}")
    if face_side(image.shape, box) < MIN_FACE_PIXELS:
        return _Outcome(pos, skip="too_small", item=f"{item}: face under {MIN_FACE_PIXELS} px")
    if align is not None:
        aligned = align(image, box, margin, face)
        if aligned is None:
            note = note or "not_aligned"
        else:
            face = aligned
    return _Outcome(pos, face=face, box=box, note=note)


def _skip_for(err: Exception, path: str) -> _Outcome:
    if not os.path.exists(path):
        return _Outcome(-1, skip="missing_file", item=path)
    reason = "too_large" if isinstance(err, ImageTooLargeError) else "unreadable"
    return _Outcome(-1, skip=reason, item=str(err))


def _process_unit(
    unit: tuple[str, bool, list[int]],
    rows: dict[int, dict],
    size: int,
    margin: float,
    detector: LazyDetector,
    videos: VideoPool,
    align: Aligner | None = None,
) -> list[_Outcome]:
    """Decode one file once and crop every record that refers to it."""
    path, video, positions = unit
    out: list[_Outcome] = []
    try:
        if video:
            frames: dict[int, list[int]] = {}
            for p in positions:
                f = _number(rows[p].get("frame"))
                if math.isfinite(f) and f >= 0 and f == int(f):
                    frames.setdefault(int(f), []).append(p)
                else:
                    out.append(_Outcome(p, skip="bad_frame", item=f"{path}: frame {f}"))
            for frame, image in videos.get(path).frames(frames):
                for p in frames[frame]:
                    if image is None:
                        out.append(_Outcome(p, skip="frame_missing", item=f"{path}#{frame}"))
                    else:
                        out.append(_crop_record(p, rows[p], image, size, margin, detector,
                                                f"{path}#{frame}", align))
        else:
            image = read_image(path, videos.max_pixels)
            for p in positions:
                out.append(_crop_record(p, rows[p], image, size, margin, detector, path, align))
    except (DataError, OSError, cv2.error) as err:
        done = {o.position for o in out}
        for p in positions:
            if p not in done:
                o = _skip_for(err, path)
                o.position = p
                out.append(o)
    return out


def _units(records: pd.DataFrame, start: int, stop: int) -> list[tuple[str, bool, list[int]]]:
    """Group rows start..stop by file, in order of first appearance; flag video files.

    A row is a video frame when its path has a video extension (its ``frame`` column then
    gives the frame); a ``frame`` column on image rows (e.g. a sequence number) is ignored.
    """
    groups: dict[str, list[int]] = {}
    for p, path in enumerate(records["path"].to_numpy()[start:stop], start):
        groups.setdefault(str(path), []).append(p)
    return [(path, is_video(path), pos) for path, pos in groups.items()]


def extract_faces(
    records: pd.DataFrame,
    start: int,
    stop: int,
    size: int,
    margin: float,
    detector: LazyDetector,
    workers: int,
    videos: VideoPool,
    pbar: Any,
    align: Aligner | None = None,
) -> tuple[np.ndarray, dict]:
    """Faces (n_kept, size, size, 3) uint8 of records ``start..stop`` and their summary.

    The summary (a shard's done marker, minus the build fingerprint) lists the kept record
    rows, the box used for each (None: whole image), and the skip / note reports. ``workers``
    > 1 decodes files in that many threads; ``pbar.update`` is called per file. With
    ``align`` every face is warped onto its template (:class:`elim.data.face_contract.Aligner`;
    faces in which no face is seen stay unaligned, noted ``not_aligned``).
    """
    units = _units(records, start, stop)
    rows = dict(zip(range(start, stop), records.iloc[start:stop].to_dict("records")))

    def run(unit):
        return _process_unit(unit, rows, size, margin, detector, videos, align)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(run, units)
            outcomes = []
            for unit, res in zip(units, results):
                outcomes.extend(res)
                pbar.update(len(unit[2]))
    else:
        outcomes = []
        for unit in units:
            outcomes.extend(run(unit))
            pbar.update(len(unit[2]))
    outcomes.sort(key=lambda o: o.position)
    faces = np.empty((stop - start, size, size, 3), dtype=np.uint8)
    kept, boxes = [], []
    skipped, notes = SkipReport(), SkipReport()
    for o in outcomes:
        if o.skip is not None:
            skipped.add(o.skip, o.item)
            continue
        faces[len(kept)] = o.face
        kept.append(o.position)
        boxes.append(list(o.box) if o.box is not None else None)
        if o.note:
            notes.add(o.note, str(rows[o.position]["path"]))
    marker = {
        "start": start,
        "stop": stop,
        "n": len(kept),
        "kept": kept,
        "boxes": boxes,
        "skipped": skipped.to_dict(),
        "notes": notes.to_dict(),
    }
    return faces[: len(kept)], marker
