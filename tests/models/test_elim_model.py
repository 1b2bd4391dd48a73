"""ElimModel, the VA head f_θ (Eq. 5), model_config and build_model."""

from __future__ import annotations

import json

import pytest
import torch

from elim.errors import ElimError
from elim.models import ElimModel, VAHead, build_model, model_config


def _batch(size: int, n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_model_config_resolves_and_is_json():
    cfg = model_config("cnn-small", feature_dim=32)
    assert cfg == {
        "backbone": "cnn-small",
        "feature_dim": 32,
        "pretrained": False,
        "head_output": "linear",
        "channels": [32, 64, 128, 128],
        "dropout": 0.0,
        "feature_activation": "bn-relu",
    }
    assert json.loads(json.dumps(cfg)) == cfg


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"backbone": "cnn-small", "feature_dim": 0}, "feature_dim"),
        ({"backbone": "cnn-small", "feature_dim": 2.5}, "feature_dim"),
        ({"backbone": "cnn-small", "head_output": "sigmoid"}, "linear, tanh"),
        ({"backbone": "cnn-small", "colour": 1}, "no option 'colour'"),
        ({"feature_dim": 64}, "no 'backbone'"),
    ],
)
def test_bad_configs(cfg, match):
    with pytest.raises(ElimError, match=match):
        build_model(cfg)


@pytest.mark.parametrize("backbone", ["cnn-small", "alexnet-light"])
def test_build_model_round_trip_through_state_dict_and_json(backbone):
    torch.manual_seed(0)
    model = build_model({"backbone": backbone, "feature_dim": 16}).eval()
    config = json.loads(json.dumps(model.config))
    torch.manual_seed(1)
    again = build_model({**config, "pretrained": False}).eval()
    x = _batch(64)
    assert not torch.equal(model(x), again(x))
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.config == model.config


def test_state_dict_saves_with_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = build_model({"backbone": "cnn-small", "feature_dim": 8}).eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    again = build_model(model.config).eval()
    again.load_state_dict(load_file(tmp_path / "model.safetensors"))
    x = _batch(32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_elim_model_parts_compose():
    torch.manual_seed(0)
    model = build_model({"backbone": "cnn-small", "feature_dim": 12}).eval()
    assert isinstance(model, ElimModel) and model.feature_dim == 12
    assert model.config["backbone"] == "cnn-small"
    x = _batch(32)
    with torch.no_grad():
        z = model.features(x)
        assert z.shape == (4, 12)
        assert torch.equal(model(x), model.predict_head(z))
        assert torch.equal(model.head(z), model.predict_head(z))


def test_head_is_affine_d_to_2():
    torch.manual_seed(0)
    head = VAHead(6)
    assert [p.shape for p in head.parameters()] == [(2, 6), (2,)]
    z1, z2 = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    head = head.double()
    a = 0.3
    mixed = head(a * z1 + (1 - a) * z2)
    assert torch.allclose(mixed, a * head(z1) + (1 - a) * head(z2))
    assert torch.allclose(head(z1), z1 @ head.linear.weight.T + head.linear.bias)


def test_tanh_head_bounds_output():
    torch.manual_seed(0)
    linear, tanh = VAHead(4), VAHead(4, output="tanh")
    tanh.load_state_dict(linear.state_dict())
    z = 100 * torch.randn(10, 4)
    out = tanh(z)
    assert out.abs().max() <= 1
    assert torch.allclose(out, torch.tanh(linear(z)))
    model = build_model({"backbone": "cnn-small", "head_output": "tanh"})
    assert model.head.output == "tanh"
