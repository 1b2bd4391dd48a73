"""The VA head f_θ of Eq. 5: an affine map from features z ∈ R^d to (valence, arousal)."""

from __future__ import annotations

import torch
from torch import nn

from elim.errors import ElimError

HEAD_OUTPUTS = ("linear", "tanh")


class VAHead(nn.Module):
    """f_θ(z) = γᵀz + β with θ = {γ ∈ R^{d×2}, β ∈ R²} (Eq. 5).

    ``output="linear"`` (default) returns the affine map itself, as Eq. 5 states; ``"tanh"``
    squashes it into (-1, 1), the range of the VA labels of every dataset the paper uses.
    The same head maps both plain features z (L_va, inference) and the identity-normalised
    features ẑ of Eq. 4 (L_main).
    """

    def __init__(self, feature_dim: int, output: str = "linear") -> None:
        super().__init__()
        if output not in HEAD_OUTPUTS:
            raise ElimError(
                f"unknown head_output {output!r}; choose one of {', '.join(HEAD_OUTPUTS)}"
            )
        self.linear = nn.Linear(int(feature_dim), 2)
        self.output = output

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.linear(z)
        return torch.tanh(y) if self.output == "tanh" else y

    def extra_repr(self) -> str:
        return f"output={self.output!r}"
