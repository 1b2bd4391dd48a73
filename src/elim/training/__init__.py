"""Training, evaluation and cross-validation of ELIM and its baseline (Lightning engine).

``fit`` (one run → run directory), ``resume`` (continue an interrupted run), ``cross_validate``
(subject-independent k-fold CV over methods × seeds), ``ElimModule`` (the LightningModule),
``FaceDataModule`` (its data), the callbacks and the schedules live in the submodules; this
package re-exports the first ones.
"""

from __future__ import annotations

from elim.training.datamodule import FaceDataModule
from elim.training.fit import FitResult, fit, resume
from elim.training.module import ElimModule
from elim.training.schedule import lr_factor, warmup_weight

__all__ = [
    "ElimModule",
    "FaceDataModule",
    "FitResult",
    "fit",
    "lr_factor",
    "resume",
    "warmup_weight",
]
