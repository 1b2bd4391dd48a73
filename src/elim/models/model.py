"""ElimModel (f_θ ∘ f_φ) and its construction from a JSON-able config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from elim.errors import ElimError
from elim.models.head import HEAD_OUTPUTS, VAHead
from elim.models.registry import backbone_options, create_backbone

_CORE_KEYS = ("backbone", "feature_dim", "pretrained", "head_output")


class ElimModel(nn.Module):
    """Backbone f_φ (images → z ∈ R^d) followed by the VA head f_θ (Eq. 5).

    Inference uses only these two maps; the identity matching of Eqs. 3–4 acts on the
    features during training (``elim.matching``) and then calls :meth:`predict_head`.
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Module, config: Mapping[str, Any] | None = None
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = int(backbone.feature_dim)
        self.config: dict[str, Any] = dict(config or {})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z = f_φ(x): (B, 3, S, S) float images → (B, d)."""
        return self.backbone(x)

    def predict_head(self, z: torch.Tensor) -> torch.Tensor:
        """ŷ = f_θ(z): (..., d) features (plain or identity-normalised) → (..., 2) VA."""
        return self.head(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ŷ = f_θ(f_φ(x)): (B, 3, S, S) → (B, 2) valence, arousal."""
        return self.head(self.backbone(x))


def model_config(
    backbone: str,
    feature_dim: int = 64,
    pretrained: bool = False,
    head_output: str = "linear",
    **backbone_kwargs: Any,
) -> dict[str, Any]:
    """The model section of a run's ``config.json``: validated, with every backbone option
    resolved to its value (so a later change of a default cannot change a saved model)."""
    if isinstance(feature_dim, bool) or int(feature_dim) != feature_dim or feature_dim < 1:
        raise ElimError(f"feature_dim must be a positive integer, got {feature_dim!r}")
    if head_output not in HEAD_OUTPUTS:
        raise ElimError(
            f"unknown head_output {head_output!r}; choose one of {', '.join(HEAD_OUTPUTS)}"
        )
    options = backbone_options(backbone, **backbone_kwargs)
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    return {
        "backbone": backbone,
        "feature_dim": int(feature_dim),
        "pretrained": bool(pretrained),
        "head_output": head_output,
        **options,
    }


def build_model(cfg: Mapping[str, Any]) -> ElimModel:
    """Build an :class:`ElimModel` from a model config (see :func:`model_config`).

    Keys: ``backbone`` (registry name), ``feature_dim``, ``pretrained``, ``head_output`` and any
    backbone options. Loading saved weights should pass ``pretrained=False``.
    """
    if "backbone" not in cfg:
        raise ElimError('model config has no \'backbone\'; add e.g. {"backbone": "cnn-small"}')
    full = model_config(**cfg)
    options = {k: v for k, v in full.items() if k not in _CORE_KEYS}
    f_phi = create_backbone(
        full["backbone"], feature_dim=full["feature_dim"], pretrained=full["pretrained"], **options
    )
    f_theta = VAHead(full["feature_dim"], output=full["head_output"])
    return ElimModel(f_phi, f_theta, config=full)
