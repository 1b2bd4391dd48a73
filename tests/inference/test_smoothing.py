"""Temporal smoothing per face track (EMA, Savitzky–Golay)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.signal import savgol_filter

from elim.errors import ElimError
from elim.inference.smoothing import Smoothing, parse_smoothing, smooth_table


def test_parse_specs():
    assert parse_smoothing(None) is None and parse_smoothing("none") is None
    assert parse_smoothing("ema:0.3") == Smoothing("ema", alpha=0.3)
    assert parse_smoothing("savgol:9") == Smoothing("savgol", window=9, order=2)
    assert parse_smoothing("savgol:8:3") == Smoothing("savgol", window=9, order=3)
    for bad in ("ema:0", "ema:1.5", "ema:x", "savgol:3:3", "median:5", "savgol:5:1:2"):
        with pytest.raises(ElimError, match="bad smoothing"):
            parse_smoothing(bad)


def test_ema_recursion():
    x = np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(Smoothing("ema", alpha=0.5)(x), [1.0, 0.5, 0.25, 0.625])


def test_savgol_matches_scipy_and_keeps_quadratics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    np.testing.assert_allclose(Smoothing("savgol", window=9)(x), savgol_filter(x, 9, 2, mode="interp"))
    t = np.arange(20.0)
    quad = 0.01 * t**2 - 0.1 * t
    np.testing.assert_allclose(Smoothing("savgol", window=7)(quad), quad, atol=1e-12)


def test_short_tracks_shrink_the_window():
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(Smoothing("savgol", window=9)(x), savgol_filter(x, 5, 2, mode="interp"))
    np.testing.assert_array_equal(Smoothing("savgol", window=9)(x[:2]), x[:2])


def test_table_is_smoothed_per_track_in_frame_order():
    table = pd.DataFrame({
        "source": ["v"] * 6 + ["w"],
        "frame": [2, 0, 1, 0, 1, 2, 0],
        "face": pd.array([0, 0, 0, 1, 1, 1, 0], dtype="Int64"),
        "valence": [0.0, 1.0, 0.0, 5.0, 5.0, 5.0, 9.0],
        "arousal": [0.0] * 7,
        "status": ["ok"] * 7,
    })
    out = smooth_table(table, "ema:0.5")
    # track (v, 0) in frame order: 1, 0, 0 → 1, 0.5, 0.25
    np.testing.assert_allclose(out.loc[[1, 2, 0], "valence"], [1.0, 0.5, 0.25])
    np.testing.assert_allclose(out.loc[[3, 4, 5, 6], "valence"], [5.0, 5.0, 5.0, 9.0])
    np.testing.assert_allclose(out["valence_raw"], table["valence"])
    assert smooth_table(table, None) is table
