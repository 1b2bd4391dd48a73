"""Analyses of trained models (paper Sec. 5): identity-invariance measures, the OT ablation
(Table 4), the number-of-identities study (Fig. 6), figures (Figs. 3-6) and reports.

Submodules: ``invariance`` (probe, distance ratio), ``measure`` (both on trained runs),
``rundata`` (a run with the faces it is analysed on), ``ablation``, ``identities``,
``figures``, ``report`` (+ ``markdown``), ``store`` (resumable result folders), ``environment``.
"""

from elim.analysis.invariance import distance_ratio, identity_probe

__all__ = ["distance_ratio", "identity_probe"]
