"""Tiny on-disk copies of the paper's datasets, in their published layouts (builders).

Each builder writes a few 64×48 frames with deterministic labels and returns what a test
needs to check the reader against (root and the expected values). The fixtures expose the
builders so that a test can vary the layout (nesting, missing files, corrupt files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elim.deps import cv2

W, H = 64, 48


def _frame(seed: int) -> np.ndarray:
    """A deterministic BGR test frame with a bright block standing in for the face."""
    img = np.full((H, W, 3), 40 + (seed * 7) % 60, np.uint8)
    img[10:40, 16:48] = (200, 150 + seed % 50, 100)
    return img


# ----------------------------------------------------------------------------- AFEW-VA
def afew_landmarks(clip: int, frame: int) -> list[list[float]]:
    """68 points spanning x in [16, 46], y in [10, 38], shifted by the frame number."""
    t = np.linspace(0.0, 1.0, 68)
    xs = 16 + 30 * t + (frame % 3)
    ys = 10 + 28 * ((t * 7) % 1.0)
    ys[0], ys[-1] = 10.0, 38.0
    return [[float(x), float(y)] for x, y in zip(xs, ys)]


def afew_label(clip: int, frame: int) -> tuple[int, int]:
    """Integer valence/arousal in [-10, 10]."""
    return ((clip * 3 + frame) % 21) - 10, ((clip * 5 + 2 * frame) % 21) - 10


@dataclass
class AfewClip:
    clip: int
    actor: str
    n_frames: int = 4
    part: str | None = None                 # extra nesting level, e.g. a zip part


def make_afew_va(root: Path, clips: Sequence[AfewClip]) -> Path:
    """Write ``root/[part/]NNN/{00000.png, ..., NNN.json}`` for each clip."""
    for c in clips:
        name = f"{c.clip:03d}"
        folder = root / c.part / name if c.part else root / name
        folder.mkdir(parents=True, exist_ok=True)
        frames = {}
        for f in range(c.n_frames):
            cv2.imwrite(str(folder / f"{f:05d}.png"), _frame(c.clip * 10 + f))
            v, a = afew_label(c.clip, f)
            frames[f"{f:05d}"] = {"valence": v, "arousal": a, "landmarks": afew_landmarks(c.clip, f)}
        meta = {"actor": c.actor, "video_id": name, "frames": frames}
        (folder / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def edit_afew_json(root: Path, clip: str, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to the parsed JSON of ``clip`` (found at any nesting) and save it."""
    path = next(root.rglob(f"{clip}/{clip}.json"))
    meta = json.loads(path.read_text(encoding="utf-8"))
    edit(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")


# ----------------------------------------------------------------------------- Aff-Wild2
def aw2_label(video: str, k: int) -> tuple[float, float]:
    """Valence/arousal of frame ``k`` (1-indexed) of ``video``, in [-1, 1]."""
    h = sum(map(ord, video))
    return round(((h + 3 * k) % 21) / 10 - 1, 3), round(((h + 7 * k) % 21) / 10 - 1, 3)


@dataclass
class AW2Video:
    name: str
    split: str = "Train_Set"
    n_frames: int = 6
    no_image: Sequence[int] = ()            # frames (1-indexed) without an image
    ignore: Sequence[int] = ()              # frames (1-indexed) labelled -5
    has_folder: bool = True


def make_aff_wild2(
    root: Path, videos: Sequence[AW2Video],
    annotation_parent: str = "Annotations", images_parent: str = "",
) -> Path:
    """Write ``root/<images_parent>/cropped_aligned/<video>/%05d.jpg`` and
    ``root/<annotation_parent>/VA_Estimation_Challenge/<split>/<video>.txt``."""
    images = root / images_parent / "cropped_aligned" if images_parent else root / "cropped_aligned"
    ann = root / annotation_parent / "VA_Estimation_Challenge"
    # a sibling challenge folder that must not be mistaken for the VA annotations
    (root / annotation_parent / "EXPR_Classification_Challenge" / "Train_Set").mkdir(
        parents=True, exist_ok=True)
    for v in videos:
        lines = ["valence,arousal"]
        for k in range(1, v.n_frames + 1):
            val, aro = (-5, -5) if k in v.ignore else aw2_label(v.name, k)
            lines.append(f"{val},{aro}")
        (ann / v.split).mkdir(parents=True, exist_ok=True)
        (ann / v.split / f"{v.name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if v.has_folder:
            (images / v.name).mkdir(parents=True, exist_ok=True)
            for k in range(1, v.n_frames + 1):
                if k not in v.no_image:
                    cv2.imwrite(str(images / v.name / f"{k:05d}.jpg"), _frame(k))
    return root


# ----------------------------------------------------------------------------- Aff-Wild
def aw_label(video: str, i: int) -> tuple[float, float]:
    """Valence/arousal of frame ``i`` (0-based) of ``video``, in [-1, 1]."""
    h = sum(map(ord, video))
    return round(((h + 2 * i) % 21) / 10 - 1, 3), round(((h + 5 * i) % 21) / 10 - 1, 3)


def aw_box(i: int) -> tuple[float, float, float, float]:
    """The face box of frame ``i`` written to the box files."""
    return (10.0 + i, 8.0, 40.0 + i, 44.0)


def write_pts(path: Path, points: Sequence[Sequence[float]]) -> None:
    """An iBUG ``.pts`` file."""
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n", encoding="utf-8")


@dataclass
class AWVideo:
    name: str
    n_frames: int = 6
    n_valence: int | None = None            # label lines (default: n_frames)
    n_arousal: int | None = None
    split: str = "train"
    ext: str = ".avi"
    boxes: Sequence[int] | None = None      # 0-based frames with a box file (None: no folder)
    landmarks: Sequence[int] | None = None  # 0-based frames with a landmark file
    box_base: int = 1                       # number of the first frame's box file
    labelled: bool = True


def write_video(path: Path, n_frames: int) -> None:
    """A short MJPG video of ``n_frames`` 64×48 frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    assert writer.isOpened(), "OpenCV cannot write MJPG video"
    for i in range(n_frames):
        writer.write(_frame(i))
    writer.release()


def make_aff_wild(root: Path, videos: Sequence[AWVideo], box_dir: str = "bboxes") -> Path:
    """Write the Aff-Wild layout: videos, per-frame label files, box and landmark files."""
    for v in videos:
        write_video(root / "videos" / v.split / f"{v.name}{v.ext}", v.n_frames)
        if v.labelled:
            for dim, n in (("valence", v.n_valence), ("arousal", v.n_arousal)):
                n = v.n_frames if n is None else n
                folder = root / "annotations" / v.split / dim
                folder.mkdir(parents=True, exist_ok=True)
                col = 0 if dim == "valence" else 1
                values = [f"{aw_label(v.name, i)[col]}" for i in range(n)]
                (folder / f"{v.name}.txt").write_text("\n".join(values) + "\n", encoding="utf-8")
        if v.boxes is not None:
            folder = root / box_dir / v.split / v.name
            folder.mkdir(parents=True, exist_ok=True)
            for i in v.boxes:
                x0, y0, x1, y1 = aw_box(i)
                write_pts(folder / f"{i + v.box_base}.pts",
                          [(x0, y0), (x0, y1), (x1, y1), (x1, y0)])
        if v.landmarks is not None:
            folder = root / "landmarks" / v.split / v.name
            folder.mkdir(parents=True, exist_ok=True)
            for i in v.landmarks:
                write_pts(folder / f"{i + v.box_base}.pts", afew_landmarks(0, 0))
    return root
