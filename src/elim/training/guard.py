"""Guarding the optimiser against non-finite losses and gradients.

A training step whose loss (L_va or L_main) or whose gradients are not finite is skipped —
no parameter or optimiser state changes — and counted with where it happened (epoch, batch,
identities), so one bad batch cannot poison the weights with NaN. After ``max_consecutive``
bad steps in a row training stops with an :class:`~elim.errors.ElimError` naming the last one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from elim.errors import ElimError

__all__ = ["NonFiniteGuard", "TrainingDiverged"]


class TrainingDiverged(ElimError):
    """Too many consecutive training steps had a non-finite loss or gradient."""


class NonFiniteGuard:
    """Counts skipped steps by cause (``L_va``, ``L_main``, ``gradient``) and consecutive runs."""

    def __init__(self, max_consecutive: int = 20, max_examples: int = 10) -> None:
        self.max_consecutive = int(max_consecutive)
        self.max_examples = int(max_examples)
        self.counts: Counter = Counter()
        self.consecutive = 0
        self.examples: list[str] = []

    @property
    def skipped(self) -> int:
        return int(sum(self.counts.values()))

    def bad(self, cause: str, where: str) -> str:
        """Record a skipped step; returns its message. Raises :class:`TrainingDiverged` when
        ``max_consecutive`` steps in a row were bad (``max_consecutive <= 0``: never)."""
        self.counts[cause] += 1
        self.consecutive += 1
        message = f"non-finite {cause} at {where}; step skipped ({self.skipped} so far)"
        if len(self.examples) < self.max_examples:
            self.examples.append(message)
        if 0 < self.max_consecutive <= self.consecutive:
            raise TrainingDiverged(
                f"training stopped: {self.consecutive} consecutive steps with a non-finite loss "
                f"or gradient (last: {message}); lower the learning rate, set --grad-clip, or "
                "check the labels and images of those identities"
            )
        return message

    def good(self) -> None:
        self.consecutive = 0

    def summary(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped, "by_cause": dict(sorted(self.counts.items())),
                "examples": list(self.examples)}

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "consecutive": self.consecutive,
                "examples": list(self.examples)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = Counter({str(k): int(v) for k, v in state.get("counts", {}).items()})
        self.consecutive = int(state.get("consecutive", 0))
        self.examples = [str(e) for e in state.get("examples", [])]
