"""Paired differences with a 95 % Student-t interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from elim.analysis.paired import format_paired, paired


def test_paired_matches_a_one_sample_t_interval():
    a = np.array([0.61, 0.55, 0.70, 0.66, 0.58])
    b = np.array([0.60, 0.50, 0.66, 0.67, 0.52])
    res = paired(a, b)
    d = a - b
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert res["mean"] == pytest.approx(d.mean())
    assert (res["low"], res["high"]) == (pytest.approx(low), pytest.approx(high))
    assert res["n"] == 5 and res["wins"] == 4 and res["std"] == pytest.approx(d.std(ddof=1))
    assert format_paired(res).startswith(f"{d.mean():+.3f} [")


def test_one_pair_and_bad_input():
    assert paired([0.5], [0.25]) == {"mean": 0.25, "low": 0.25, "high": 0.25, "std": 0.0,
                                     "n": 1, "wins": 1}
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])
