"""Every registered backbone (plus one timm model): shapes, gradients, determinism, sizes."""

from __future__ import annotations

import pytest
import torch
from model_cases import TIMM_TINY, smallest_input

from elim.errors import ElimError
from elim.models import backbone_defaults, build_model, create_backbone, list_backbones

ALL = [*list_backbones(), TIMM_TINY]

#: stated parameter ranges of backbone + head (d = 64); every registered name must have one
PARAM_RANGES = {
    "alexnet-light": (2.4e6, 2.8e6),
    "resnet18": (11e6, 12e6),
    "mixer": (55e6, 62e6),
    "cnn-small": (1e5, 1e6),
    TIMM_TINY: (4e6, 6e6),
}


def test_registry_holds_the_paper_backbones():
    assert {"alexnet-light", "resnet18", "mixer", "cnn-small"} <= set(list_backbones())


@pytest.mark.parametrize("name", ALL)
def test_features_shape_finite_and_gradient_reaches_first_layer(name, built):
    net = built(name).train()
    net.zero_grad(set_to_none=True)
    x = smallest_input(net, batch=2)
    z = net(x)
    assert z.shape == (2, 64)
    assert torch.isfinite(z).all()
    # a random projection: a plain sum of BN outputs would have zero gradient by construction
    w = torch.randn(z.shape, generator=torch.Generator().manual_seed(2))
    (z * w).sum().backward()
    first = next(p for p in net.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0
    net.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_initialised(name, built):
    for pname, p in built(name).named_parameters():
        assert torch.isfinite(p).all(), pname
        if p.ndim > 1:  # weights: a real random init, not zeros or left-over memory
            assert 0 < p.std() < 1, pname


@pytest.mark.parametrize("name", ALL)
def test_eval_mode_is_deterministic(name, built):
    net = built(name).eval()
    x = smallest_input(net, batch=1)
    with torch.no_grad():
        a, b = net(x), net(x)
    assert a.shape == (1, 64)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_in_stated_range(name, built):
    assert name in PARAM_RANGES, f"state a parameter range for new backbone {name!r}"
    lo, hi = PARAM_RANGES[name]
    n = sum(p.numel() for p in built(name).parameters()) + 64 * 2 + 2  # + head f_θ
    assert lo <= n <= hi, n


@pytest.mark.parametrize("name", ALL)
def test_defaults_are_usable_preprocessing(name, built):
    d = backbone_defaults(name)
    assert set(d) == {"image_size", "mean", "std"}
    assert len(d["mean"]) == 3 and len(d["std"]) == 3 and min(d["std"]) > 0
    net = built(name)
    assert d["image_size"] >= net.min_size
    if net.fixed_size is not None:
        assert d["image_size"] == net.fixed_size


def test_exact_parameter_counts_documented(built):
    counts = {n: sum(p.numel() for p in built(n).parameters()) for n in list_backbones()}
    assert counts == {
        "alexnet-light": 2_609_216,
        "resnet18": 11_209_408,
        "mixer": 59_160_752,
        "cnn-small": 249_504,
    }


@pytest.mark.parametrize("size", [64, 77, 112])
def test_alexnet_light_accepts_any_size_from_64(size, built):
    net = built("alexnet-light").eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, size, size)).shape == (1, 64)


def test_alexnet_light_rejects_too_small_images(built):
    with pytest.raises(ElimError, match="at least 64"):
        built("alexnet-light").eval()(torch.zeros(1, 3, 48, 48))


def test_mixer_takes_224_only(built):
    with pytest.raises(ElimError, match="224"):
        built("mixer").eval()(torch.zeros(1, 3, 112, 112))


def test_mixer_defaults_follow_timm():
    import timm

    cfg = timm.get_pretrained_cfg("mixer_b16_224")
    d = backbone_defaults("mixer")
    assert (d["image_size"], d["mean"], d["std"]) == (224, tuple(cfg.mean), tuple(cfg.std))


def test_timm_family_uses_timm_defaults():
    assert backbone_defaults(TIMM_TINY)["image_size"] == 176


def test_wrong_channel_count_is_reported(built):
    with pytest.raises(ElimError, match=r"\(B, 3, S, S\)"):
        built("cnn-small").eval()(torch.zeros(2, 1, 64, 64))


def test_training_batch_of_one_is_reported_with_batchnorm_features(built):
    with pytest.raises(ElimError, match="at least 2"):
        built("cnn-small").train()(torch.zeros(1, 3, 32, 32))
    relu = create_backbone("cnn-small", feature_activation="relu").train()
    assert relu(torch.zeros(1, 3, 32, 32)).shape == (1, 64)


@pytest.mark.parametrize(
    ("activation", "non_negative"),
    [("bn-relu", True), ("relu", True), ("bn", False), ("linear", False)],
)
def test_feature_activation(activation, non_negative):
    torch.manual_seed(0)
    net = create_backbone("cnn-small", feature_dim=16, feature_activation=activation).train()
    x = torch.randn(8, 3, 32, 32)
    z = net(x)
    assert bool((z >= 0).all()) is non_negative
    if activation.startswith("bn"):  # batch-normalised pre-activations: zero mean over the batch
        pre = net.neck[:-1](net.trunk(x)) if non_negative else z
        assert torch.allclose(pre.mean(0), torch.zeros(16), atol=1e-5)


def test_unknown_feature_activation():
    with pytest.raises(ElimError, match="bn-relu"):
        create_backbone("cnn-small", feature_activation="gelu")


def test_feature_dim_is_configurable():
    net = build_model({"backbone": "cnn-small", "feature_dim": 7}).eval()
    x = torch.zeros(3, 3, 16, 16)
    assert net.features(x).shape == (3, 7) and net(x).shape == (3, 2)
