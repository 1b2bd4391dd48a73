"""Fixtures over the dataset builders of ``layouts.py`` (tiny copies in published layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from layouts import AfewClip, AW2Video, AWVideo, make_afew_va, make_aff_wild, make_aff_wild2


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def afew_root(tmp_path: Path) -> Path:
    """Four clips, three actors (one actor in two clips, spelled differently)."""
    return make_afew_va(tmp_path / "afew", [
        AfewClip(1, "Tom Hanks", 4), AfewClip(2, "tom_hanks", 3),
        AfewClip(3, "Meryl Streep", 5), AfewClip(4, "Denzel Washington", 2),
    ])


@pytest.fixture
def aw2_root(tmp_path: Path) -> Path:
    return make_aff_wild2(tmp_path / "aw2", [
        AW2Video("video1", "Train_Set", 6, no_image=(2,), ignore=(5,)),
        AW2Video("video2_left", "Train_Set", 4),
        AW2Video("video2_right", "Train_Set", 4, ignore=(1, 2)),
        AW2Video("video3", "Validation_Set", 5, no_image=(5,)),
    ], annotation_parent="Third ABAW Annotations")


@pytest.fixture
def aw_root(tmp_path: Path) -> Path:
    return make_aff_wild(tmp_path / "aw", [
        AWVideo("105", 6, boxes=range(6)),
        AWVideo("120-30-1280x720", 5, ext=".avi", boxes=(0, 1, 2)),
        AWVideo("200", 4),
        AWVideo("301", 4, split="test", labelled=False),
    ])
