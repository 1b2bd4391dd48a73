"""Training losses for valence–arousal regression.

* ``L_va`` (Algorithm 1, line 8): supervision of the un-normalised predictions with
  MSE + (1 − PCC) + (1 − CCC), the usual VA objective.
* ``L_main`` (Eq. 6): MSE between f_θ(Ẑ) of the matched, normalised target features and their labels.

Conventions, shared with :mod:`elim.metrics`:

* tensors are ``(N, 2)`` with columns (valence, arousal);
* the MSE term is the **sum over the two dimensions** of the per-dimension mean squared error,
  ``MSE_v + MSE_a`` (equivalently 2 × the mean over all N·2 entries);
* PCC and CCC use population statistics (ddof = 0) and are averaged over the two dimensions, so
  ``pcc_loss = 1 − (PCC_v + PCC_a)/2`` and ``ccc_loss = 1 − (CCC_v + CCC_a)/2``;
* ``eps`` enters only the denominators: PCC = cov / (sqrt(var_p + eps)·sqrt(var_t + eps)),
  CCC = 2·cov / (var_p + var_t + (mean_p − mean_t)² + eps). With a constant prediction the
  covariance is 0, so both are 0 (loss 1) and the gradient stays finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ccc", "ccc_loss", "main_loss", "mse", "pcc", "pcc_loss", "va_loss"]

DEFAULT_EPS = 1e-8


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(
            f"pred and target must both be (N, D) with the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Sum over dimensions of the per-dimension mean squared error (``MSE_v + MSE_a``).

    Returns a zero that still carries ``pred``'s graph when N = 0.
    """
    _check(pred, target)
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    return (pred - target).pow(2).mean(dim=0).sum()


def _moments(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-dimension means, population variances (ddof = 0) and covariance."""
    mp, mt = pred.mean(dim=0), target.mean(dim=0)
    dp, dt = pred - mp, target - mt
    return mp, mt, dp.pow(2).mean(dim=0), dt.pow(2).mean(dim=0), (dp * dt).mean(dim=0)


def pcc(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Per-dimension Pearson correlation (ddof = 0), shape (D,)."""
    _check(pred, target)
    _, _, vp, vt, cov = _moments(pred, target)
    return cov / (torch.sqrt(vp + eps) * torch.sqrt(vt + eps))


def ccc(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Per-dimension concordance correlation coefficient (ddof = 0), shape (D,)."""
    _check(pred, target)
    mp, mt, vp, vt, cov = _moments(pred, target)
    return 2.0 * cov / (vp + vt + (mp - mt).pow(2) + eps)


def pcc_loss(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """``1 − mean_D PCC``."""
    return 1.0 - pcc(pred, target, eps).mean()


def ccc_loss(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """``1 − mean_D CCC``."""
    return 1.0 - ccc(pred, target, eps).mean()


def va_loss(
    pred: Tensor,
    y: Tensor,
    w_mse: float = 1.0,
    w_pcc: float = 1.0,
    w_ccc: float = 1.0,
    eps: float = DEFAULT_EPS,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_va = w_mse·(MSE_v + MSE_a) + w_pcc·(1 − PCC) + w_ccc·(1 − CCC)``.

    Returns ``(loss, parts)`` where ``parts`` holds the detached terms ``mse``, ``pcc_loss``,
    ``ccc_loss`` (unweighted) as 0-d tensors. Needs N ≥ 2 for meaningful correlations; with
    N < 2 the correlation terms are 1 (covariance 0) and the loss stays finite.
    """
    _check(pred, y)
    if pred.shape[0] == 0:
        raise ValueError("va_loss needs at least one sample")
    m = mse(pred, y)
    lp = pcc_loss(pred, y, eps)
    lc = ccc_loss(pred, y, eps)
    loss = w_mse * m + w_pcc * lp + w_ccc * lc
    parts = {"mse": m.detach(), "pcc_loss": lp.detach(), "ccc_loss": lc.detach()}
    return loss, parts


def main_loss(pred_hat: Tensor, y_target: Tensor) -> Tensor:
    """``L_main`` (Eq. 6): MSE between f_θ(Ẑ) and the labels of the target samples.

    The expectation of Eq. 6 is estimated by the mean over all matched target samples pooled
    across target identities (an identity weighs by its sample count), with the same
    ``MSE_v + MSE_a`` convention as :func:`mse`. Algorithm 1 sums one MSE per target identity
    instead; the two differ by a factor ≈ N − 1 that a loss weight absorbs. With no target
    samples (a batch of a single identity) the result is a 0 attached to ``pred_hat``'s graph,
    so ``backward()`` still works.
    """
    return mse(pred_hat, y_target)
