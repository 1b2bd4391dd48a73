"""Analyses of trained models: identity-invariance measures and figures (paper Sec. 5, Figs. 3-6)."""

from elim.analysis.invariance import distance_ratio, identity_probe

__all__ = ["identity_probe", "distance_ratio"]
