"""Paired differences with a 95 % interval: method A − method B over the same seeds (or folds).

Two methods trained on the same data with the same seeds share everything but the method, so
their per-seed difference removes the seed-to-seed spread that both share. :func:`paired`
reports its mean, a two-sided 95 % Student-t interval over the pairs (mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n;
for one pair the interval is the point) and how often A is higher.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["format_paired", "paired"]


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float | int]:
    """Mean of a − b over aligned pairs, its 95 % t-interval, sd (ddof = 1), n and wins of a.

    Parameters
    ----------
    a, b : sequence of float
        Aligned values (the same seeds / folds in the same order).

    Returns
    -------
    dict
        ``{"mean", "low", "high", "std", "n", "wins"}`` (wins: pairs with a > b).
    """
    from scipy.stats import t

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"paired needs two aligned non-empty 1-D sequences; got {x.shape}, "
                         f"{y.shape}")
    d = x - y
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    half = float(t.ppf(0.975, len(d) - 1) * sd / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "std": sd, "n": len(d),
            "wins": int((d > 0).sum())}


def format_paired(p: dict[str, float | int], digits: int = 3) -> str:
    """``+0.012 [−0.004, +0.028]`` (mean and 95 % interval)."""
    return f"{p['mean']:+.{digits}f} [{p['low']:+.{digits}f}, {p['high']:+.{digits}f}]"
