"""Building blocks shared by every backbone: the feature neck and the f_φ wrapper.

A backbone f_φ is a *trunk* (image → pooled vector of width ``trunk_dim``) followed by a
:func:`feature_neck` (vector → feature z ∈ R^d, the space where identity matching of Eqs. 3, 4
and 8 happens). Wrapping every trunk the same way keeps the input checks and the feature layer
identical across architectures.
"""

from __future__ import annotations

import torch
from torch import nn

from elim.errors import ElimError

#: Feature-layer choices (the last layers of f_φ, producing z):
#: ``bn-relu`` BatchNorm1d then ReLU (z ≥ 0, the default), ``relu`` (z ≥ 0), ``bn`` (centred,
#: signed), ``linear`` (plain affine output).
FEATURE_ACTIVATIONS = ("bn-relu", "relu", "bn", "linear")


def feature_neck(
    in_dim: int,
    out_dim: int,
    *,
    hidden: int | None = None,
    dropout: float = 0.0,
    activation: str = "bn-relu",
) -> nn.Sequential:
    """Projection from the trunk's pooled vector to the d-dimensional feature z.

    ``[Dropout] → Linear(in, hidden) → ReLU`` (only when ``hidden`` is set), then
    ``[Dropout] → Linear(·, d)`` and the feature activation. The last Linear drops its bias when
    BatchNorm follows (the BN shift replaces it).
    """
    if activation not in FEATURE_ACTIVATIONS:
        raise ElimError(
            f"unknown feature_activation {activation!r}; choose one of "
            f"{', '.join(FEATURE_ACTIVATIONS)}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ElimError(f"dropout must lie in [0, 1), got {dropout}")
    layers: list[nn.Module] = []
    width = in_dim
    if hidden:
        layers += _dropout(dropout) + [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    use_bn = activation.startswith("bn")
    layers += _dropout(dropout) + [nn.Linear(width, out_dim, bias=not use_bn)]
    if use_bn:
        layers.append(nn.BatchNorm1d(out_dim))
    if activation.endswith("relu"):
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


class Backbone(nn.Module):
    """f_φ: ``trunk`` (B, 3, H, W) → (B, trunk_dim), then ``neck`` → z (B, d).

    ``min_size`` is the smallest side the trunk accepts; ``fixed_size`` (when set) is the only
    side it accepts (models with learned position/token mixing such as MLP-Mixer). Inputs are
    checked so that a wrong image size fails with a message naming the fix.
    """

    def __init__(
        self,
        name: str,
        trunk: nn.Module,
        trunk_dim: int,
        feature_dim: int,
        *,
        hidden: int | None = None,
        dropout: float = 0.0,
        feature_activation: str = "bn-relu",
        min_size: int = 32,
        fixed_size: int | None = None,
    ) -> None:
        super().__init__()
        if int(feature_dim) < 1:
            raise ElimError(f"feature_dim must be a positive integer, got {feature_dim}")
        self.name = name
        self.trunk = trunk
        self.neck = feature_neck(
            trunk_dim,
            int(feature_dim),
            hidden=hidden,
            dropout=dropout,
            activation=feature_activation,
        )
        self.has_batchnorm = any(isinstance(m, nn.BatchNorm1d) for m in self.neck)
        self.trunk_dim = trunk_dim
        self.feature_dim = int(feature_dim)
        self.min_size = min_size
        self.fixed_size = fixed_size

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`ElimError` when ``x`` is not a batch of images this trunk accepts."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ElimError(
                f"backbone {self.name!r} expects float images of shape (B, 3, S, S), "
                f"got {tuple(x.shape)}"
            )
        h, w = int(x.shape[2]), int(x.shape[3])
        if self.fixed_size is not None and (h, w) != (self.fixed_size, self.fixed_size):
            raise ElimError(
                f"backbone {self.name!r} takes {self.fixed_size}×{self.fixed_size} images only, "
                f"got {h}×{w}; set the image size to {self.fixed_size}"
            )
        if min(h, w) < self.min_size:
            raise ElimError(
                f"backbone {self.name!r} needs images of at least {self.min_size}×{self.min_size}, "
                f"got {h}×{w}; raise the image size"
            )
        if self.training and self.has_batchnorm and x.shape[0] < 2:
            raise ElimError(
                f"backbone {self.name!r} got a training batch of one image; its BatchNorm feature "
                "layer needs at least 2 (drop the last partial batch, or use "
                "feature_activation='relu' or 'linear')"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input(x)
        return self.neck(self.trunk(x))
