"""Checking and batching the inputs of an OT solve: costs, masses and padding masks.

Every solver of :mod:`elim.ot` takes the same inputs: a cost of shape (n, m) or (B, n, m), optional
masses ``a`` (B, n), ``b`` (B, m) and optional boolean masks (True = real entry). Problems of
unequal sizes share one batch through padding: a row (column) is padding when its mask is False
OR its mass is 0. Masses default to uniform over the real entries. Padded cost entries may hold
anything (even NaN); they are replaced by 0 and never reach the solution. A batch of B = 0
problems is valid: every solver returns an empty result for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from elim.errors import ElimError

#: Largest relative gap between the total masses of a and b that is silently rebalanced.
MASS_RTOL = 1e-4


@dataclass(frozen=True)
class Problem:
    """A validated batch of B balanced OT problems, padded to a common (n, m)."""

    cost: Tensor  # (B, n, m), 0 on padding
    a: Tensor  # (B, n), 0 on padding
    b: Tensor  # (B, m), 0 on padding, same total mass as a
    mask_a: Tensor  # (B, n) bool, True = real
    mask_b: Tensor  # (B, m) bool
    mask: Tensor | None  # (B, n, m) bool, row and column both real; None without padding
    batched: bool  # False when the cost came in as (n, m)
    scale: float  # max |C_ij| over all real entries of the batch (0.0 for an empty batch)

    @property
    def mass(self) -> Tensor:
        """(B,) total mass of each problem."""
        return self.a.sum(-1)

    @property
    def size(self) -> int:
        """Number of problems B (0 for an empty batch)."""
        return int(self.cost.shape[0])

    def to(self, dtype: torch.dtype) -> Problem:
        """The same problem with cost and masses in ``dtype`` (on the autograd graph)."""
        return replace(self, cost=self.cost.to(dtype), a=self.a.to(dtype), b=self.b.to(dtype))


def _tensor(x: object, device: torch.device | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x if device is None else x.to(device)
    return torch.as_tensor(np.asarray(x), device=device)


def _float_cost(cost: object) -> Tensor:
    """Cost as a float32/float64 tensor (half precision and integers are promoted)."""
    cost = _tensor(cost)
    if cost.dtype in (torch.float16, torch.bfloat16):
        return cost.float()
    if not cost.is_floating_point():
        return cost.to(torch.get_default_dtype())
    return cost


def _vector(
    x: object | None, name: str, batch: int, size: int, device: torch.device
) -> Tensor | None:
    """(size,) or (batch, size) input → (batch, size) tensor on ``device``."""
    if x is None:
        return None
    t = _tensor(x, device)
    if t.dim() == 1:
        t = t.unsqueeze(0).expand(batch, -1)
    if t.shape != (batch, size):
        raise ElimError(
            f"{name} must have shape ({size},) or ({batch}, {size}) to match the cost; "
            f"got {tuple(t.shape)}"
        )
    return t


def prepare(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
) -> Problem:
    """Validate the inputs and bring them to the batched, padded form of :class:`Problem`.

    Parameters
    ----------
    cost : Tensor or array-like
        (n, m) or (B, n, m) costs; half precision and integers are promoted to float32.
    a, b : Tensor, optional
        Masses (n,) / (B, n) and (m,) / (B, m); default uniform over the real entries.
    mask_a, mask_b : Tensor, optional
        Boolean (B, n) / (B, m) masks, True on real entries.

    Returns
    -------
    Problem
        The batch, padded entries zeroed; ``scale`` = max |C| over the real entries.

    Raises
    ------
    ElimError
        For wrong shapes, negative or non-finite masses, non-finite costs on real entries, a
        problem without any real row or column, or total masses of a and b that differ by more
        than ``MASS_RTOL`` (relative). Smaller gaps are removed by rescaling b, so that the
        balanced problem is feasible.
    """
    cost = _float_cost(cost)
    if cost.dim() not in (2, 3):
        raise ElimError(f"cost must have shape (n, m) or (B, n, m); got {tuple(cost.shape)}")
    batched = cost.dim() == 3
    if not batched:
        cost = cost.unsqueeze(0)
    n_batch, n, m = cost.shape
    if n == 0 or m == 0:
        raise ElimError(f"cost has an empty side: shape {tuple(cost.shape)}")

    masks, masses = [], []
    for name, mass, mask, size in (("a", a, mask_a, n), ("b", b, mask_b, m)):
        mask_t, mass_t = _side(name, mass, mask, n_batch, size, cost)
        masks.append(mask_t)
        masses.append(mass_t)
    (mask_a_t, mask_b_t), (a_t, b_t) = masks, masses
    padded = any(x is not None for x in (a, b, mask_a, mask_b)) and not bool(
        mask_a_t.all() & mask_b_t.all()
    )

    if (a is not None or b is not None) and n_batch > 0:
        sum_a, sum_b = a_t.sum(-1), b_t.sum(-1)
        gap = (sum_a - sum_b).abs() / torch.maximum(sum_a, sum_b)
        if bool((gap > MASS_RTOL).any()):
            worst = int(gap.argmax())
            raise ElimError(
                f"a and b must carry the same total mass (problem {worst}: "
                f"{float(sum_a[worst]):.6g} vs {float(sum_b[worst]):.6g}); normalise both, "
                "e.g. a / a.sum(-1, keepdim=True)"
            )
        b_t = b_t * (sum_a / sum_b).unsqueeze(-1)

    mask = None
    if padded:
        mask = mask_a_t.unsqueeze(-1) & mask_b_t.unsqueeze(-2)
        cost = cost.masked_fill(~mask, 0.0)
    # One reduction gives both the scale and the finiteness test (NaN propagates through it).
    scale = 0.0
    if n_batch > 0:
        low, high = torch.aminmax(cost.detach())
        scale = max(-float(low), float(high))
    if not math.isfinite(scale):
        raise ElimError("cost must be finite on real (unmasked) entries (NaN or inf found)")
    return Problem(
        cost=cost, a=a_t, b=b_t, mask_a=mask_a_t, mask_b=mask_b_t, mask=mask, batched=batched,
        scale=scale,
    )


def _side(
    name: str, mass: object | None, mask: object | None, n_batch: int, size: int, cost: Tensor
) -> tuple[Tensor, Tensor]:
    """Mask and masses of one side (``name`` is "a" or "b"), padding folded into the mask."""
    mask_t = _vector(mask, f"mask_{name}", n_batch, size, cost.device)
    if mask_t is None:
        mask_t = torch.ones(n_batch, size, dtype=torch.bool, device=cost.device)
    else:
        mask_t = mask_t.bool()
    mass_t = _vector(mass, name, n_batch, size, cost.device)
    if mass_t is None:
        if mask is None:
            return mask_t, torch.full(
                (n_batch, size), 1.0 / size, dtype=cost.dtype, device=cost.device
            )
        mass_t = mask_t.to(cost.dtype)
        mass_t = mass_t / mass_t.sum(-1, keepdim=True).clamp_min(1)
    else:
        mass_t = mass_t.to(cost.dtype)
        if not bool((torch.isfinite(mass_t) & (mass_t >= 0)).all()):
            raise ElimError(f"{name} must hold finite, non-negative masses")
        mask_t = mask_t & (mass_t > 0)
        mass_t = mass_t.masked_fill(~mask_t, 0.0)
    empty = ~mask_t.any(-1)
    if bool(empty.any()):
        first = int(torch.nonzero(empty)[0, 0])
        side = "row" if name == "a" else "column"
        raise ElimError(
            f"OT problem {first} has no real {side} (all masked or zero mass in {name}); "
            "drop empty problems before solving"
        )
    return mask_t, mass_t


def row_marginal_error(row_sums: Tensor, a: Tensor, mass: Tensor) -> Tensor:
    """(B,) relative L1 error of the row marginal: sum_i |row_i - a_i| / mass.

    ``row_sums`` and ``a`` have shape (B, n) or (B, n, 1)."""
    return (row_sums - a).abs().flatten(1).sum(-1) / mass


def transport_cost(cost: Tensor, plan: Tensor) -> Tensor:
    """(B,) <C, P> per problem, as one batched dot product."""
    n_batch = cost.shape[0]
    # (B, 1, nm) @ transposed (B, 1, nm): this layout takes torch's fast batched-gemv path.
    rows = plan.reshape(n_batch, 1, -1).transpose(1, 2)
    return torch.bmm(cost.reshape(n_batch, 1, -1), rows).reshape(n_batch)
