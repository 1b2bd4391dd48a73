"""The model's input transform: uint8 faces → normalised float tensors.

Batches travel as uint8 NHWC (four times smaller than float) and become float NCHW on the
device. The preprocessing of a model (size, mean, std) is recorded in its run's ``config.json``
(``preprocess`` section) and replayed exactly at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from elim.models.registry import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["Preprocess"]


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
