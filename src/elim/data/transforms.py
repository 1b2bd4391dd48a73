"""Train-time augmentation of float face batches.

Batches travel as uint8 NHWC (four times smaller than float) and become float NCHW on the
device with :class:`elim.models.Preprocess`; :func:`augment` then applies a random resized crop
and horizontal flip to a whole float batch at once.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


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
