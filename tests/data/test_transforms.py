"""Batched train-time augmentation of float face batches."""

from __future__ import annotations

import pytest
import torch

from elim.data.transforms import augment


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
