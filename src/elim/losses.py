"""Training losses for valence–arousal regression (paper Algorithm 1 and Eq. 6).

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
    r"""Sum over dimensions of the per-dimension mean squared error (``MSE_v + MSE_a``).

    .. math:: \text{MSE} = \sum_{k \in \{v, a\}} \frac{1}{N} \sum_{i=1}^N (p_{ik} - t_{ik})^2

    Parameters
    ----------
    pred, target : Tensor
        (N, D) predictions and labels (D = 2: valence, arousal), same shape.

    Returns
    -------
    Tensor
        0-d loss; a zero that still carries ``pred``'s graph when N = 0.
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
    r"""Per-dimension Pearson correlation with population statistics (ddof = 0).

    .. math::

        \rho = \frac{\text{cov}(p, t)}
                    {\sqrt{\text{var}(p) + \epsilon}\,\sqrt{\text{var}(t) + \epsilon}}

    Parameters
    ----------
    pred, target : Tensor
        (N, D) predictions and labels, same shape.
    eps : float, default 1e-8
        Stabiliser in the denominators only (a constant prediction gives 0, finite gradients).

    Returns
    -------
    Tensor
        (D,) correlations.
    """
    _check(pred, target)
    _, _, vp, vt, cov = _moments(pred, target)
    return cov / (torch.sqrt(vp + eps) * torch.sqrt(vt + eps))


def ccc(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    r"""Per-dimension concordance correlation coefficient with population statistics (ddof = 0).

    .. math::

        \text{CCC} = \frac{2\,\text{cov}(p, t)}
                          {\text{var}(p) + \text{var}(t) + (\bar p - \bar t)^2 + \epsilon}

    Parameters
    ----------
    pred, target : Tensor
        (N, D) predictions and labels, same shape.
    eps : float, default 1e-8
        Stabiliser in the denominator only.

    Returns
    -------
    Tensor
        (D,) coefficients.
    """
    _check(pred, target)
    mp, mt, vp, vt, cov = _moments(pred, target)
    return 2.0 * cov / (vp + vt + (mp - mt).pow(2) + eps)


def pcc_loss(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """``1 − mean_D PCC`` (see :func:`pcc` for the parameters); a 0-d tensor."""
    return 1.0 - pcc(pred, target, eps).mean()


def ccc_loss(pred: Tensor, target: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """``1 − mean_D CCC`` (see :func:`ccc` for the parameters); a 0-d tensor."""
    return 1.0 - ccc(pred, target, eps).mean()


def va_loss(
    pred: Tensor,
    y: Tensor,
    w_mse: float = 1.0,
    w_pcc: float = 1.0,
    w_ccc: float = 1.0,
    eps: float = DEFAULT_EPS,
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""The supervision of the plain predictions ŷ = f_θ(z) (Algorithm 1, line 8).

    .. math:: L_{va} = w_{mse} (\text{MSE}_v + \text{MSE}_a) + w_{pcc} (1 - \overline{\text{PCC}})
              + w_{ccc} (1 - \overline{\text{CCC}})

    Parameters
    ----------
    pred, y : Tensor
        (N, 2) predictions and labels (valence, arousal), N >= 1.
    w_mse, w_pcc, w_ccc : float, default 1.0
        Weights of the three terms.
    eps : float, default 1e-8
        Stabiliser of the correlation denominators.

    Returns
    -------
    loss : Tensor
        0-d L_va.
    parts : dict of str to Tensor
        The detached, unweighted terms ``mse``, ``pcc_loss``, ``ccc_loss`` (0-d). With N < 2 the
        correlation terms are 1 (covariance 0) and the loss stays finite; N ≥ 2 is needed for
        meaningful correlations.
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
    r"""``L_main`` (Eq. 6): MSE between f_θ(Ẑ) (Eq. 5) and the labels of the target samples.

    .. math:: L_{main} = \sum_{e} \mathbb{E}_{(Z, Y) \sim p^e} (f_\theta(\hat Z^e) - Y^e)^2

    The expectation is estimated by the mean over all matched target samples pooled across
    target identities (an identity weighs by its sample count), with the same
    ``MSE_v + MSE_a`` convention as :func:`mse`. Algorithm 1 sums one MSE per target identity
    instead; the two differ by a factor ≈ N − 1 that a loss weight absorbs.

    Parameters
    ----------
    pred_hat : Tensor
        (M, 2) head outputs f_θ(ẑ) of the matched target samples
        (:attr:`elim.matching.MatchingOutput.z_hat`).
    y_target : Tensor
        (M, 2) their labels (``y[out.index]``).

    Returns
    -------
    Tensor
        0-d loss; with no target samples (a batch of a single identity) a 0 attached to
        ``pred_hat``'s graph, so ``backward()`` still works.
    """
    return mse(pred_hat, y_target)
