"""Per-iteration schedules: the step-decay learning rate and the warm-up weight w(t) of L_main.

Sec. 5.1 of the paper decays the learning rate by 0.8 after the first 5 K iterations and then
every 20 K iterations; :func:`lr_factor` generalises this to (``decay``, ``first``, ``every``).
:func:`cosine_factor` is the alternative used by the short small-data presets.
The weight of L_main ramps linearly from ``start`` to 1 over the first ``warmup_steps`` steps
(:func:`warmup_weight`), so that identity matching starts on features that already carry some
expression information (the reference code gates its ELIM step the same way).
"""

from __future__ import annotations

import math

__all__ = ["cosine_factor", "lr_factor", "warmup_weight"]


def lr_factor(step: int, decay: float = 0.8, first: int = 5000, every: int = 20000) -> float:
    """Multiplier of the base learning rate at iteration ``step`` (0-based).

    ``decay**n`` with ``n = 0`` before ``first``, then ``1 + (step − first) // every``
    (``every <= 0``: a single decay at ``first``; ``first <= 0``: no decay at all).
    """
    if first <= 0 or step < first:
        return 1.0
    n = 1 if every <= 0 else 1 + (step - first) // every
    return float(decay) ** n


def cosine_factor(step: int, total: int, final: float = 0.0) -> float:
    """Cosine annealing multiplier from 1 (step 0) to ``final`` (step ``total``), then ``final``.

    An alternative to the paper's step decay for short small-data runs, where the last epoch
    should be a converged one (``train.lr_schedule = "cosine"``).
    """
    if total <= 0:
        return 1.0
    t = min(max(step, 0), total) / total
    return float(final) + (1.0 - float(final)) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_weight(step: int, warmup_steps: int, start: float = 0.0) -> float:
    """Weight of L_main at iteration ``step``: linear from ``start`` (step 0) to 1 at
    ``warmup_steps``, then 1. ``warmup_steps <= 0`` gives 1 from the first step."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return float(start) + (1.0 - float(start)) * step / warmup_steps
