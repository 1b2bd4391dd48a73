"""Models: backbone registry f_φ, VA head f_θ (Eq. 5), ElimModel, build_model, the input
transform (Preprocess) and the one batched inference loop (infer)."""

from __future__ import annotations

from elim.models import backbones as _backbones  # noqa: F401  (registers the backbones)
from elim.models.head import HEAD_OUTPUTS, VAHead
from elim.models.inference import infer
from elim.models.layers import FEATURE_ACTIVATIONS, Backbone, feature_neck
from elim.models.model import ElimModel, build_model, model_config
from elim.models.preprocess import Preprocess
from elim.models.registry import (
    backbone_defaults,
    backbone_options,
    create_backbone,
    list_backbones,
    register_backbone,
)

__all__ = [
    "FEATURE_ACTIVATIONS",
    "HEAD_OUTPUTS",
    "Backbone",
    "ElimModel",
    "Preprocess",
    "VAHead",
    "backbone_defaults",
    "backbone_options",
    "build_model",
    "create_backbone",
    "feature_neck",
    "infer",
    "list_backbones",
    "model_config",
    "register_backbone",
]
