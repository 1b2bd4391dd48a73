"""Registry behaviour: names, options, errors, custom registration (pretrained weights:
test_pretrained.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from elim.errors import ElimError
from elim.models import (
    Backbone,
    backbone_defaults,
    backbone_options,
    create_backbone,
    list_backbones,
    register_backbone,
    registry,
)


def test_unknown_name_lists_choices():
    with pytest.raises(ElimError) as err:
        create_backbone("vgg99")
    msg = str(err.value)
    assert "vgg99" in msg
    for name in [*list_backbones(), "timm:<model>"]:
        assert name in msg
    with pytest.raises(ElimError, match="vgg99"):
        backbone_defaults("vgg99")


def test_bare_timm_prefix_is_unknown():
    with pytest.raises(ElimError, match="unknown backbone"):
        create_backbone("timm:")


def test_unknown_timm_model():
    with pytest.raises(ElimError, match="unknown timm model 'no_such_net'"):
        create_backbone("timm:no_such_net")


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(ElimError, match="no option 'depth'.*channels, dropout, feature_activation"):
        create_backbone("cnn-small", depth=3)


def test_options_resolve_every_default():
    assert backbone_options("alexnet-light") == {
        "pool_size": 2,
        "hidden": 128,
        "dropout": 0.5,
        "feature_activation": "bn-relu",
    }
    assert backbone_options("alexnet-light", dropout=0.1)["dropout"] == 0.1
    # the timm family forwards extra options to timm
    assert backbone_options("timm:resnet10t", drop_rate=0.2)["drop_rate"] == 0.2


def test_register_backbone(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_backbone("toy", image_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    def toy(feature_dim: int = 64, pretrained: bool = False, *, width: int = 4) -> Backbone:
        trunk = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(3, width))
        return Backbone("toy", trunk, width, feature_dim, feature_activation="linear", min_size=1)

    assert "toy" in list_backbones()
    assert backbone_defaults("toy") == {"image_size": 8, "mean": (0.0,) * 3, "std": (1.0,) * 3}
    assert create_backbone("toy", feature_dim=5, width=6)(torch.zeros(2, 3, 8, 8)).shape == (2, 5)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("toy", image_size=8)(toy)


def test_cnn_small_has_no_pretrained_weights():
    with pytest.raises(ElimError, match="drop --pretrained"):
        create_backbone("cnn-small", pretrained=True)


def test_timm_rejected_option_is_an_elim_error():
    with pytest.raises(ElimError, match="timm rejected"):
        create_backbone("timm:resnet10t", not_an_option=1)
