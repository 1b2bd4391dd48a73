"""Optimal transport for ELIM's identity matching (paper Sec. 4.1, Eq. 2, Appendix A).

* :func:`sinkhorn`: batched log-domain entropic OT, all problems of a mini-batch in one call;
* :func:`exact`: unregularised OT by network simplex (POT) or a QP layer (qpth);
* :func:`solve`: one entry point over both;
* :class:`OTResult`: plan, dual potentials, value, iterations, convergence, marginal error.

Inputs: cost (n, m) or (B, n, m); masses a (B, n), b (B, m) (default uniform over real entries);
masks ``mask_a``/``mask_b`` (True = real). Rows/columns with mask False or zero mass are padding.
"""

from elim.ot.exact import exact
from elim.ot.result import OTResult
from elim.ot.sinkhorn import sinkhorn
from elim.ot.solve import solve

__all__ = ["OTResult", "exact", "sinkhorn", "solve"]
