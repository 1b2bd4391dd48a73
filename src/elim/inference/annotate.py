"""Pictures of predictions: annotated videos (boxes, V/A values, a valence–arousal disc) and
per-video V/A time-series plots."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from elim.data.io import Frame
from elim.errors import ElimError

# BGR colours, one per face track (cycled)
PALETTE = [(0, 200, 255), (255, 160, 0), (80, 220, 80), (200, 80, 255), (60, 60, 255), (255, 255, 0)]
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def video_codec(path: str | Path) -> str:
    """The codec written for ``path``, by its extension; ElimError for other extensions."""
    codec = FOURCC.get(Path(path).suffix.lower())
    if codec is None:
        raise ElimError(f"{path}: unsupported video extension; use one of {', '.join(FOURCC)}")
    return codec


def open_writer(path: str | Path, fps: float, size: tuple[int, int]):
    """``cv2.VideoWriter`` for ``path`` (codec from the extension: mp4v or MJPG)."""
    from elim.deps import cv2

    path = Path(path)
    codec = video_codec(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), size)
    if not writer.isOpened():
        raise ElimError(f"{path}: OpenCV cannot write this video ({codec} codec unavailable)")
    return writer


class LazyWriter:
    """A video writer for ``path`` opened at the first frame, whose size it takes (so a webcam
    session can be recorded without opening the camera beforehand to ask its size)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self._writer = None

    def write(self, bgr: np.ndarray) -> None:
        if self._writer is None:
            self._writer = open_writer(self.path, self.fps, (bgr.shape[1], bgr.shape[0]))
        self._writer.write(bgr)

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def _colour(face) -> tuple[int, int, int]:
    return PALETTE[int(face) % len(PALETTE)] if pd.notna(face) else (200, 200, 200)


def draw_predictions(bgr: np.ndarray, rows: pd.DataFrame) -> np.ndarray:
    """Draw each face's box and V/A values, and a V–A disc (top right) with the current points."""
    from elim.deps import cv2

    h, w = bgr.shape[:2]
    ok = rows[rows["status"] == "ok"]
    for _, row in ok.iterrows():
        colour = _colour(row["face"])
        p0 = (round(float(row["x0"])), round(float(row["y0"])))
        p1 = (round(float(row["x1"])), round(float(row["y1"])))
        cv2.rectangle(bgr, p0, p1, colour, 2)
        text = f"V {row['valence']:+.2f}  A {row['arousal']:+.2f}"
        cv2.putText(bgr, text, (p0[0], max(12, p0[1] - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    radius = max(20, min(h, w) // 10)
    centre = (w - radius - 10, radius + 10)
    cv2.circle(bgr, centre, radius, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.line(bgr, (centre[0] - radius, centre[1]), (centre[0] + radius, centre[1]), (160, 160, 160), 1)
    cv2.line(bgr, (centre[0], centre[1] - radius), (centre[0], centre[1] + radius), (160, 160, 160), 1)
    cv2.putText(bgr, "V", (centre[0] + radius - 8, centre[1] + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    cv2.putText(bgr, "A", (centre[0] + 3, centre[1] - radius + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    for _, row in ok.iterrows():
        v, a = np.clip([row["valence"], row["arousal"]], -1.0, 1.0)
        point = (round(centre[0] + float(v) * radius), round(centre[1] - float(a) * radius))
        cv2.circle(bgr, point, 4, _colour(row["face"]), -1, cv2.LINE_AA)
    return bgr


def write_annotated_video(
    frames: Iterable[Frame],
    table: pd.DataFrame,
    path: str | Path,
    fps: float,
    frame_numbers: list[int] | None = None,
) -> Path:
    """Write ``frames`` with the rows of ``table`` of the same frame drawn on them.

    ``frame_numbers``: the table's frame index of each frame in order (for recordings whose own
    numbering restarts at 0); default: each frame's own index.
    """
    from elim.deps import cv2

    by_frame = {int(k): g for k, g in table.dropna(subset=["frame"]).groupby("frame")}
    empty = table.iloc[:0]
    writer = LazyWriter(path, fps)
    written = 0
    try:
        for k, frame in enumerate(frames):
            if frame_numbers is not None and k >= len(frame_numbers):
                break
            number = frame_numbers[k] if frame_numbers is not None else frame.index
            bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
            writer.write(draw_predictions(bgr, by_frame.get(number, empty)))
            written += 1
    finally:
        writer.release()
    if not written:
        raise ElimError(f"{path}: no frames to write")
    return Path(path)


def plot_timeseries(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """PNG of valence and arousal against time (one line per face track) for one video."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = table[table["status"] == "ok"].sort_values("timestamp")
    fig, axes = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True)
    for ax, name in zip(axes, ("valence", "arousal")):
        for face, group in ok.groupby("face"):
            colour = np.array(_colour(face)[::-1]) / 255.0
            if f"{name}_raw" in group:
                ax.plot(group["timestamp"], group[f"{name}_raw"], color=colour, alpha=0.3, lw=0.8)
            ax.plot(group["timestamp"], group[name], color=colour, lw=1.5, label=f"face {face}")
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if ok["face"].nunique() > 1:
        axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(title or "valence and arousal over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
