"""elim: identity-invariant valence-arousal FER with optimal-transport identity matching.

Implements ELIM (D. Kim and B. C. Song, "Optimal Transport-based Identity Matching for
Identity-invariant Facial Expression Recognition", NeurIPS 2022).

The public API is re-exported here and imported lazily (PEP 562), so ``import elim`` stays
cheap and tools that need only the data layer do not load torch:

>>> import elim
>>> model = elim.load("runs/my-run")            # doctest: +SKIP
>>> table = model.predict(["face.jpg"])         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from elim.errors import CheckpointError, DataError, ElimError

# public name -> module that defines it
_EXPORTS = {
    # optimal transport (Sec. 4.1, Appendix A)
    "OTResult": "elim.ot",
    # identity matching (Eqs. 3, 4, 7, 8)
    "IdentityMatching": "elim.matching",
    "MatchingOutput": "elim.matching",
    # losses and metrics
    "va_loss": "elim.losses",
    "main_loss": "elim.losses",
    "va_metrics": "elim.metrics",
    # models
    "build_model": "elim.models",
    "create_backbone": "elim.models",
    "list_backbones": "elim.models",
    "ElimModel": "elim.models",
    # data
    "read_dataset": "elim.datasets",
    "list_datasets": "elim.datasets",
    "open_dataset": "elim.datasets",
    "FaceCache": "elim.data.cache",
    "IdentityBatchSampler": "elim.data.sampler",
    # training
    "Config": "elim.config",
    "fit": "elim.training",
    "cross_validate": "elim.training.cv",
    "load_run": "elim.runs",
    "save_run": "elim.runs",
    # inference
    "load": "elim.inference.predictor",
    "predict_video": "elim.inference.predictor",
    "ElimPredictor": "elim.inference.predictor",
}

__all__ = ["__version__", "ElimError", "DataError", "CheckpointError", "ot", *_EXPORTS.keys()]  # noqa: PLE0604


def __getattr__(name: str) -> Any:
    if name == "ot":  # the subpackage: elim.ot.solve / sinkhorn / exact
        return importlib.import_module("elim.ot")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'elim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
