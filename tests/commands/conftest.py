"""Runs trained once per session with ``elim train`` on the tiny synthetic configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from elim.cli import main


def _png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    return img.shape[1], img.shape[0]


@pytest.fixture(scope="session")
def png_size():
    """``png_size(path) -> (width, height)`` of a non-blank PNG."""
    return _png_size


@pytest.fixture(scope="session")
def runs(tmp_path_factory, tiny_yaml) -> dict[str, Path]:
    """``{"baseline": dir, "elim": dir}``: two epochs each, same identity split."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("baseline", "elim"):
        out[method] = root / method
        assert main(["train", "--config", str(tiny_yaml), "--method", method, "--epochs", "2",
                     "--out", str(out[method]), "--json"]) == 0
    return out
