"""The registered backbones f_φ (images → z ∈ R^d).

Parameter counts below are for d = 64 with the default options (feature layer BN + ReLU;
the f_θ head of Eq. 5 adds 2·d + 2 = 130 more):

- ``alexnet-light`` (2,609,216): torchvision AlexNet conv stack (2,469,696) → adaptive average
  pool to 2×2 → Dropout → Linear(1024, 128) → ReLU → Dropout → Linear(128, d) → BN → ReLU.
  The paper's light "AL-tuned" backbone (Table 1: 2.6 M).
- ``resnet18`` (11,209,408): torchvision ResNet-18 without its fc (11,176,512) → Linear(512, d)
  → BN → ReLU (Table 1's 11.7 M includes the ImageNet fc).
- ``mixer`` (59,160,752): timm ``mixer_b16_224`` with ``num_classes=0`` (59,111,472) →
  Linear(768, d) → BN → ReLU; 224×224 input only (Table 1: 59.1 M).
- ``cnn-small`` (249,504): 4 blocks Conv3×3 → BN → ReLU with 32-64-128-128 channels and a
  2×2 max-pool between blocks → global average pool → Linear(128, d) → BN → ReLU. Fast on CPU.
- ``timm:<model>``: any timm model with ``num_classes=0`` → Linear(num_features, d) → BN → ReLU.

Feature layer (``feature_activation``, default ``"bn-relu"``): z = ReLU(BN(W h)) is
non-negative, as in the authors' AlexNet/ResNet encoders. With z ≥ 0 the dot products behind
the relevance weights of Eq. 8 are never negative (the ReLU there clips nothing, and a weight is
zero only when two features share no active unit), and the cosine costs 1 − cos(z_i, z_j) of the
matching lie in [0, 1], so one Sinkhorn ε means the same thing for every backbone. BatchNorm
keeps every unit's batch statistics comparable, so few units die. ``"relu"``, ``"bn"`` and
``"linear"`` (signed z, as the authors' Mixer) are available for ablations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from elim.errors import ElimError
from elim.models.layers import Backbone
from elim.models.pretrained import create_timm_model, load_torchvision_weights
from elim.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    register_backbone,
    register_family,
)

MIXER_MODEL = "mixer_b16_224"
MIXER_MEAN = (0.5, 0.5, 0.5)
MIXER_STD = (0.5, 0.5, 0.5)
TIMM_PREFIX = "timm:"


@register_backbone(
    "alexnet-light",
    image_size=112,
    summary="AlexNet conv stack + 2x2 pool + 1024-128-d neck (about 2.6 M, the paper's AL-tuned)",
)
def alexnet_light(
    feature_dim: int = 64,
    pretrained: bool = False,
    *,
    pool_size: int = 2,
    hidden: int = 128,
    dropout: float = 0.5,
    feature_activation: str = "bn-relu",
) -> Backbone:
    """AlexNet convolutional stack with a light neck (the paper's "AL-tuned", Table 1).

    The stack's output is average-pooled to a ``pool_size``² grid: 2×2 is the stack's native
    output at 112 px, and adaptive pooling lets any input of at least 64 px through.
    """
    from torchvision.models import AlexNet_Weights, alexnet

    # build on the meta device so that the unused 57 M-parameter classifier is never
    # initialised, then materialise and initialise the convolutions alone
    with torch.device("meta"):
        features = alexnet().features
    features = features.to_empty(device="cpu")
    for layer in features.modules():
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()
    if pretrained:
        load_torchvision_weights("alexnet-light", AlexNet_Weights.IMAGENET1K_V1, features,
                                 prefix="features.")
    trunk = nn.Sequential(features, nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(1))
    return Backbone(
        "alexnet-light",
        trunk,
        256 * pool_size * pool_size,
        feature_dim,
        hidden=hidden,
        dropout=dropout,
        feature_activation=feature_activation,
        min_size=64,
    )


@register_backbone(
    "resnet18", image_size=112, summary="torchvision ResNet-18 trunk + Linear(512, d)"
)
def resnet18(
    feature_dim: int = 64,
    pretrained: bool = False,
    *,
    dropout: float = 0.0,
    feature_activation: str = "bn-relu",
) -> Backbone:
    """ResNet-18 (He et al.) with its ImageNet classifier replaced by the feature neck."""
    from torchvision.models import ResNet18_Weights
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None)
    if pretrained:
        load_torchvision_weights("resnet18", ResNet18_Weights.IMAGENET1K_V1, net)
    width = net.fc.in_features
    net.fc = nn.Identity()
    return Backbone(
        "resnet18",
        net,
        width,
        feature_dim,
        dropout=dropout,
        feature_activation=feature_activation,
        min_size=32,
    )


@register_backbone(
    "mixer",
    image_size=224,
    mean=MIXER_MEAN,
    std=MIXER_STD,
    summary="MLP-Mixer B/16 (timm mixer_b16_224) + Linear(768, d); 224x224 only",
)
def mixer(
    feature_dim: int = 64,
    pretrained: bool = False,
    *,
    dropout: float = 0.0,
    feature_activation: str = "bn-relu",
) -> Backbone:
    """MLP-Mixer B/16 (Tolstikhin et al.) through timm; its token mixing fixes the input at 224."""
    return _timm_backbone(
        MIXER_MODEL,
        feature_dim,
        pretrained,
        dropout=dropout,
        feature_activation=feature_activation,
        name="mixer",
    )


@register_backbone(
    "cnn-small",
    image_size=64,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    summary="4-block CNN 32-64-128-128 (about 0.25 M), fast on CPU at 48-64 px",
)
def cnn_small(
    feature_dim: int = 64,
    pretrained: bool = False,
    *,
    channels: tuple[int, ...] = (32, 64, 128, 128),
    dropout: float = 0.0,
    feature_activation: str = "bn-relu",
) -> Backbone:
    """Small CNN trained from scratch: blocks of Conv3×3-BN-ReLU, max-pooling between blocks.

    The last block is followed by global average pooling instead of max-pooling, so any input
    of at least 2^(blocks−1) pixels works. Its inputs are scaled to [-1, 1] (mean = std = 0.5).
    """
    if pretrained:
        raise ElimError("backbone 'cnn-small' has no pretrained weights; drop --pretrained")
    layers: list[nn.Module] = []
    width = 3
    for i, out in enumerate(channels):
        layers += [
            nn.Conv2d(width, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        ]
        if i < len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        width = out
    trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return Backbone(
        "cnn-small",
        trunk,
        width,
        feature_dim,
        dropout=dropout,
        feature_activation=feature_activation,
        min_size=2 ** (len(channels) - 1),
    )


def _timm_defaults(model: str) -> dict[str, Any]:
    cfg = _timm_cfg(model)
    if cfg is None:
        return {"image_size": 224, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    return {"image_size": int(cfg.input_size[-1]), "mean": tuple(cfg.mean), "std": tuple(cfg.std)}


def _timm_cfg(model: str) -> Any:
    import timm

    if not timm.is_model(model):
        raise ElimError(
            f"unknown timm model {model!r} (backbone {TIMM_PREFIX}{model}); list the choices "
            'with python -c "import timm; print(timm.list_models())"'
        )
    return timm.get_pretrained_cfg(model)


@register_family(TIMM_PREFIX, _timm_defaults, summary="any timm model + Linear(num_features, d)")
def timm_backbone(
    model: str,
    feature_dim: int = 64,
    pretrained: bool = False,
    *,
    dropout: float = 0.0,
    feature_activation: str = "bn-relu",
    **timm_options: Any,
) -> Backbone:
    """Any timm model without its classifier (``num_classes=0``); extra options go to timm."""
    return _timm_backbone(
        model,
        feature_dim,
        pretrained,
        dropout=dropout,
        feature_activation=feature_activation,
        name=f"{TIMM_PREFIX}{model}",
        **timm_options,
    )


def _timm_backbone(
    model: str,
    feature_dim: int,
    pretrained: bool,
    *,
    dropout: float,
    feature_activation: str,
    name: str,
    **timm_options: Any,
) -> Backbone:
    import timm

    cfg = _timm_cfg(model)
    fixed = bool(cfg is not None and cfg.fixed_input_size)
    try:
        if pretrained:
            net = create_timm_model(name, model, cfg, num_classes=0, **timm_options)
        else:
            net = timm.create_model(model, pretrained=False, num_classes=0, **timm_options)
    except TypeError as exc:
        raise ElimError(f"backbone {name!r}: timm rejected an option ({exc})") from exc
    return Backbone(
        name,
        net,
        int(net.num_features),
        feature_dim,
        dropout=dropout,
        feature_activation=feature_activation,
        min_size=32,
        fixed_size=_side(timm_options.get("img_size", cfg.input_size[-1])) if fixed else None,
    )


def _side(size: Any) -> int:
    """Side of a square image size given as an int or an (H, W) / (C, H, W) tuple."""
    return int(size[-1]) if isinstance(size, (tuple, list)) else int(size)
