"""Cross-identity consistency of predictions: the paper's Sec. 5 A1 / Fig. 3, as a number.

The paper shows, as pictures, that faces of different people with the same ground truth get
more consistent predictions from ELIM than from the baseline. :func:`prediction_consistency`
measures it: for every label shared by at least two identities, the standard deviation across
identities of the prediction ŷ (each identity's faces with that label averaged first), per
valence and arousal; the **spread** is its mean over the labels and the two dimensions. Lower is
more consistent; a model whose prediction depends on the label only has spread 0 whatever its
accuracy, so the spread is read next to CCC (a constant predictor is perfectly consistent).

Labels are "the same" when they fall in one cell of a grid of step ``tol`` (exact match for
discrete labels such as CK+'s emotion points, or for the synthetic probe faces that render the
same labels for every identity, :func:`elim.datasets.synthetic.probe_faces`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Consistency", "label_bins", "prediction_consistency"]


@dataclass
class Consistency:
    """Result of :func:`prediction_consistency` (std with ddof = 0)."""

    spread: float  # mean over labels of (std_v + std_a) / 2 across identities
    spread_v: float  # mean over labels of the across-identity std of the valence prediction
    spread_a: float  # ... of the arousal prediction
    n_labels: int  # labels shared by >= 2 identities (the ones averaged)
    mean_identities: float  # identities per shared label, on average

    def to_dict(self) -> dict:
        return asdict(self)


def label_bins(labels: np.ndarray, tol: float) -> np.ndarray:
    """(N,) bin code of every label on a grid of step ``tol`` (round(y / tol) per dimension)."""
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    _, codes = np.unique(np.round(y / tol).astype(np.int64), axis=0, return_inverse=True)
    return codes.reshape(-1)


def prediction_consistency(
    predictions: np.ndarray, identity: np.ndarray, labels: np.ndarray, tol: float = 1e-6
) -> Consistency:
    """Spread of the predictions across identities for the same label (module docstring).

    Parameters
    ----------
    predictions : ndarray
        (N, 2) predicted valence and arousal.
    identity : ndarray
        (N,) identity of every face.
    labels : ndarray
        (N, 2) ground truth; faces in one cell of step ``tol`` share a label.
    tol : float
        Grid step of "the same label" (default 1e-6: exact).

    Returns
    -------
    Consistency
        The spread (overall, per dimension), the number of shared labels used and the mean
        number of identities per shared label.

    Raises
    ------
    ValueError
        When the shapes disagree or no label is shared by two identities.
    """
    pred = np.asarray(predictions, dtype=np.float64)
    ids = np.asarray(identity).astype(str)
    if pred.ndim != 2 or pred.shape[1] != 2 or len(ids) != len(pred) or len(labels) != len(pred):
        raise ValueError(f"predictions must be (N, 2) aligned with identity and labels; got "
                         f"{pred.shape}, {ids.shape}, {np.shape(labels)}")
    bins = label_bins(labels, tol)
    _, person = np.unique(ids, return_inverse=True)
    person = person.reshape(-1)
    cells, cell = np.unique(np.c_[bins, person], axis=0, return_inverse=True)
    cell = cell.reshape(-1)
    counts = np.bincount(cell, minlength=len(cells)).astype(np.float64)
    means = np.stack([np.bincount(cell, pred[:, c], len(cells)) for c in range(2)], 1)
    means /= counts[:, None]  # (label, identity) → mean prediction
    stds, sizes = [], []
    for b in np.unique(cells[:, 0]):
        group = means[cells[:, 0] == b]
        if len(group) >= 2:  # centred on one member first: equal predictions give exactly 0
            stds.append((group - group[0]).std(axis=0))
            sizes.append(len(group))
    if not stds:
        raise ValueError(f"no label (grid step {tol:g}) is shared by two identities; "
                         "raise tol or use faces that share labels")
    per_dim = np.mean(stds, axis=0)
    return Consistency(spread=float(per_dim.mean()), spread_v=float(per_dim[0]),
                       spread_a=float(per_dim[1]), n_labels=len(stds),
                       mean_identities=float(np.mean(sizes)))
