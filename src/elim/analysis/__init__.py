"""Analyses of trained runs and of studies (paper Sec. 5): they read results and draw them, and
train nothing (the studies that train live in :mod:`elim.studies`).

Submodules: ``invariance`` (identity probe and distance ratio, on feature arrays and on trained
runs opened with :mod:`elim.evaluation`), ``ablation`` (the Table 4 grid and its table),
``identities`` (the Fig. 6 study's table and figure), ``figures`` (data of Figs. 3-6) and
``plots`` (drawing), ``report`` (+ ``markdown``).
"""

from elim.analysis.invariance import distance_ratio, identity_probe

__all__ = ["distance_ratio", "identity_probe"]
