"""The one batched inference loop: uint8 face crops → f_φ → z → f_θ → ŷ (Eq. 5).

Validation after training, ``elim evaluate``, the analyses and ``elim predict`` all map faces
through :func:`infer`, so their numbers agree exactly. The model runs in eval mode under
``torch.inference_mode``; its previous train/eval mode is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from elim.models.preprocess import Preprocess

__all__ = ["infer"]


def infer(
    model: torch.nn.Module,
    preprocess: Preprocess,
    batches: Iterable[np.ndarray | torch.Tensor],
    *,
    device: str | torch.device | None = None,
    features: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Valence/arousal (and optionally the features z) of batches of uint8 (B, S, S, 3) faces.

    Parameters
    ----------
    model
        An :class:`elim.models.ElimModel` (``features`` = f_φ, ``predict_head`` = f_θ).
    preprocess
        The model's input transform (from the run's ``config.json``).
    batches
        Iterable of uint8 NHWC arrays or tensors; an empty iterable gives empty outputs.
    device
        Where the model runs (default: the device of its first parameter).
    features
        Also return z = f_φ(x).

    Returns
    -------
    predictions : (N, 2) float32 array
        ŷ = f_θ(f_φ(x)) per face, in input order.
    features : (N, d) float32 array or None
        z per face when ``features`` is true.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds: list[np.ndarray] = []
    feats: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for batch in batches:
                if len(batch) == 0:
                    continue
                x = preprocess(batch).to(device)
                z = model.features(x)
                preds.append(model.predict_head(z).float().cpu().numpy())
                if features:
                    feats.append(z.float().cpu().numpy())
    finally:
        model.train(was_training)
    dim = int(getattr(model, "feature_dim", 0))
    va = np.concatenate(preds) if preds else np.zeros((0, 2), np.float32)
    if not features:
        return va, None
    return va, (np.concatenate(feats) if feats else np.zeros((0, dim), np.float32))
