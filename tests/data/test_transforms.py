"""Batched train-time augmentation of float face batches."""

from __future__ import annotations

import pytest
import torch

from elim.data.transforms import FaceAugment, augment


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


# ---------------------------------------------------------------- FaceAugment (the recipe)
def _faces(n=8, size=16, seed=3):
    """Normalised faces (mean = std = 0.5) of random pixels."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _off(**on):
    base = {"scale": (1.0, 1.0), "flip": False, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    return FaceAugment(**{**base, **on})


def test_everything_off_is_the_identity_and_every_option_is_seeded():
    x = _faces()
    assert torch.allclose(_off()(x, torch.Generator().manual_seed(0)), x, atol=1e-5)
    full = FaceAugment((0.6, 1.0), rotate=15, translate=0.1, brightness=0.2, contrast=0.3,
                       gamma=0.3, blur=0.5, grey=0.5, jpeg=0.5, mean=(0.5,) * 3, std=(0.5,) * 3)
    a, b = (full(x, torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
    assert a.min() >= -1 - 1e-5 and a.max() <= 1 + 1e-5  # pixels stay in [0, 1]


def test_grey_makes_the_three_channels_equal():
    out = _off(grey=1.0)(_faces(), torch.Generator().manual_seed(1))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)
    assert torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_brightness_moves_the_mean_within_its_range():
    x = torch.zeros(64, 3, 8, 8)  # mid-grey in [0, 1]
    out = _off(brightness=0.2)(x, torch.Generator().manual_seed(2))
    shift = (out * 0.5 + 0.5 - 0.5).mean(dim=(1, 2, 3))
    assert shift.abs().max() <= 0.2 + 1e-5 and shift.std() > 0.05


def test_blur_smooths_and_jpeg_keeps_the_face():
    x = _faces(4, 24)
    blurred = _off(blur=1.0)(x, torch.Generator().manual_seed(3))
    assert blurred.diff(dim=-1).abs().mean() < 0.8 * x.diff(dim=-1).abs().mean()
    smooth = torch.linspace(-1, 1, 24).expand(4, 3, 24, 24).contiguous()
    jpeg = _off(jpeg=1.0)(smooth, torch.Generator().manual_seed(4))
    assert not torch.equal(jpeg, smooth) and (jpeg - smooth).abs().mean() < 0.05


def test_rotation_turns_a_bar():
    bar = -torch.ones(1, 3, 33, 33)
    bar[..., 16, :] = 1.0  # a horizontal line through the centre
    out = _off(rotate=45)(bar.expand(32, 3, 33, 33).contiguous(), torch.Generator().manual_seed(5))
    row = (out[:, 0, 16, :] > 0).float().mean(dim=1)  # how much of the centre row stays lit
    assert row.min() < 0.5 and torch.allclose(out[:, :, 16, 16], torch.ones(32, 3), atol=0.2)


def test_from_config_uses_every_field():
    from elim.config import AugmentConfig

    cfg = AugmentConfig(scale=[0.5, 0.9], rotate=7, translate=0.05, flip=False, brightness=0.1,
                        contrast=0.2, gamma=0.3, blur=0.4, grey=0.5, jpeg=0.6)
    aug = FaceAugment.from_config(cfg, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert (aug.scale, aug.rotate, aug.translate, aug.flip) == ((0.5, 0.9), 7, 0.05, False)
    assert (aug.brightness, aug.contrast, aug.gamma, aug.blur, aug.grey, aug.jpeg) == (
        0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    assert aug.mean == (0.1, 0.2, 0.3) and aug.std == (0.4, 0.5, 0.6)
