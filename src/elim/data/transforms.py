"""Train-time augmentation of float face batches.

Batches travel as uint8 NHWC (four times smaller than float) and become float NCHW on the
device with :class:`elim.models.Preprocess`; :class:`FaceAugment` then randomises a whole
normalised batch at once, as configured by :class:`elim.config.AugmentConfig`:

1. geometric — ONE batched affine warp (``affine_grid`` + ``grid_sample``, border pixels
   replicated): a random square crop keeping a fraction ~U(scale) of the area at a random
   position, a rotation, an extra shift and a horizontal flip;
2. photometric, on [0, 1] pixels (the batch is un-normalised with the preprocessing's mean and
   std and normalised again): brightness, contrast about each face's mean, gamma, then with
   their probabilities a 3×3 Gaussian blur, a conversion to grey (ITU-R BT.601 luma) and a JPEG
   re-compression (quality 40–95, OpenCV).

Every random number comes from the ``generator`` passed in (on its own device): a fixed number
of draws per face, so a seeded generator reproduces the batch exactly and a resumed run draws
what an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from elim.config import AugmentConfig

__all__ = ["FaceAugment", "augment"]

_LUMA = (0.299, 0.587, 0.114)
_JPEG_QUALITY = (40, 95)
_DRAWS = 14  # uniform numbers drawn per face (fixed, whatever is switched on)


class FaceAugment:
    """Random geometric + photometric augmentation of normalised (N, C, H, W) float batches.

    Parameters
    ----------
    scale : (low, high)
        Fraction of the face's area kept by the random square crop, 0 < low <= high <= 1.
    rotate, translate : float
        Rotation range ±``rotate`` degrees; extra shift ±``translate`` of the side.
    flip : bool
        Mirror with probability 1/2.
    brightness, contrast, gamma : float
        Offset ±``brightness`` on [0, 1] pixels; contrast factor 1 ± ``contrast``; gamma
        exp(±``gamma``).
    blur, grey, jpeg : float
        Probabilities of a 3×3 Gaussian blur, of grey, of a JPEG re-compression.
    mean, std : per-channel sequences
        The normalisation of the batches (``Preprocess``), undone for the photometric part.
    """

    def __init__(
        self,
        scale: Sequence[float] = (0.77, 1.0),
        rotate: float = 0.0,
        translate: float = 0.0,
        flip: bool = True,
        brightness: float = 0.0,
        contrast: float = 0.0,
        gamma: float = 0.0,
        blur: float = 0.0,
        grey: float = 0.0,
        jpeg: float = 0.0,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        lo, hi = float(scale[0]), float(scale[1])
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        for name, value in (("blur", blur), ("grey", grey), ("jpeg", jpeg)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        self.scale = (lo, hi)
        self.rotate, self.translate, self.flip = float(rotate), float(translate), bool(flip)
        self.brightness, self.contrast, self.gamma = float(brightness), float(contrast), float(gamma)
        self.blur, self.grey, self.jpeg = float(blur), float(grey), float(jpeg)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @classmethod
    def from_config(cls, config: AugmentConfig, mean: Sequence[float], std: Sequence[float]
                    ) -> FaceAugment:
        """The augmentation of ``config`` (an :class:`elim.config.AugmentConfig`) for batches
        normalised with ``mean`` / ``std``."""
        from dataclasses import asdict

        settings = {k: v for k, v in asdict(config).items() if k != "enabled"}
        return cls(**settings, mean=mean, std=std)

    @property
    def photometric(self) -> bool:
        return any((self.brightness, self.contrast, self.gamma, self.blur, self.grey, self.jpeg))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
        n = x.shape[0]
        if n == 0:
            return x
        device: Any = generator.device if generator is not None else "cpu"
        u = torch.rand(n, _DRAWS, generator=generator, device=device).to(x.device, torch.float32)
        x = self._warp(x, u)
        if not self.photometric:
            return x
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        p = (x * std + mean).clamp(0, 1)
        p = self._photometric(p, u)
        return (p - mean) / std

    # -- geometric ----------------------------------------------------------------------------
    def _warp(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        lo, hi = self.scale
        side = torch.sqrt(lo + (hi - lo) * u[:, 0])  # fraction of the width / height kept
        angle = (2 * u[:, 1] - 1) * math.radians(self.rotate)
        cx = (1 - side) * (2 * u[:, 2] - 1) + 2 * self.translate * (2 * u[:, 3] - 1)
        cy = (1 - side) * (2 * u[:, 4] - 1) + 2 * self.translate * (2 * u[:, 5] - 1)
        sign = torch.where(u[:, 6] < 0.5, -1.0, 1.0) if self.flip else torch.ones_like(side)
        cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
        theta = torch.zeros(x.shape[0], 2, 3, dtype=torch.float32, device=x.device)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * sign, -sin, cx
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * sign, cos, cy
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # -- photometric (pixels in [0, 1]) -----------------------------------------------------
    def _photometric(self, p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        n = p.shape[0]
        shape = (n, 1, 1, 1)
        if self.brightness or self.contrast or self.gamma:
            offset = ((2 * u[:, 7] - 1) * self.brightness).view(shape)
            factor = (1 + (2 * u[:, 8] - 1) * self.contrast).view(shape)
            power = torch.exp((2 * u[:, 9] - 1) * self.gamma).view(shape)
            centre = p.mean(dim=(1, 2, 3), keepdim=True)
            p = ((p - centre) * factor + centre + offset).clamp(1e-6, 1) ** power
        chosen = u[:, 10] < self.blur
        if chosen.any():
            p = torch.where(chosen.view(shape), _blur3(p), p)
        chosen = u[:, 11] < self.grey
        if chosen.any() and p.shape[1] == 3:
            luma = torch.tensor(_LUMA, dtype=p.dtype, device=p.device).view(1, 3, 1, 1)
            grey = (p * luma).sum(dim=1, keepdim=True).expand_as(p)
            p = torch.where(chosen.view(shape), grey, p)
        if self.jpeg:
            p = self._jpeg(p, u)
        return p

    def _jpeg(self, p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """JPEG re-compression of the faces drawn (``u[:, 12] < jpeg``), each at a quality from
        ``u[:, 13]``; OpenCV encode/decode of uint8 images on the CPU."""
        import numpy as np

        from elim.deps import cv2

        if p.shape[1] not in (1, 3):
            return p
        draws = u[:, 12:14].cpu()  # one transfer: which faces, at which quality
        chosen = torch.nonzero(draws[:, 0] < self.jpeg).flatten()
        if len(chosen) == 0:
            return p
        lo, hi = _JPEG_QUALITY
        qualities = [round(lo + (hi - lo) * q) for q in draws[chosen, 1].tolist()]
        faces = (p[chosen.to(p.device)] * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        faces = faces.cpu().numpy()  # one transfer of the chosen faces (N, H, W, C)
        back = np.empty_like(faces)
        for j, (face, quality) in enumerate(zip(faces, qualities)):
            _, data = cv2.imencode(".jpg", np.ascontiguousarray(face[..., ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
            decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            back[j] = decoded[..., None] if decoded.ndim == 2 else decoded[..., ::-1]
        out = p.clone()
        out[chosen.to(p.device)] = torch.from_numpy(back).permute(0, 3, 1, 2).to(
            p.device, p.dtype) / 255
        return out


def _blur3(p: torch.Tensor) -> torch.Tensor:
    """3×3 binomial (Gaussian σ ≈ 0.85 px) blur per channel, edges replicated."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=p.dtype, device=p.device)
    kernel = (k[:, None] * k[None, :] / 16).expand(p.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(p, (1, 1, 1, 1), mode="replicate"), kernel, groups=p.shape[1])


def augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.77, 1.0),
    flip: bool = True,
) -> torch.Tensor:
    """Random square resized crop and horizontal flip of a float batch (N, C, H, W): the
    geometric part of :class:`FaceAugment` alone (the paper's augmentation)."""
    return FaceAugment(scale, flip=flip)(x, generator)
