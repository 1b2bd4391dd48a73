"""Preprocess (uint8 NHWC → normalised float NCHW) and the one batched inference loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elim.models import build_model, infer, model_config
from elim.models.preprocess import Preprocess
from elim.models.registry import IMAGENET_MEAN, IMAGENET_STD


def test_preprocess_scales_normalises_and_transposes():
    img = np.zeros((2, 4, 4, 3), np.uint8)
    img[0, :, :, 0] = 255
    img[1, 1, 2, :] = 51
    pre = Preprocess(4, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    x = pre(img)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0], torch.ones(4, 4))  # (1 - 0.5) / 0.5
    assert torch.allclose(x[0, 1], torch.full((4, 4), -1.0))  # (0 - 0.25) / 0.25
    assert x[1, 2, 1, 2].item() == pytest.approx(0.2)  # 51 / 255
    assert torch.equal(pre(torch.from_numpy(img)), x)  # tensors and arrays agree
    assert torch.equal(pre(img[1]), x[1])  # a single image keeps its rank


def test_preprocess_resizes_when_sizes_differ():
    img = np.full((3, 10, 10, 3), 128, np.uint8)
    x = Preprocess(6)(img)
    assert x.shape == (3, 3, 6, 6)
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[:, :, 2, 3], expected.expand(3, 3), atol=1e-5)


def test_preprocess_round_trips_through_its_config():
    pre = Preprocess(32, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    again = Preprocess.from_config({**pre.to_dict(), "margin": 0.2})
    assert again.to_dict() == pre.to_dict()
    with pytest.raises(ValueError):
        Preprocess(8, std=(1, 0, 1))
    with pytest.raises(ValueError, match="uint8"):
        pre(np.zeros((1, 32, 32, 3), np.float32))  # float input would be scaled twice


def test_infer_matches_the_model_in_order_and_restores_train_mode():
    torch.manual_seed(0)
    model = build_model(model_config("cnn-small", feature_dim=8, channels=[4, 8]))
    model.train()
    pre = Preprocess(16, (0.5,) * 3, (0.5,) * 3)
    faces = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    va, z = infer(model, pre, [faces[:3], faces[3:3], faces[3:]], features=True)
    assert model.training  # the caller's mode is back
    model.eval()
    with torch.no_grad():
        want_z = model.features(pre(faces))
        want = model.predict_head(want_z)
    assert va.shape == (7, 2) and z.shape == (7, 8) and va.dtype == np.float32
    np.testing.assert_allclose(va, want.numpy(), atol=1e-5)
    np.testing.assert_allclose(z, want_z.numpy(), atol=1e-5)
    empty, none = infer(model, pre, [])
    assert empty.shape == (0, 2) and none is None
