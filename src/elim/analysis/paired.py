"""Paired differences with a 95 % interval: method A − method B over the same seeds (or folds).

Two methods trained on the same data with the same seeds share everything but the method, so
their per-seed difference removes the seed-to-seed spread that both share. :func:`paired`
reports its mean, a two-sided 95 % Student-t interval over the pairs (mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n;
for one pair the interval is the point) and how often A is higher. :func:`paired_cv` pairs the
fits of two ``elim cv`` folders by (seed, fold) (``elim analyze paired``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from elim.errors import ElimError

__all__ = ["format_paired", "paired", "paired_cv"]


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


def paired_cv(a: tuple[str | Path, str], b: tuple[str | Path, str], metric: str = "ccc_mean"
              ) -> dict[str, Any]:
    """A − B paired by (seed, fold) between two ``elim cv`` folders (or one, two methods).

    Parameters
    ----------
    a, b : (folder, method)
        Each a results folder holding ``cv.json`` and the method whose fits to take.
    metric : str
        A test metric of the fits (:data:`elim.metrics.METRIC_KEYS`).

    Returns
    -------
    dict
        ``{"a", "b", "metric", "pairs": [(seed, fold), ...], **paired(...)}``.

    Raises
    ------
    ElimError
        When a folder has no ``cv.json``, the two were made with other folds or fold seeds or
        on other data, or no (seed, fold) is in both.
    """
    from elim.fileio import read_json

    sides = []
    for folder, method in (a, b):
        path = Path(folder) / "cv.json"
        if not path.is_file():
            raise ElimError(f"{path}: not found; pass folders written by `elim cv`")
        cv = read_json(path)
        fits = {(r["seed"], r["fold"]): r["test"][metric] for r in cv["runs"]
                if r["method"] == method}
        if not fits:
            raise ElimError(f"{path}: no fit of method {method!r} (methods: "
                            f"{', '.join(cv['methods'])})")
        where = {k: cv["settings"].get(k) for k in ("folds", "fold_seed", "val_fraction")}
        sides.append((fits, {**where, "dataset": cv.get("dataset"), "root": cv.get("root")}))
    if sides[0][1] != sides[1][1]:
        raise ElimError(f"the two cross-validations differ ({sides[0][1]} vs {sides[1][1]}): "
                        "their fits cannot be paired")
    keys = sorted(set(sides[0][0]) & set(sides[1][0]))
    if not keys:
        raise ElimError("no (seed, fold) was fitted in both folders")
    return {"a": f"{a[0]}:{a[1]}", "b": f"{b[0]}:{b[1]}", "metric": metric,
            "pairs": [list(k) for k in keys],
            **paired([sides[0][0][k] for k in keys], [sides[1][0][k] for k in keys])}
