"""elim.metrics against independent numpy formulas (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elim.metrics import METRIC_KEYS, aggregate, format_metrics_table, va_metrics

PRED = np.array(
    [[0.5, -0.2], [-0.3, 0.1], [0.0, 0.4], [0.9, -0.7], [-0.6, 0.0], [0.2, 0.3]], dtype=np.float64
)
TARGET = np.array(
    [[0.4, -0.1], [-0.5, 0.2], [0.1, 0.5], [0.7, -0.4], [-0.2, 0.0], [-0.1, 0.6]],
    dtype=np.float64,
)


def _reference(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """Textbook formulas written out element by element (no shared code with elim.metrics)."""
    out = {}
    n = len(p)
    for j, d in enumerate("va"):
        x, y = [float(v) for v in p[:, j]], [float(v) for v in t[:, j]]
        mx, my = sum(x) / n, sum(y) / n
        vx = sum((a - mx) ** 2 for a in x) / n
        vy = sum((b - my) ** 2 for b in y) / n
        cov = sum((a - mx) * (b - my) for a, b in zip(x, y)) / n
        out[f"rmse_{d}"] = math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)) / n)
        sgn = lambda v: (v > 0) - (v < 0)
        out[f"sagr_{d}"] = sum(sgn(a) == sgn(b) for a, b in zip(x, y)) / n
        out[f"pcc_{d}"] = cov / math.sqrt(vx * vy)
        out[f"ccc_{d}"] = 2 * cov / (vx + vy + (mx - my) ** 2)
    out["ccc_mean"] = (out["ccc_v"] + out["ccc_a"]) / 2
    return out


def test_matches_reference_formulas():
    got = va_metrics(PRED, TARGET)
    ref = _reference(PRED, TARGET)
    assert list(got) == list(METRIC_KEYS)
    for k in METRIC_KEYS:
        assert isinstance(got[k], float)
        assert got[k] == pytest.approx(ref[k], rel=1e-12, abs=1e-12), k


def test_known_values_and_sagr_zero_convention():
    # valence: pred 0 vs label 0.1 disagree; arousal: 0 vs 0 agree (sign(0) = 0).
    got = va_metrics(PRED, TARGET)
    # valence signs: (+,+) (-,-) (0,+) (+,+) (-,-) (+,-) -> 4/6
    assert got["sagr_v"] == pytest.approx(4 / 6)
    # arousal signs: (-,-) (+,+) (+,+) (-,-) (0,0) (+,+) -> 6/6
    assert got["sagr_a"] == 1.0
    perfect = va_metrics(TARGET, TARGET)
    assert perfect["rmse_v"] == 0.0 and perfect["ccc_mean"] == pytest.approx(1.0)
    assert perfect["pcc_a"] == pytest.approx(1.0)


def test_torch_and_numpy_agree():
    a = va_metrics(torch.tensor(PRED, dtype=torch.float32), torch.tensor(TARGET))
    b = va_metrics(PRED.astype(np.float32), TARGET)
    for k in METRIC_KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-12)


def test_constant_prediction_is_defined():
    pred = np.full_like(TARGET, 0.25)
    got = va_metrics(pred, TARGET)
    assert all(np.isfinite(v) for v in got.values())
    assert got["pcc_v"] == 0.0 and got["pcc_a"] == 0.0
    assert got["ccc_v"] == 0.0 and got["ccc_a"] == 0.0
    both_const = va_metrics(np.zeros((3, 2)), np.zeros((3, 2)))
    assert both_const["ccc_mean"] == 0.0 and both_const["sagr_v"] == 1.0


def test_ccc_penalises_bias_pcc_does_not():
    shifted = TARGET + 0.5
    got = va_metrics(shifted, TARGET)
    assert got["pcc_v"] == pytest.approx(1.0)
    assert got["ccc_v"] < 0.9


@pytest.mark.parametrize(
    "pred,target",
    [
        (np.zeros((3, 3)), np.zeros((3, 3))),
        (np.zeros((3, 2)), np.zeros((4, 2))),
        (np.zeros((0, 2)), np.zeros((0, 2))),
        (np.full((2, 2), np.nan), np.zeros((2, 2))),
    ],
)
def test_rejects_bad_input(pred, target):
    with pytest.raises(ValueError):
        va_metrics(pred, target)


def test_aggregate_mean_std_ddof1():
    folds = [va_metrics(PRED * s, TARGET) for s in (0.5, 1.0, 2.0)]
    agg = aggregate(folds)
    for k in METRIC_KEYS:
        vals = np.array([f[k] for f in folds])
        assert agg[k]["mean"] == pytest.approx(vals.mean())
        assert agg[k]["std"] == pytest.approx(np.sqrt(((vals - vals.mean()) ** 2).sum() / 2))
        assert agg[k]["n"] == 3
    assert aggregate([folds[0]])["rmse_v"]["std"] == 0.0
    with pytest.raises(ValueError):
        aggregate([])


def test_format_metrics_table():
    m = va_metrics(PRED, TARGET)
    agg = aggregate([m, va_metrics(TARGET, TARGET)])
    table = format_metrics_table({"fold0": m, "cv": agg}, digits=3)
    lines = table.splitlines()
    assert lines[0] == "| run | " + " | ".join(METRIC_KEYS) + " |"
    assert len(lines) == 4
    assert lines[2].startswith(f"| fold0 | {m['rmse_v']:.3f} |")
    assert "±" in lines[3]
    assert len(lines[1].split("|")) == len(lines[0].split("|"))
