"""elim: identity-invariant valence-arousal FER with optimal-transport identity matching.

Implements ELIM (Kim & Song, "Optimal Transport-based Identity Matching for
Identity-invariant Facial Expression Recognition", NeurIPS 2022).
"""

from __future__ import annotations

__version__ = "0.1.0"

from elim.errors import CheckpointError, DataError, ElimError

__all__ = ["__version__", "ElimError", "DataError", "CheckpointError"]
