"""Preprocess (uint8 NHWC → normalised float NCHW) and batched augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elim.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess, augment


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


def _batch(n=6, size=12):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


def test_augment_is_seeded_and_keeps_shape():
    x = _batch()
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    c = augment(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_augment_without_crop_or_flip_is_the_identity():
    x = _batch()
    out = augment(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), flip=False)
    assert torch.allclose(out, x, atol=1e-5)


def test_flip_only_mirrors_some_samples():
    x = _batch(16)
    out = augment(x, torch.Generator().manual_seed(1), scale=(1.0, 1.0), flip=True)
    same = [torch.allclose(o, s, atol=1e-5) for o, s in zip(out, x)]
    mirrored = [torch.allclose(o, s.flip(-1), atol=1e-5) for o, s in zip(out, x)]
    assert all(a or b for a, b in zip(same, mirrored))
    assert 0 < sum(mirrored) < 16


def test_crop_zooms_in():
    # a horizontal ramp: a crop of a fraction s of the width spans a range of about s
    ramp = torch.linspace(0, 1, 64).expand(4, 3, 64, 64).contiguous()
    out = augment(ramp, torch.Generator().manual_seed(2), scale=(0.49, 0.49), flip=False)
    span = out[:, 0, 32, -1] - out[:, 0, 32, 0]
    assert torch.allclose(span, torch.full((4,), 0.7), atol=0.03)


def test_augment_rejects_bad_scale():
    with pytest.raises(ValueError):
        augment(_batch(), scale=(0.0, 1.0))
