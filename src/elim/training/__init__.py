"""Training, evaluation and cross-validation of ELIM and its baseline (Lightning engine).

``fit`` (one run → run directory), ``resume`` (continue an interrupted run), ``evaluate_run``
(a saved run on a dataset split), ``cross_validate`` (subject-independent k-fold CV over
methods × seeds), ``ElimModule`` (the LightningModule) and the schedules live in the
submodules; this package re-exports them.
"""

from __future__ import annotations

from elim.training.fit import FitResult, fit, resume
from elim.training.module import ElimModule
from elim.training.schedule import lr_factor, warmup_weight

__all__ = [
    "ElimModule",
    "FitResult",
    "fit",
    "lr_factor",
    "resume",
    "warmup_weight",
]
