"""From cached uint8 faces to model inputs, and train-time augmentation.

Batches travel as uint8 NHWC (four times smaller than float) and become float NCHW on the
device: :class:`Preprocess` converts and normalises, :func:`augment` applies a random
resized crop and horizontal flip to a whole float batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocess:
    """uint8 (N, H, W, 3) or (H, W, 3) → float32 (N, 3, S, S) or (3, S, S), normalised.

    Pixels are scaled to [0, 1], resized to ``image_size`` (bilinear with antialiasing) when
    the input size differs, then normalised per channel: ``(x - mean) / std``. Tensors stay on
    their device.
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std need one value per RGB channel")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @classmethod
    def from_config(cls, preprocess: dict) -> Preprocess:
        """From a run's ``config.json`` ``preprocess`` section (``margin`` is ignored here)."""
        return cls(preprocess["image_size"], preprocess["mean"], preprocess["std"])

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}

    def __call__(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
        single = x.ndim == 3
        if single:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(
                f"expected uint8 images (N, H, W, 3), got {x.dtype} of shape {tuple(x.shape)}"
            )
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear",
                align_corners=False, antialias=True,
            )
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x[0] if single else x.contiguous()

    def __repr__(self) -> str:
        return f"Preprocess(image_size={self.image_size}, mean={self.mean}, std={self.std})"


def augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.85, 1.0),
    flip: bool = True,
) -> torch.Tensor:
    """Random square resized crop and horizontal flip of a float batch (N, C, H, W).

    Each sample keeps a square covering a fraction ``s ~ U(scale)`` of the image area, at a
    uniformly random position, resized back to H×W (one batched ``grid_sample``); with
    ``flip`` it is mirrored with probability 1/2. The random numbers come from ``generator``
    (on its own device), so a seeded generator reproduces the batch exactly.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
    n = x.shape[0]
    if n == 0:
        return x
    gen_device: Any = generator.device if generator is not None else "cpu"
    u = torch.rand(n, 4, generator=generator, device=gen_device).to(x.device, torch.float32)
    side = torch.sqrt(lo + (hi - lo) * u[:, 0])  # fraction of the width / height kept
    cx = (1 - side) * (2 * u[:, 1] - 1)  # crop centre in [-1, 1] coordinates
    cy = (1 - side) * (2 * u[:, 2] - 1)
    sign = torch.where(u[:, 3] < 0.5, -1.0, 1.0) if flip else torch.ones_like(side)
    theta = torch.zeros(n, 2, 3, dtype=torch.float32, device=x.device)
    theta[:, 0, 0] = side * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = side
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
