"""Named random generators of a training process (augmentation, identity matching).

Each name has its own ``torch.Generator`` per device, seeded from the run seed, the name and the
process rank: process 0 of a multi-process run draws exactly what a single process draws, and
process r > 0 is offset by r × :data:`RANK_SEED_STRIDE`. Their states go into the training
checkpoint (:meth:`NamedGenerators.state_dict`), so a resumed run continues the same streams.
"""

from __future__ import annotations

import torch

__all__ = ["RANK_SEED_STRIDE", "NamedGenerators"]

RANK_SEED_STRIDE = 1_000_003  # generator seeds of process r: the rank-0 seed + r * stride
_OFFSETS = {"augment": 1, "matching": 2}  # any other name: 3


class NamedGenerators:
    """``get(name, device)`` → the generator of ``name`` on ``device`` (created on first use).

    Parameters
    ----------
    seed
        The run seed (``config.seed``).
    rank
        The process rank (0 in a single process).
    """

    def __init__(self, seed: int, rank: int = 0) -> None:
        self.seed = int(seed)
        self.rank = int(rank)
        self._generators: dict[str, torch.Generator] = {}

    def get(self, name: str, device: torch.device | str) -> torch.Generator:
        """The generator of ``name`` on ``device``."""
        device = torch.device(device)
        key = f"{name}@{device}"
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            offset = _OFFSETS.get(name, 3)
            gen.manual_seed(self.seed * 1000 + offset + self.rank * RANK_SEED_STRIDE)
            self._generators[key] = gen
        return gen

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``"name@device"`` → generator state (a uint8 tensor)."""
        return {key: gen.get_state() for key, gen in self._generators.items()}

    def load_state_dict(self, states: dict[str, torch.Tensor]) -> None:
        """Continue the generators of :meth:`state_dict`."""
        for key, state in states.items():
            name, _, device = key.partition("@")
            self.get(name, device).set_state(state)
