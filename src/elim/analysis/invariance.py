"""Identity invariance, measured: numbers on feature arrays, and on trained runs.

The paper shows identity invariance only qualitatively (t-SNE, Fig. 4, and the consistency of
Fig. 3). Numbers make it comparable across runs:

* :func:`identity_probe` — cross-validated accuracy of a linear classifier that predicts the
  identity from frozen features. Lower means the features carry less identity information;
  compare with the chance level that is returned beside it.
* :func:`distance_ratio` — mean distance between samples that share a label but belong to
  different identities, divided by the mean distance between samples of one identity whose
  labels differ, on L2-normalised features. Below 1, expression dominates identity in feature
  space; lower is more identity-invariant.
* :func:`elim.analysis.consistency.prediction_consistency` — the spread across identities of
  the *predictions* for the same label (Fig. 3 as a number; lower = more consistent).

Why the probe and the distance ratio can disagree: the distance ratio sees only the direction
z/‖z‖ (it L2-normalises), while the probe (per-dimension standardisation) also reads the
magnitude of z — ‖z‖ and the mean and spread of a sample's entries, exactly what Eq. 4 divides
and subtracts away for the targets of L_main at training time but what inference leaves in z.
:func:`magnitude_features` isolates those three numbers, and :func:`measure_invariance` probes
the direction and the magnitude separately, so a disagreement can be traced to one of them.

:func:`measure_invariance` (``elim analyze invariance``) applies the measures to trained runs on
the same faces for every run (by default the first run's test identities, i.e. people never
seen in training): features z = f_φ(x) from :meth:`elim.evaluation.RunData.infer`, probe folds
that keep each ``group`` (clip / sequence / identity × label) on one side, and the run's CCC on
those faces, so invariance is read next to accuracy. ``pixels=True`` adds the same measures on
the raw input pixels (the run's preprocessing), a reference for how much identity the faces
themselves give away; ``test_time_norm=True`` adds, for every run with a reference bank, a row
measured after test-time identity normalisation of each identity's faces
(:mod:`elim.inference.identity_norm`: the normalised features and their predictions).
:func:`invariance_markdown` renders the result (``invariance.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elim.analysis.consistency import prediction_consistency
from elim.analysis.markdown import results_page
from elim.data.records import GROUP_COLUMNS
from elim.errors import ElimError

if TYPE_CHECKING:  # the array measures need neither torch nor a run
    import pandas as pd

    from elim.evaluation import RunData

__all__ = [
    "GROUP_COLUMNS",
    "DistanceRatio",
    "ProbeResult",
    "distance_ratio",
    "identity_probe",
    "invariance_markdown",
    "magnitude_features",
    "measure_invariance",
    "probe_groups",
]


@dataclass
class ProbeResult:
    accuracy: float  # mean cross-validated accuracy
    accuracy_std: float  # std over folds (ddof=0)
    chance: float  # accuracy of always predicting the most frequent identity
    n_identities: int
    n_samples: int
    n_folds: int

    def to_dict(self) -> dict:
        return asdict(self)


def identity_probe(
    features: np.ndarray,
    identity: np.ndarray,
    n_folds: int = 5,
    seed: int = 0,
    max_iter: int = 2000,
    groups: np.ndarray | None = None,
) -> ProbeResult:
    """Cross-validated accuracy of a linear (logistic-regression) identity probe.

    Features are standardised inside each training fold. Without ``groups`` the folds are
    stratified by identity and identities with fewer samples than ``n_folds`` are dropped (a
    stratified split needs one per fold). With ``groups`` (e.g. the video clip or sequence of
    each sample) a group never straddles a training and a test fold, so near-duplicate frames
    cannot give the identity away; identities with fewer than two groups are dropped (they could
    never be seen in training and tested at once). At least two identities must remain.
    """
    from threadpoolctl import threadpool_limits

    from elim.deps import (
        LogisticRegression,
        StandardScaler,
        StratifiedGroupKFold,
        StratifiedKFold,
        make_pipeline,
    )

    x = np.asarray(features, dtype=np.float64)
    ids = np.asarray(identity).astype(str)
    if x.ndim != 2 or len(x) != len(ids):
        raise ValueError(f"features must be (N, d) aligned with identity; got {x.shape}, {ids.shape}")
    if groups is None:
        names, counts = np.unique(ids, return_counts=True)
        keep = np.isin(ids, names[counts >= n_folds])
        need = f">= {n_folds} samples"
    else:
        grp = np.char.add(np.char.add(ids, "\x1f"), np.asarray(groups).astype(str))
        if len(grp) != len(ids):
            raise ValueError("groups must be aligned with identity")
        pairs = np.unique(np.c_[ids, grp], axis=0)
        names, n_groups = np.unique(pairs[:, 0], return_counts=True)
        keep = np.isin(ids, names[n_groups >= 2])
        need = ">= 2 groups"
    x, ids = x[keep], ids[keep]
    names, counts = np.unique(ids, return_counts=True)
    if len(names) < 2:
        raise ValueError(f"identity probe needs >= 2 identities with {need} each; got {len(names)}")
    if groups is None:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, ids)
    else:
        grp = grp[keep]
        n_folds = min(n_folds, len(np.unique(grp)))
        splits = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(
            x, ids, grp)
    scores = []
    # one BLAS thread: on these small problems more threads only add overhead (on 2 busy cores
    # a 512 × 64 probe took 77 s with the default thread pools, 1.7 s with one thread)
    with threadpool_limits(limits=1):
        for train, test in splits:
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
            clf.fit(x[train], ids[train])
            scores.append(float((clf.predict(x[test]) == ids[test]).mean()))
    return ProbeResult(
        accuracy=float(np.mean(scores)),
        accuracy_std=float(np.std(scores, ddof=0)),
        chance=float(counts.max() / counts.sum()),
        n_identities=len(names),
        n_samples=len(ids),
        n_folds=n_folds,
    )


@dataclass
class DistanceRatio:
    ratio: float  # cross_identity_same_label / same_identity_other_label
    cross_identity_same_label: float
    same_identity_other_label: float
    n_pairs_same_label: int
    n_pairs_other_label: int

    def to_dict(self) -> dict:
        return asdict(self)


def distance_ratio(
    features: np.ndarray,
    identity: np.ndarray,
    labels: np.ndarray,
    same_tol: float = 1e-6,
    other_min: float = 0.25,
) -> DistanceRatio:
    """Ratio of cross-identity same-label distances to same-identity other-label distances.

    Features are L2-normalised first, so the ratio does not depend on their scale. Two labels
    are "the same" when their VA distance is at most ``same_tol`` (exact match for datasets with
    discrete emotion points such as CK+; raise it for continuous labels) and "different" when
    it is at least ``other_min``. Distances are Euclidean.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ids = np.asarray(identity).astype(str)
    y = np.asarray(labels, dtype=np.float64).reshape(len(x), -1)
    sq = (x * x).sum(1)
    feat_d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    label_d = np.sqrt(((y[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    same_id = ids[:, None] == ids[None, :]
    upper = np.triu(np.ones_like(same_id, dtype=bool), k=1)
    cross_same = upper & ~same_id & (label_d <= same_tol)
    within_other = upper & same_id & (label_d >= other_min)
    if not cross_same.any() or not within_other.any():
        raise ValueError(
            "distance ratio needs pairs of different identities with the same label and pairs of "
            f"one identity with different labels; found {int(cross_same.sum())} and "
            f"{int(within_other.sum())} (adjust same_tol / other_min)"
        )
    num = float(feat_d[cross_same].mean())
    den = float(feat_d[within_other].mean())
    return DistanceRatio(
        ratio=num / max(den, 1e-12),
        cross_identity_same_label=num,
        same_identity_other_label=den,
        n_pairs_same_label=int(cross_same.sum()),
        n_pairs_other_label=int(within_other.sum()),
    )


def magnitude_features(features: np.ndarray) -> np.ndarray:
    """(N, 3) per-sample magnitude of features: ‖z‖, mean_d z and std_d z — what Eq. 4 removes
    from a target's features at training time (the shift and the scale), nothing of their
    direction."""
    x = np.asarray(features, dtype=np.float64)
    return np.c_[np.linalg.norm(x, axis=1), x.mean(axis=1), x.std(axis=1)]


def _direction(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------ on trained runs
#: columns naming a video clip or sequence, used (in this order) by ``groups="auto"``


def probe_groups(table: pd.DataFrame, how: str = "auto") -> np.ndarray | None:
    """Probe fold groups for the rows of ``table``.

    ``auto``: the first of :data:`GROUP_COLUMNS` present, else ``label``; ``label``: faces of
    one identity with the same (valence, arousal) — one CK+ sequence; ``none``: no grouping
    (near-duplicate frames may then sit on both sides of a fold); any other value: that column.
    """
    if how == "none":
        return None
    if how == "auto":
        how = next((c for c in GROUP_COLUMNS if c in table.columns), "label")
    if how == "label":
        return (table["valence"].map("{:.6f}".format) + ","
                + table["arousal"].map("{:.6f}".format)).to_numpy()
    if how not in table.columns:
        raise ElimError(f"--groups {how!r}: no such column (columns: {', '.join(table.columns)})")
    return table[how].astype(str).to_numpy()


def _pixels(run: RunData) -> np.ndarray:
    """The preprocessed input images of the run's faces, flattened (N, 3·S·S)."""
    import torch

    images = torch.from_numpy(np.asarray(run.cache.images[run.indices]))
    return run.preprocess(images).flatten(1).double().numpy()


def _measures(features: np.ndarray, predictions: np.ndarray | None, table: pd.DataFrame,
              labels: np.ndarray, groups: np.ndarray | None, n_folds: int, same_tol: float,
              other_min: float, seed: int) -> dict[str, Any]:
    from elim.metrics import va_metrics

    ids = table["identity"].astype(str).to_numpy()
    try:
        probes = {name: identity_probe(f, ids, n_folds=n_folds, seed=seed, groups=groups)
                  .to_dict() for name, f in (("probe", features),
                                             ("probe_direction", _direction(features)),
                                             ("probe_magnitude", magnitude_features(features)))}
        ratio = distance_ratio(features, ids, labels, same_tol=same_tol, other_min=other_min)
    except ValueError as err:  # too few identities / pairs among these faces
        raise ElimError(f"{err}; use more faces (--split all) or other --groups/--same-tol") \
            from None
    consistency = None
    if predictions is not None:
        try:
            consistency = prediction_consistency(predictions, ids, labels, tol=same_tol)
        except ValueError:  # no label on the --same-tol grid is shared by two identities
            consistency = None
    return {**probes, "distance_ratio": ratio.to_dict(),
            "consistency": None if consistency is None else consistency.to_dict(),
            "ccc_mean": None if predictions is None else va_metrics(predictions, labels)
            ["ccc_mean"]}


def measure_invariance(
    runs: Sequence[RunData],
    *,
    n_folds: int = 5,
    groups: str = "auto",
    same_tol: float = 0.05,
    other_min: float = 0.25,
    seed: int = 0,
    pixels: bool = False,
    normalisers: Sequence[Any | None] | None = None,
) -> dict[str, Any]:
    """Invariance measures of every run on the faces of ``runs[0]``; returns a JSON-able dict.

    Per row: identity probes on z, on its direction z/‖z‖ and on its magnitude
    (:func:`magnitude_features`), the distance ratio, the consistency spread of the predictions
    (labels on a grid of ``same_tol``; None when no label there is shared by two identities)
    and the CCC. ``normalisers`` (one per run, or None for
    a run) add a row ``<run> + TTN`` per run with one: its test-time identity normalisation
    (:class:`elim.inference.identity_norm.IdentityNormaliser`, or anything with its
    ``normalise(features, groups)`` and ``predict(features, groups)``), each identity's faces
    normalised together.
    """
    from elim.evaluation import run_labels
    from elim.runs.provenance import environment

    data = runs[0]
    table = data.table
    ids = table["identity"].astype(str).to_numpy()
    grp = probe_groups(table, groups)
    rows: list[dict[str, Any]] = []
    labels = None
    if normalisers is None:
        normalisers = [None] * len(runs)
    if len(normalisers) != len(runs):
        raise ElimError(f"{len(normalisers)} normalisers for {len(runs)} runs")

    def measured(features, predictions):
        return _measures(features, predictions, table, labels, grp, n_folds, same_tol,
                         other_min, seed)

    for label, run, norm in zip(run_labels(runs), runs, normalisers):
        ex = run.infer()
        labels = ex.labels
        method = run.run_config.get("train", {}).get("method")
        rows.append({"name": label, "run": str(run.run_dir), "method": method,
                     **measured(ex.features, ex.predictions)})
        if norm is not None:
            rows.append({"name": f"{label} + TTN", "run": str(run.run_dir), "method": method,
                         **measured(*norm.normalise_and_predict(ex.features, ids))})
    if pixels:
        rows.append({"name": "input pixels", "run": None, "method": None,
                     **measured(_pixels(data), None)})
    return {
        "dataset": data.config.data.dataset, "root": data.config.data.root, "split": data.split,
        "faces": len(table), "identities": int(table["identity"].nunique()),
        "groups": groups, "n_folds": n_folds, "same_tol": same_tol, "other_min": other_min,
        "test_time_norm": any(n is not None for n in normalisers),
        "rows": rows, "environment": environment(),
    }


def invariance_markdown(result: dict[str, Any]) -> str:
    """One row per run: probe accuracies ± std (on z, its direction, its magnitude; chance),
    distance ratio, consistency spread, CCC."""
    title = (f"Identity invariance: {result['dataset']} {result['split']} faces "
             f"({result['faces']} faces, {result['identities']} identities)")
    note = ("Identity probe: accuracy of a linear classifier predicting the identity from the "
            f"features ({result['n_folds']}-fold, groups: {result['groups']}) — from z, from its "
            "direction z/‖z‖ and from its magnitude (‖z‖, mean and std of its entries); lower = "
            "more invariant. Distance ratio (on z/‖z‖): mean feature distance of same-label "
            "pairs of different identities / of different-label pairs of one identity; lower = "
            "more invariant. Consistency spread: std across identities of the prediction for "
            f"the same label (grid {result['same_tol']:g}), mean over labels and V/A; lower = "
            "more consistent. '+ TTN': after test-time identity normalisation of each "
            "identity's faces.")
    columns = ("features", "identity probe acc.", "probe on z/‖z‖", "probe on magnitude",
               "chance", "probed ids", "distance ratio", "consistency spread", "CCC (mean)")

    def acc(probe: dict[str, Any]) -> str:
        return f"{probe['accuracy']:.3f} ± {probe['accuracy_std']:.3f}"

    rows = [(r["name"], acc(r["probe"]), acc(r["probe_direction"]), acc(r["probe_magnitude"]),
             f"{r['probe']['chance']:.3f}", str(r["probe"]["n_identities"]),
             f"{r['distance_ratio']['ratio']:.3f}",
             "—" if r["consistency"] is None else f"{r['consistency']['spread']:.3f}",
             "—" if r["ccc_mean"] is None else f"{r['ccc_mean']:.3f}") for r in result["rows"]]
    return "\n".join(results_page(title, note, columns, rows)) + "\n"
