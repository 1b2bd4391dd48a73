"""Analyses of trained models (paper Sec. 5): identity-invariance measures, the OT ablation
(Table 4), the number-of-identities study (Fig. 6), figures (Figs. 3-6) and reports.

Submodules: ``invariance`` (probe, distance ratio), ``measure`` (both on trained runs, opened
with :mod:`elim.evaluation`), ``ablation``, ``identities``, ``figures`` (data) and ``plots``
(drawing), ``report`` (+ ``markdown``), ``environment``.
"""

from elim.analysis.invariance import distance_ratio, identity_probe

__all__ = ["distance_ratio", "identity_probe"]
