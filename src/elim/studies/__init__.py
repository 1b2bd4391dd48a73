"""Studies: experiments that train many models and record what they measure (paper Sec. 5).

- :mod:`elim.studies.ablation` — the OT ablation of Table 4: every cell of the grid of
  :mod:`elim.analysis.ablation` cross-validated with :func:`elim.training.cv.cross_validate`,
  and the matching layer timed;
- :mod:`elim.studies.identities` — test CCC as the number of training identities grows (Fig. 6).

Their results are resumable folders (:class:`elim.runs.ResultStore`); the tables and figures of
those results are drawn by :mod:`elim.analysis`, which trains nothing.
"""
