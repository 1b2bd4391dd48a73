"""Every figure is written as a non-empty PNG (plus SVG) of a sensible size."""

from __future__ import annotations

import numpy as np
import pytest

from elim.analysis import plots


def _png_size(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    return img.shape[1], img.shape[0], float(img[..., :3].std())


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _check(path, min_w=300, min_h=200):
    assert path.suffix == ".png" and path.with_suffix(".svg").stat().st_size > 0
    w, h, spread = _png_size(path)
    assert w >= min_w and h >= min_h and spread > 0.01  # not a blank canvas


def test_va_plane(tmp_path, rng):
    target = np.tile([[0.5, 0.3]], (6, 1))
    preds = {"baseline": rng.uniform(-1, 1, (6, 2)), "ELIM": target + 0.05 * rng.normal(size=(6, 2))}
    _check(plots.va_plane(preds, target, list("aabbcc"), tmp_path / "va"), min_w=500)


def test_tsne(tmp_path, rng):
    z = rng.normal(size=(40, 8))
    out = plots.tsne({"baseline": z, "ELIM": z[:, ::-1]}, np.repeat(list("abcd"), 10),
                     rng.uniform(-1, 1, 40), tmp_path / "tsne")
    _check(out, min_w=500, min_h=500)


def test_id_shift_matrix(tmp_path, rng):
    mu = rng.uniform(0, 1, (3, 5))
    mu[2, 4] = np.nan
    _check(plots.id_shift_matrix(mu, "S010", ["S011", "S012", "S013"], tmp_path / "mu"), 200, 150)


def test_identity_study_and_curves(tmp_path):
    out = plots.identity_study([0.1, 0.5, 1.0], {"ELIM": [0.5, 0.6, 0.7], "baseline": [0.4, 0.5, 0.6]},
                               tmp_path / "ids")
    _check(out)
    _check(plots.curves({"train/loss": [3, 2, 1.5], "val/ccc_mean": [0.2, 0.5, 0.6]}, tmp_path / "c"))


def test_id_shift_matrix_with_cell_labels(tmp_path, rng):
    mu = rng.uniform(0, 1, (2, 3))
    text = np.array([["+.5\n-.2"] * 3, ["-.1\n+.3", "", "+.9\n+.0"]], dtype=object)
    out = plots.id_shift_matrix(mu, "S010", ["S011", "S012"], tmp_path / "mu", cell_text=text,
                                note="a note")
    _check(out, 200, 150)


def test_compare_curves_matches_series_by_name(tmp_path):
    out = plots.compare_curves(
        {"baseline": {"train/loss": [3, 2], "val/ccc_mean": [0.1, 0.2]},
         "ELIM": {"train/loss": [3.5, 2.2], "train/loss_main": [1, 0.5],
                  "val/ccc_mean": [0.2, 0.3]}},
        tmp_path / "cmp", title="two runs")
    _check(out, min_w=900)  # three panels: train/loss, train/loss_main, val/ccc_mean


def test_png_resolution_follows_savefig_dpi(tmp_path):
    import matplotlib

    hist = {"train/loss": [3, 2, 1.5]}
    big = plots.curves(hist, tmp_path / "big")
    with matplotlib.rc_context({"savefig.dpi": 60}):
        small = plots.curves(hist, tmp_path / "small")
    assert _png_size(small)[0] < 0.6 * _png_size(big)[0]
