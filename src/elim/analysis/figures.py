"""Data for the paper's figures, taken from trained runs (the drawing lives in :mod:`elim.analysis.plots`).

* :func:`va_figure` (Fig. 3) — predictions for faces that share one label but belong to
  different identities, one panel per run, ground truth as stars;
* :func:`tsne_figure` (Fig. 4) — t-SNE of the features z of a few identities, coloured by
  identity and by arousal, one column per run;
* :func:`id_shift_figure` (Fig. 5) — the ID shift μ (Eq. 3) that the run's matching layer gives
  on one identity-grouped batch of its test faces;
* :func:`identities_figure` (Fig. 6) — from the identity study's ``study.json``;
* :func:`curves_figure` — training curves from the Lightning CSV logs of runs.

When several runs are compared, every model is applied to the same faces: those of the first
run (its split, or ``--dataset``/``--root``), so the panels differ only by the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elim.analysis import plots
from elim.errors import ElimError
from elim.evaluation import RunData, run_labels

__all__ = [
    "curves_figure",
    "id_shift_batch",
    "id_shift_figure",
    "identities_figure",
    "read_history",
    "shared_label_rows",
    "tsne_figure",
    "va_figure",
]


def shared_label_rows(
    labels: np.ndarray,
    identity: np.ndarray,
    tol: float = 0.1,
    max_identities: int = 8,
    per_identity: int = 2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of faces that share one label across the most identities.

    Labels are binned on a grid of step ``tol`` (exact match for discrete labels such as CK+'s
    emotion points); the bin seen in the most identities wins (ties: more faces, then the first).
    From it, up to ``max_identities`` identities (seeded choice) and per identity the
    ``per_identity`` faces nearest to the bin's median label. Returns (rows, bin median label).
    """
    y = np.asarray(labels, dtype=float)
    ids = np.asarray(identity).astype(str)
    bins = np.round(y / tol).astype(np.int64)
    keys, inverse = np.unique(bins, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_ids = np.array([len(np.unique(ids[inverse == k])) for k in range(len(keys))])
    n_faces = np.bincount(inverse, minlength=len(keys))
    best = int(np.lexsort((-n_faces, -n_ids))[0])
    if n_ids[best] < 2:
        raise ElimError(
            f"no label (within ±{tol / 2:g}) is shared by two identities here; raise --label-tol"
        )
    members = np.flatnonzero(inverse == best)
    centre = np.median(y[members], axis=0)
    names = np.unique(ids[members])
    rng = np.random.default_rng(seed)
    if len(names) > max_identities:
        names = np.sort(rng.choice(names, max_identities, replace=False))
    rows = []
    for name in names:
        mine = members[ids[members] == name]
        order = np.argsort(np.linalg.norm(y[mine] - centre, axis=1), kind="stable")
        rows.extend(mine[order[:per_identity]].tolist())
    return np.asarray(rows, dtype=np.int64), centre


def va_figure(runs: Sequence[RunData], out: str | Path, *, label_tol: float = 0.1,
              max_identities: int = 8, per_identity: int = 2, seed: int = 0) -> Path:
    """Fig. 3: same-label faces of different identities in the VA plane, one panel per run."""
    data = runs[0]
    table = data.table
    rows, centre = shared_label_rows(table[["valence", "arousal"]].to_numpy(float),
                                     table["identity"].to_numpy(), label_tol, max_identities,
                                     per_identity, seed)
    idx = data.indices[rows]
    preds, target = {}, None
    for label, run in zip(run_labels(runs), runs):
        ex = run.infer(idx)
        preds[label] = ex.predictions
        target = ex.labels
    n_id = len(np.unique(table["identity"].to_numpy()[rows]))
    title = (f"Label ≈ ({centre[0]:+.2f}, {centre[1]:+.2f}): {len(rows)} {data.split} faces of "
             f"{n_id} identities")
    return plots.va_plane(preds, target, table["identity"].to_numpy()[rows],
                          Path(out), title=title)


def tsne_figure(runs: Sequence[RunData], out: str | Path, *, max_identities: int = 10,
                seed: int = 0) -> Path:
    """Fig. 4: t-SNE of the features of up to ``max_identities`` identities (seeded choice)."""
    data = runs[0]
    ids = data.table["identity"].astype(str).to_numpy()
    names = np.unique(ids)
    if len(names) > max_identities:
        names = np.random.default_rng(seed).choice(names, max_identities, replace=False)
    rows = np.flatnonzero(np.isin(ids, names))
    idx = data.indices[rows]
    feats = {}
    arousal = None
    for label, run in zip(run_labels(runs), runs):
        ex = run.infer(idx)
        feats[label] = ex.features
        arousal = ex.labels[:, 1]
    return plots.tsne(feats, ids[rows], arousal, Path(out), seed=seed)


def id_shift_batch(run: RunData, *, n_identities: int | None = None,
                   samples_per_identity: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of the split forming one identity-grouped batch: P identities × ≤ K faces each.

    P and K default to the run's ``data.batch_identities`` and ``data.samples_per_identity``
    (capped by the identities with at least two faces available).
    """
    rng = np.random.default_rng(seed)
    ids = run.table["identity"].astype(str).to_numpy()
    names, counts = np.unique(ids, return_counts=True)
    names = names[counts >= 2]
    p = min(n_identities or run.config.data.batch_identities, len(names))
    k = samples_per_identity or run.config.data.samples_per_identity
    if p < 2:
        raise ElimError("the ID-shift figure needs two identities with >= 2 faces in the split")
    chosen = rng.choice(names, p, replace=False)
    rows = []
    for name in chosen:
        mine = np.flatnonzero(ids == name)
        rows.extend(np.sort(rng.choice(mine, min(k, len(mine)), replace=False)).tolist())
    return np.asarray(rows, dtype=np.int64)


def id_shift_figure(run: RunData, out: str | Path, *, n_identities: int | None = None,
                    samples_per_identity: int | None = None, seed: int = 0
                    ) -> tuple[Path, dict[str, Any]]:
    """Fig. 5: μ of every matched target face against the reference identity of one batch.

    The batch goes through the run's backbone (eval mode) and its matching layer as configured
    in training (solver, weights, Gumbel sampling with the labels). Cells show each target
    face's label; the note gives the Spearman correlation between μ and the VA distance from
    the face's label to the plan-weighted mean label of the reference faces it is matched to.
    Returns the PNG path and the numbers drawn.
    """
    from scipy.stats import spearmanr

    from elim.analysis.ablation import matching_layer

    rows = id_shift_batch(run, n_identities=n_identities,
                          samples_per_identity=samples_per_identity, seed=seed)
    ex = run.infer(run.indices[rows])
    names, codes = np.unique(run.table["identity"].astype(str).to_numpy()[rows],
                             return_inverse=True)
    layer = matching_layer(run.config)
    layer.n_identities = len(names)
    out_m = layer(torch.from_numpy(ex.features).float(), torch.from_numpy(codes).long(),
                  torch.from_numpy(ex.labels).float(),
                  generator=torch.Generator().manual_seed(seed))
    if out_m.empty:
        raise ElimError("the matching layer returned no targets for this batch")
    tgt_index = out_m.target_index.numpy()
    mu = np.full(tgt_index.shape, np.nan)
    text = np.full(tgt_index.shape, "", dtype=object)
    pos = {int(r): (int(t), int(j)) for (t, j), r in np.ndenumerate(tgt_index) if r >= 0}
    y = ex.labels
    for r, m in zip(out_m.index.tolist(), out_m.mu.tolist()):
        t, j = pos[r]
        mu[t, j] = m
        text[t, j] = f"{y[r, 0]:+.1f}\n{y[r, 1]:+.1f}"
    plan = out_m.plan.double().numpy()  # (T, n, m)
    ref_y = y[out_m.reference_index.numpy()]  # (n, 2)
    col = plan.sum(axis=1)  # (T, m)
    matched = np.einsum("tnm,nc->tmc", plan, ref_y) / np.maximum(col, 1e-30)[..., None]
    valid = tgt_index >= 0
    dist = np.linalg.norm(y[np.where(valid, tgt_index, 0)] - matched, axis=-1)
    rho = float(spearmanr(mu[valid], dist[valid]).statistic) if valid.sum() > 2 else float("nan")
    reference = str(names[out_m.reference])
    targets = [str(names[c]) for c in out_m.targets.tolist()]
    ref_labels, ref_counts = np.unique(np.round(ref_y, 1), axis=0, return_counts=True)
    shown = ", ".join(f"{c}×({v:+.1f}, {a:+.1f})" for (v, a), c in
                      sorted(zip(ref_labels.tolist(), ref_counts.tolist()), key=lambda t: -t[1])[:4])
    more = ", …" if len(ref_counts) > 4 else ""
    note = (f"{run.name}, {run.split} faces; reference labels: {shown}{more}\n"
            f"cells: target label (v, a); Spearman ρ(μ, label distance to the matched "
            f"reference faces) = {rho:.2f}")
    path = plots.id_shift_matrix(mu, reference, targets, Path(out), cell_text=text, note=note)
    info = {"reference": reference, "targets": targets, "mu": np.where(valid, mu, None).tolist(),
            "reference_labels": ref_y.tolist(),
            "spearman_mu_label_distance": rho, "solver": layer.solver,
            "weights": layer.weights, "sampling": layer.sampling}
    return path, info


def read_history(path: str | Path) -> dict[str, list[float]]:
    """Per-epoch series from a Lightning ``metrics.csv`` (a run dir, its ``logs/`` or the file).

    Step-logged ``train/*`` values are averaged per epoch; ``val/*`` values are per epoch.
    """
    path = Path(path)
    for cand in (path, path / "logs" / "csv" / "metrics.csv", path / "csv" / "metrics.csv",
                 path / "metrics.csv"):
        if cand.is_file() and cand.suffix == ".csv":
            path = cand
            break
    else:
        raise ElimError(f"{path}: no Lightning CSV log (logs/csv/metrics.csv); was the run "
                        "trained with logging?")
    frame = pd.read_csv(path)
    if "epoch" not in frame.columns:
        raise ElimError(f"{path}: has no 'epoch' column; not a Lightning CSV log")
    wanted = ["train/loss", "train/loss_va", "train/loss_main", "val/ccc_mean", "val/rmse_v",
              "val/rmse_a"]
    per_epoch = frame.groupby("epoch").mean(numeric_only=True)
    return {k: per_epoch[k].dropna().tolist() for k in wanted
            if k in per_epoch.columns and per_epoch[k].notna().any()}


def curves_figure(run_dirs: Sequence[str | Path], out: str | Path,
                  names: Sequence[str] | None = None) -> Path:
    """Training curves of one or several runs (one line per run)."""
    from elim.evaluation import run_name
    from elim.runs import read_json

    histories = {}
    for i, d in enumerate(run_dirs):
        d = Path(d)
        if names is not None:
            name = names[i]
        elif (d / "config.json").is_file():
            name = run_name(read_json(d / "config.json"), d)
        else:
            name = d.name
        if name in histories:
            name = f"{name} ({d.name})"
        histories[name] = read_history(d)
    title = "Training curves" if len(histories) > 1 else f"Training curves: {next(iter(histories))}"
    return plots.compare_curves(histories, Path(out), title=title)


def identities_figure(study: str | Path, out: str | Path) -> Path:
    """Fig. 6 from an identity study folder or its ``study.json``."""
    from elim.analysis.identities import plot_study
    from elim.runs import read_json

    study = Path(study)
    return plot_study(read_json(study / "study.json" if study.is_dir() else study), Path(out))
