"""Identity invariance of trained runs, measured on the same faces for every run.

For each run: features z = f_φ(x) of the faces of a split (by default the first run's test
identities, i.e. people never seen in training), then

* :func:`elim.analysis.invariance.identity_probe` — accuracy of a linear identity probe
  (lower = less identity information; compare with ``chance``), cross-validated with folds
  that keep each ``group`` (clip / sequence / identity × label) on one side;
* :func:`elim.analysis.invariance.distance_ratio` — same-label-other-identity over
  same-identity-other-label feature distances (lower = more identity-invariant);
* the run's CCC on those faces, so invariance is read next to accuracy.

``pixels=True`` adds the same two measures on the raw input pixels (the run's preprocessing),
a reference for how much identity the faces themselves give away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elim.analysis.invariance import distance_ratio, identity_probe
from elim.evaluation import RunData, run_labels
from elim.metrics import va_metrics

__all__ = ["GROUP_COLUMNS", "invariance_markdown", "measure_invariance", "probe_groups"]

#: columns naming a video clip or sequence, used (in this order) by ``groups="auto"``
GROUP_COLUMNS = ("clip", "sequence", "video")


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
        from elim.errors import ElimError

        raise ElimError(f"--groups {how!r}: no such column (columns: {', '.join(table.columns)})")
    return table[how].astype(str).to_numpy()


def _pixels(run: RunData) -> np.ndarray:
    """The preprocessed input images of the run's faces, flattened (N, 3·S·S)."""
    import torch

    images = torch.from_numpy(np.asarray(run.cache.images[run.indices]))
    return run.preprocess(images).flatten(1).double().numpy()


def _measures(features: np.ndarray, table: pd.DataFrame, labels: np.ndarray,
              groups: np.ndarray | None, n_folds: int, same_tol: float, other_min: float,
              seed: int) -> dict[str, Any]:
    from elim.errors import ElimError

    ids = table["identity"].astype(str).to_numpy()
    try:
        probe = identity_probe(features, ids, n_folds=n_folds, seed=seed, groups=groups)
        ratio = distance_ratio(features, ids, labels, same_tol=same_tol, other_min=other_min)
    except ValueError as err:  # too few identities / pairs among these faces
        raise ElimError(f"{err}; use more faces (--split all) or other --groups/--same-tol") \
            from None
    return {"probe": probe.to_dict(), "distance_ratio": ratio.to_dict()}


def measure_invariance(
    runs: Sequence[RunData],
    *,
    n_folds: int = 5,
    groups: str = "auto",
    same_tol: float = 0.05,
    other_min: float = 0.25,
    seed: int = 0,
    pixels: bool = False,
) -> dict[str, Any]:
    """Invariance measures of every run on the faces of ``runs[0]``; returns a JSON-able dict."""
    from elim.analysis.environment import environment

    data = runs[0]
    table = data.table
    grp = probe_groups(table, groups)
    rows = []
    labels = None
    for label, run in zip(run_labels(runs), runs):
        ex = run.infer()
        labels = ex.labels
        rows.append({"name": label, "run": str(run.run_dir),
                     "method": run.run_config.get("train", {}).get("method"),
                     "ccc_mean": va_metrics(ex.predictions, ex.labels)["ccc_mean"],
                     **_measures(ex.features, table, ex.labels, grp, n_folds, same_tol,
                                 other_min, seed)})
    if pixels:
        rows.append({"name": "input pixels", "run": None, "method": None, "ccc_mean": None,
                     **_measures(_pixels(data), table, labels, grp, n_folds, same_tol,
                                 other_min, seed)})
    return {
        "dataset": data.config.data.dataset, "root": data.config.data.root, "split": data.split,
        "faces": len(table), "identities": int(table["identity"].nunique()),
        "groups": groups, "n_folds": n_folds, "same_tol": same_tol, "other_min": other_min,
        "rows": rows, "environment": environment(),
    }


def invariance_markdown(result: dict[str, Any]) -> str:
    """One row per run: probe accuracy ± std (chance), distance ratio, CCC."""
    lines = [
        (f"# Identity invariance: {result['dataset']} {result['split']} faces "
         f"({result['faces']} faces, {result['identities']} identities)"),
        "",
        ("Identity probe: accuracy of a linear classifier predicting the identity from the "
         f"features ({result['n_folds']}-fold, groups: {result['groups']}); lower = more "
         "invariant. Distance ratio: mean feature distance of same-label pairs of different "
         "identities / of different-label pairs of one identity; lower = more invariant."),
        "",
        "| features | identity probe acc. | chance | probed ids | distance ratio | CCC (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        p, d = r["probe"], r["distance_ratio"]
        ccc = "—" if r["ccc_mean"] is None else f"{r['ccc_mean']:.3f}"
        lines.append(f"| {r['name']} | {p['accuracy']:.3f} ± {p['accuracy_std']:.3f} | "
                     f"{p['chance']:.3f} | {p['n_identities']} | {d['ratio']:.3f} | {ccc} |")
    return "\n".join(lines) + "\n"
