"""Small on-disk face datasets for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elim.deps import cv2


def face_image(seed: int, width: int = 40, height: int = 32) -> np.ndarray:
    """A deterministic RGB test image (random pixels, so every crop is distinguishable)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def make_dataset(root: Path, n_ids: int = 4, per_id: int = 3, width: int = 40, height: int = 32,
                 boxes: bool = False) -> Path:
    """Write PNGs and ``labels.csv`` (path, identity, valence, arousal[, boxes]); returns the CSV."""
    rows = []
    for i in range(n_ids):
        for j in range(per_id):
            k = i * per_id + j
            rel = f"img/id{i:02d}/{j:03d}.png"
            write_rgb(root / rel, face_image(k, width, height))
            row = {"path": rel, "identity": f"{i:03d}", "valence": round(-0.9 + 0.1 * (k % 19), 2),
                   "arousal": round(0.8 - 0.07 * (k % 23), 2), "emotion": "x"}
            if boxes:
                row.update(x0=4 + j, y0=3, x1=24 + j, y1=27)
            rows.append(row)
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def write_video(path: Path, n_frames: int, width: int = 48, height: int = 40) -> list[int]:
    """MJPG video whose frame i is a flat grey of level 20 + 20 i; returns the levels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened()
    levels = [20 + 20 * i for i in range(n_frames)]
    for level in levels:
        writer.write(np.full((height, width, 3), level, np.uint8))
    writer.release()
    return levels


@pytest.fixture
def dataset_csv(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "raw")


CK_PLUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ck_plus_48" / "labels.csv"


@pytest.fixture
def helpers():
    """The builders above, for tests that vary the layout."""
    from types import SimpleNamespace

    return SimpleNamespace(face_image=face_image, write_rgb=write_rgb, make_dataset=make_dataset,
                           write_video=write_video, ck_plus=CK_PLUS)
