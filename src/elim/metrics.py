"""Evaluation metrics for valence–arousal regression (RMSE, SAGR, PCC, CCC).

All metrics are computed globally over every sample passed in (never averaged over batches or
videos), in float64, with population statistics (ddof = 0) everywhere:

* ``rmse = sqrt(mean((p − t)²))``;
* ``sagr`` = fraction of samples with ``sign(p) == sign(t)`` where ``sign(0) = 0``: a zero
  prediction agrees only with a zero label, and a zero label only with a zero prediction;
* ``pcc = cov(p, t) / (std(p)·std(t))``, defined as 0 when either standard deviation is 0
  (e.g. a constant prediction);
* ``ccc = 2·cov(p, t) / (var(p) + var(t) + (mean(p) − mean(t))²)``, defined as 0 when the
  denominator is 0 (prediction and label both constant and equal); with a constant prediction
  and varying labels the formula itself gives 0.

``aggregate`` summarises per-fold dictionaries as mean ± std with ``ddof = 1`` (sample standard
deviation across folds/repeats; 0.0 for a single entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["METRIC_KEYS", "aggregate", "format_metrics_table", "va_metrics"]

METRIC_KEYS: tuple[str, ...] = (
    "rmse_v",
    "rmse_a",
    "sagr_v",
    "sagr_a",
    "pcc_v",
    "pcc_a",
    "ccc_v",
    "ccc_a",
    "ccc_mean",
)


def _as_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) (valence, arousal), got {arr.shape}")
    return arr


def _pcc(p: np.ndarray, t: np.ndarray) -> float:
    sp, st = p.std(ddof=0), t.std(ddof=0)
    if sp == 0.0 or st == 0.0:
        return 0.0
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return float(cov / (sp * st))


def _ccc(p: np.ndarray, t: np.ndarray) -> float:
    den = p.var(ddof=0) + t.var(ddof=0) + (p.mean() - t.mean()) ** 2
    if den == 0.0:
        return 0.0
    cov = np.mean((p - p.mean()) * (t - t.mean()))
    return float(2.0 * cov / den)


def va_metrics(pred: Any, target: Any) -> dict[str, float]:
    r"""Global RMSE, SAGR, PCC and CCC per dimension plus ``ccc_mean`` (see the module docstring).

    .. math:: \text{RMSE} = \sqrt{\tfrac{1}{N}\textstyle\sum_i (p_i - t_i)^2}, \quad
              \text{SAGR} = \tfrac{1}{N}\textstyle\sum_i [\text{sign}(p_i) = \text{sign}(t_i)],

    PCC = cov / (std_p · std_t), CCC = 2 cov / (var_p + var_t + (mean_p − mean_t)²), all with
    ddof = 0, over every sample at once, in float64.

    Parameters
    ----------
    pred, target : array-like or Tensor
        (N, 2) predictions and labels (valence, arousal), N >= 1, finite.

    Returns
    -------
    dict of str to float
        The keys of :data:`METRIC_KEYS`, in that order.

    Raises
    ------
    ValueError
        On a shape mismatch, N = 0 or non-finite values.
    """
    p, t = _as_array(pred, "pred"), _as_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} differ in shape")
    if p.shape[0] == 0:
        raise ValueError("va_metrics needs at least one sample")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("va_metrics got non-finite predictions or labels")
    out: dict[str, float] = {}
    for j, dim in enumerate("va"):
        pj, tj = p[:, j], t[:, j]
        out[f"rmse_{dim}"] = float(np.sqrt(np.mean((pj - tj) ** 2)))
        out[f"sagr_{dim}"] = float(np.mean(np.sign(pj) == np.sign(tj)))
        out[f"pcc_{dim}"] = _pcc(pj, tj)
        out[f"ccc_{dim}"] = _ccc(pj, tj)
    out["ccc_mean"] = (out["ccc_v"] + out["ccc_a"]) / 2.0
    return {k: out[k] for k in METRIC_KEYS}


def aggregate(metrics: Sequence[Mapping[str, float]], ddof: int = 1) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each key over a list of metric dicts (folds, seeds).

    Parameters
    ----------
    metrics : sequence of mapping
        Metric dictionaries (e.g. from :func:`va_metrics`), at least one.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: the sample std across folds).

    Returns
    -------
    dict
        ``{key: {"mean": m, "std": s, "n": count}}`` for every key present in all entries; the
        std is 0.0 when there are no more entries than ``ddof``.
    """
    if len(metrics) == 0:
        raise ValueError("aggregate needs at least one metrics dictionary")
    keys = [k for k in metrics[0] if all(k in m for m in metrics)]
    out: dict[str, dict[str, float]] = {}
    for k in keys:
        vals = np.asarray([float(m[k]) for m in metrics], dtype=np.float64)
        std = float(vals.std(ddof=ddof)) if len(vals) > ddof else 0.0
        out[k] = {"mean": float(vals.mean()), "std": std, "n": len(vals)}
    return out


def _ordered_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        for k in row:
            if k not in seen:
                seen.append(k)
    known = [k for k in METRIC_KEYS if k in seen]
    return known + [k for k in seen if k not in METRIC_KEYS]


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping) and "mean" in value:
        return f"{value['mean']:.{digits}f} ± {value.get('std', 0.0):.{digits}f}"
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return f"{float(value):.{digits}f}"
    return str(value)


def format_metrics_table(
    rows: Mapping[str, Mapping[str, Any]],
    keys: Sequence[str] | None = None,
    digits: int = 4,
    label: str = "run",
) -> str:
    """Markdown table with one row per entry of ``rows`` (name → metrics).

    Parameters
    ----------
    rows : mapping of str to mapping
        Row name → metrics; values may be floats (from :func:`va_metrics`) or
        ``{"mean", "std"}`` dicts (from :func:`aggregate`, shown as ``mean ± std``).
    keys : sequence of str, optional
        Columns; default: the known metric keys in canonical order followed by any others.
    digits : int, default 4
        Decimals of every number.
    label : str, default "run"
        Header of the name column.

    Returns
    -------
    str
        The table; missing cells are left blank.
    """
    cols = list(keys) if keys is not None else _ordered_keys(rows.values())
    lines = [
        "| " + " | ".join([label, *cols]) + " |",
        "|" + "|".join(["---"] * (len(cols) + 1)) + "|",
    ]
    for name, row in rows.items():
        cells = [_cell(row.get(c), digits) for c in cols]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)
