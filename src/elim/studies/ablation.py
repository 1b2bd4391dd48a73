"""Running the OT ablation of the paper's Table 4 (grid and table: :mod:`elim.analysis.ablation`).

Every cell of the grid is a cross-validated ELIM run (:func:`elim.training.cv.cross_validate`,
method ``elim`` only) in its own folder ``cells/<solver>-<weights>-<sampling>/``, so an
interrupted grid resumes fit by fit, and a grid run later with more ``--cells`` reuses the cells
already done.

Time of the matching layer (forward, as :attr:`elim.matching.MatchingOutput.seconds` measures
it), two ways:

* ``train_seconds_per_step`` — measured inside the training runs, when the trainer records it in
  its per-fit results (``matching_seconds`` / ``steps``); it then includes the warm-up steps on
  which the layer does not run, and the machine's load during training;
* ``seconds_per_call`` — a timed pass after the fits: the layers of all cells of the table on
  the same ``timing_batches`` real identity batches (P × K) of the first fold's training
  identities, with features of a freshly initialised model of the configuration (seeded) in
  training mode, interleaved batch by batch so that the machine's load affects every cell alike;
  after two untimed calls, the median over calls. This column compares solvers under equal
  conditions. (The fold models are not kept, so their own features are not used.) When a cell
  of the table has no stored timing, the pass is redone for all of them.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elim.analysis.ablation import (
    AXES,
    GRID,
    PAPER_CELL,
    Cell,
    ablation_markdown,
    matching_layer,
    select_cells,
    unavailable,
)
from elim.config import Config, preprocess_for
from elim.data.cache import FaceCache
from elim.errors import ElimError
from elim.fileio import write_json
from elim.models import build_model
from elim.runs import ResultStore, config_settings, read_json, result_path
from elim.runs.provenance import environment
from elim.training.cv import cross_validate, fit_job, fold_splits
from elim.training.data import open_cache, train_loader

# ``select_cells`` is re-exported: ``elim ablate`` picks the cells and runs them from here.
__all__ = ["run_ablation", "select_cells", "time_matching"]


def time_matching(
    configs: dict[str, Config],
    cache: FaceCache,
    indices: np.ndarray,
    n_batches: int = 20,
    warmup: int = 2,
    device: str = "cpu",
) -> dict[str, dict[str, Any]]:
    """Seconds per forward of the matching layers of ``configs`` (name → config) on real batches.

    Batches: the training loader of the first configuration (P × K identity batches, seeded by
    its ``seed``) over rows ``indices``; features: its model initialised with that seed, in
    training mode, with gradients enabled on ``z`` (the layers build their graphs as in
    training). Every layer sees every batch, in an order rotated per batch, so a change of
    machine load affects all of them alike; each layer draws from its own generator with the
    same seed. Returns per name the median and mean over ``n_batches`` calls (after ``warmup``).
    """
    first = next(iter(configs.values()))
    torch.manual_seed(int(first.seed))
    model = build_model(first.model.to_model_dict()).to(device).train()
    preprocess = preprocess_for(first)
    layers = {name: matching_layer(cfg) for name, cfg in configs.items()}
    gens = {name: torch.Generator().manual_seed(int(first.seed)) for name in configs}
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    iters: dict[str, list[int]] = {name: [] for name in configs}
    names = list(configs)
    loader = train_loader(cache, indices, first)
    calls, target = 0, warmup + n_batches
    while calls < target:  # several epochs of the loader when it has fewer batches
        before = calls
        for images, y, ident in loader:
            with torch.no_grad():
                z = model.features(preprocess(images.to(device)))
            shift = calls % len(names)
            for name in names[shift:] + names[:shift]:
                out = layers[name](z.detach().requires_grad_(), ident.to(device), y.to(device),
                                   generator=gens[name])
                if calls >= warmup and not out.empty:
                    seconds[name].append(out.seconds)
                    iters[name].append(out.n_iter)
            calls += 1
            if calls >= target:
                break
        if calls == before:
            break
    if not any(seconds.values()):
        raise ElimError("the timing batches hold fewer than two identities; nothing to match")
    return {name: {"seconds_per_call": statistics.median(seconds[name]),
                   "seconds_mean": float(np.mean(seconds[name])), "calls": len(seconds[name]),
                   "solver_iterations": float(np.mean(iters[name])) if any(iters[name]) else None,
                   "batch": f"{first.data.batch_identities}x{first.data.samples_per_identity}"}
            for name in names}


def _train_timing(cell_dir: Path, seeds: Sequence[int], folds: int) -> float | None:
    """Matching seconds per training step recorded by the fits of a cell (None if not recorded)."""
    total, steps = 0.0, 0
    for s in seeds:
        for k in range(folds):
            path = result_path(cell_dir, fit_job("elim", s, k))
            rec = read_json(path) if path.is_file() else {}
            if "matching_seconds" not in rec or not rec.get("steps"):
                return None
            total += float(rec["matching_seconds"])
            steps += int(rec["steps"])
    return total / steps if steps else None


def run_ablation(
    config: Config,
    out_dir: str | Path,
    *,
    cells: Sequence[Cell] | None = None,
    folds: int = 6,
    seeds: Sequence[int] = (0,),
    fold_seed: int = 0,
    val_fraction: float = 0.0,
    timing_batches: int = 20,
    cache: FaceCache | None = None,
    progress: bool = True,
    logs: bool = False,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run (or resume) the cells and write ``ablation.json`` / ``ablation.md``; returns the JSON.

    ``config`` fixes everything but the matching's solver, weights and sampling. ``jobs`` fits
    of a cell run at once in separate processes (see :func:`elim.training.cv.cross_validate`).
    """
    cells = list(GRID if cells is None else cells)
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    out = Path(out_dir)
    base = copy.deepcopy(config).validate()
    shared = config_settings(base, matching=AXES)
    settings = {"config": shared, "folds": int(folds), "fold_seed": int(fold_seed),
                "val_fraction": float(val_fraction), "timing_batches": int(timing_batches),
                "timing_seed": int(base.seed)}
    store = ResultStore(out, settings, "ablation_config.json", "ablation")
    if cache is None:
        cache = open_cache(base, progress=progress)
    timing_rows = fold_splits(cache.table, folds, fold_seed, val_fraction)[0].train

    summaries, skipped = {}, []
    for cell in cells:
        reason = unavailable(cell)
        if reason is not None:
            skipped.append({"cell": cell.name, "reason": reason})
            continue
        summaries[cell] = cross_validate(
            cell.apply(base), out / "cells" / cell.name, folds=folds, methods=("elim",),
            seeds=seeds, fold_seed=fold_seed, val_fraction=val_fraction, cache=cache,
            progress=progress, logs=logs, jobs=jobs)
    # One interleaved timing pass over all cells of this table whenever one lacks a timing.
    timings = {c.name: store.get(f"timing-{c.name}") for c in summaries}
    if summaries and not all(timings.values()):
        timed = time_matching({c.name: c.apply(base) for c in summaries}, cache, timing_rows,
                              timing_batches)
        timings = {name: store.put(f"timing-{name}", t) for name, t in timed.items()}

    rows = []
    for cell, summary in summaries.items():
        cell_dir = out / "cells" / cell.name
        timing = timings[cell.name]
        s = summary["summary"]["elim"]
        rows.append({
            "cell": cell.name, "solver": cell.solver, "weights": cell.weights,
            "sampling": cell.sampling, "paper_default": cell == PAPER_CELL,
            "ccc_mean": s["ccc_mean"], "ccc_v": s["ccc_v"], "ccc_a": s["ccc_a"],
            "rmse_v": s["rmse_v"], "rmse_a": s["rmse_a"],
            "fits": s["ccc_mean"]["n"],
            "train_seconds_per_step": _train_timing(cell_dir, seeds, folds),
            "seconds_per_call": timing["seconds_per_call"],
            "timing": {k: v for k, v in timing.items() if k != "fingerprint"},
            "dir": str(cell_dir.relative_to(out)),
        })
    result = {"dataset": base.data.dataset, "root": base.data.root, "n_faces": len(cache),
              "folds": folds, "seeds": seeds, "cells": rows, "skipped": skipped,
              "settings": settings, "environment": environment()}
    write_json(out / "ablation.json", result)
    (out / "ablation.md").write_text(ablation_markdown(result))
    return result
