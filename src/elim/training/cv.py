"""Subject-independent k-fold cross-validation of several methods over several seeds.

Folds come from :func:`elim.data.splits.group_kfold` over the dataset's groups (default:
identity) with ``fold_seed``, so no person is ever in both the training and the test part of a
fold, and every method and seed sees the same folds. Model selection: by default
(``val_fraction = 0``) a fixed schedule — the model of the last epoch is tested, every training
identity is used for training, and no test information picks anything. With
``val_fraction > 0`` a validation part is carved, by group, from the fold's training identities
(seeded by ``fold_seed`` and the fold, so the same for every method and seed) and the epoch with
the best validation CCC is tested.

The folder is a :class:`elim.runs.ResultStore`: every fit writes
``results/<method>-seed<s>-fold<k>.json`` atomically as soon as it finishes, so an interrupted
CV restarted with the same arguments and ``out_dir`` redoes only the missing fits;
``cv_config.json`` records the settings, and a folder holding other settings is refused rather
than mixed. The summary goes to ``cv.json`` and ``cv.md``.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from elim.config import Config, Method
from elim.data.cache import FaceCache
from elim.data.splits import Splits, group_kfold, group_split, groups_of
from elim.errors import DataError, ElimError
from elim.fileio import write_json
from elim.metrics import aggregate, format_metrics_table
from elim.runs import ResultStore, config_settings
from elim.training.data import open_cache
from elim.training.fit import fit

__all__ = ["cross_validate", "cv_markdown", "fit_job", "fold_splits"]

SUMMARY_KEYS = ("rmse_v", "rmse_a", "sagr_v", "sagr_a", "pcc_v", "pcc_a", "ccc_v", "ccc_a",
                "ccc_mean")


def fold_splits(
    table: Any, n_folds: int, fold_seed: int = 0, val_fraction: float = 0.0
) -> list[Splits]:
    """The CV folds of a record table: test = one group fold, val carved from the rest.

    Raises
    ------
    DataError
        (one line) when there are fewer identities (groups) than folds (ElimError: fewer
        than 2 folds).
    """
    if n_folds < 2:
        raise ElimError(f"cross-validation needs at least 2 folds, got {n_folds}")
    groups = groups_of(table)
    n_groups = len(np.unique(groups))
    if n_groups < n_folds:
        fix = f": pass --folds {n_groups} or fewer" if n_groups >= 2 else ""
        raise DataError(
            f"{n_folds}-fold cross-validation by identity needs at least {n_folds} "
            f"identities (groups), one per test fold; the dataset has {n_groups}{fix}"
        )
    out = []
    for k, (train, test) in enumerate(group_kfold(groups, n_folds, seed=fold_seed)):
        val = train[:0]
        if val_fraction > 0 and len(np.unique(groups[train])) >= 2:
            parts = group_split(groups[train], [1.0 - val_fraction, val_fraction],
                                seed=fold_seed * 1000 + k)
            train, val = train[parts[0]], train[parts[1]]
        out.append(Splits(train, val, test, f"group_kfold({n_folds}, seed {fold_seed}) fold {k}"))
    return out


_WORKER: dict[str, Any] = {}


def _init_worker(threads: int | None, cache: FaceCache | None) -> None:
    """Per-process state of the fits: the shared face cache and torch's thread count."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    _WORKER["cache"] = cache


def _fit_one(cfg: Config, split: Splits, fit_dir: Path | None, fold: int,
             test_groups: list[str]) -> dict[str, Any]:
    """One CV fit → the result stored as job :func:`fit_job` of the folder."""
    if fit_dir is not None and fit_dir.exists():
        shutil.rmtree(fit_dir)  # logs of an interrupted attempt of this same fit
    res = fit(cfg, fit_dir, cache=_WORKER["cache"], splits=split, checkpoints=False, quiet=True,
              save=False)
    m = res.metrics
    return {
        "method": cfg.train.method, "seed": cfg.seed, "fold": fold,
        "test": m["test"], "val": m.get("val"), "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"], "steps": m.get("steps"),
        "matching_seconds": m.get("matching_seconds"), "seconds": m["seconds"],
        "cpu_seconds": m["cpu_seconds"], "sizes": m["sizes"], "test_groups": test_groups,
    }


def fit_job(method: str, seed: int, fold: int) -> str:
    """The job name of one fit: its result is ``results/<method>-seed<s>-fold<k>.json``."""
    return f"{method}-seed{seed}-fold{fold}"


def cross_validate(
    config: Config,
    out_dir: str | Path,
    *,
    folds: int = 6,
    methods: Sequence[str] = ("baseline", "elim"),
    seeds: Sequence[int] = (0, 1, 2),
    fold_seed: int = 0,
    val_fraction: float = 0.0,
    cache: FaceCache | None = None,
    progress: bool = True,
    logs: bool = True,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run (or resume) the CV and write ``cv.json`` / ``cv.md`` in ``out_dir``; returns cv.json.

    ``config`` gives everything but ``train.method`` and ``seed``, which vary. ``logs`` keeps a
    CSV training log per fit under ``fits/``. ``jobs > 1`` runs that many fits at once in
    separate processes (``train.threads`` torch threads each, default 1), which uses several
    CPU cores better than intra-op threads for small models; results do not depend on ``jobs``.
    """
    from tqdm.auto import tqdm

    methods = list(dict.fromkeys(methods))
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    for m in methods:
        if m not in get_args(Method):
            raise ElimError(f"unknown method {m!r}; choose from {', '.join(get_args(Method))}")
    if not 0.0 <= val_fraction < 1.0:
        raise ElimError(f"val_fraction must be in [0, 1), got {val_fraction}")
    out = Path(out_dir)
    base = copy.deepcopy(config)
    base.validate()
    settings = {"config": config_settings(base), "folds": int(folds),
                "fold_seed": int(fold_seed), "val_fraction": float(val_fraction)}
    store = ResultStore(out, settings, "cv_config.json", "cross-validation")

    if cache is None:
        cache = open_cache(base, progress=progress)
    splits = fold_splits(cache.table, folds, fold_seed, val_fraction)
    groups = groups_of(cache.table)
    results: dict[tuple[str, int, int], dict[str, Any]] = {}
    todo = []
    for seed in seeds:
        for k in range(folds):
            for method in methods:
                job = fit_job(method, seed, k)
                stored = store.get(job)
                if stored is not None:
                    results[(method, seed, k)] = stored
                    continue
                cfg = copy.deepcopy(base)
                cfg.train.method, cfg.seed, cfg.train.progress = method, seed, False
                fit_dir = out / "fits" / job if logs else None
                test_groups = sorted(set(groups[splits[k].test].tolist()))
                todo.append((job, (cfg, splits[k], fit_dir, k, test_groups)))

    bar = tqdm(total=len(todo), desc="cv fits", unit="fit", disable=None if progress else True)

    def done(job: str, record: dict[str, Any]) -> None:
        results[(record["method"], record["seed"], record["fold"])] = store.put(job, record)
        bar.set_postfix_str(job)
        bar.update()

    if jobs <= 1 or len(todo) <= 1:
        _init_worker(None, cache)
        for job, args in todo:
            done(job, _fit_one(*args))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = base.train.threads or 1
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(threads, cache),
        ) as pool:
            futures = {pool.submit(_fit_one, *args): job for job, args in todo}
            for future in as_completed(futures):
                done(futures[future], future.result())
    bar.close()
    _init_worker(None, None)
    summary = summarise(results, methods, seeds, folds)
    summary.update({"settings": settings, "dataset": base.data.dataset, "root": base.data.root,
                    "n_faces": len(cache), "n_groups": len(np.unique(groups))})
    write_json(out / "cv.json", summary)
    (out / "cv.md").write_text(cv_markdown(summary))
    return summary


def summarise(
    results: dict[tuple[str, int, int], dict[str, Any]],
    methods: Sequence[str],
    seeds: Sequence[int],
    folds: int,
) -> dict[str, Any]:
    """Per method: mean ± std over all (seed, fold) fits, per fold (mean over seeds), per seed
    (mean over folds, then mean ± std across seeds); and ELIM − baseline paired differences."""
    out: dict[str, Any] = {"methods": list(methods), "seeds": list(seeds), "folds": folds,
                           "summary": {}, "per_fold": {}, "per_seed": {}, "runs": []}
    for (method, seed, k), r in sorted(results.items()):
        out["runs"].append({"method": method, "seed": seed, "fold": k, "test": r["test"],
                            "best_epoch": r.get("best_epoch"), "seconds": r.get("seconds")})
    for m in methods:
        runs = [results[(m, s, k)]["test"] for s in seeds for k in range(folds)]
        out["summary"][m] = aggregate([{k: r[k] for k in SUMMARY_KEYS} for r in runs])
        out["per_fold"][m] = [
            aggregate([results[(m, s, k)]["test"] for s in seeds])["ccc_mean"]["mean"]
            for k in range(folds)
        ]
        seed_means = [
            aggregate([results[(m, s, k)]["test"] for k in range(folds)]) for s in seeds
        ]
        out["per_seed"][m] = {
            "ccc_mean": [sm["ccc_mean"]["mean"] for sm in seed_means],
            "across_seeds": aggregate([{k: sm[k]["mean"] for k in SUMMARY_KEYS}
                                       for sm in seed_means]),
        }
    if "elim" in methods and "baseline" in methods:
        diffs = [results[("elim", s, k)]["test"]["ccc_mean"]
                 - results[("baseline", s, k)]["test"]["ccc_mean"]
                 for s in seeds for k in range(folds)]
        arr = np.asarray(diffs)
        out["elim_minus_baseline"] = {
            "ccc_mean": {"mean": float(arr.mean()),
                         "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                         "n": len(arr)},
            "elim_wins": int((arr > 0).sum()), "ties": int((arr == 0).sum()),
        }
    return out


def cv_markdown(summary: dict[str, Any]) -> str:
    """``cv.md``: the method table (mean ± std over folds × seeds) and the per-fold CCC."""
    methods = summary["methods"]
    lines = [
        (f"# Cross-validation: {summary.get('dataset', '')} — {summary['folds']} "
         f"subject-independent "
        f"folds × seeds {summary['seeds']}"),
        "",
        "Test metrics, mean ± std (ddof = 1) over all fold × seed fits:",
        "",
        format_metrics_table({m: summary["summary"][m] for m in methods}, label="method",
                             digits=3),
        "",
        "Mean CCC per fold (mean over seeds):",
        "",
        "| fold | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for k in range(summary["folds"]):
        lines.append(f"| {k} | " + " | ".join(f"{summary['per_fold'][m][k]:.3f}"
                                              for m in methods) + " |")
    lines += ["", "Mean CCC of each seed (mean over folds):", "",
              "| method | " + " | ".join(f"seed {s}" for s in summary["seeds"])
              + " | mean ± std over seeds |",
              "|---|" + "---|" * (len(summary["seeds"]) + 1)]
    for m in methods:
        ps = summary["per_seed"][m]
        acc = ps["across_seeds"]["ccc_mean"]
        lines.append(f"| {m} | " + " | ".join(f"{v:.3f}" for v in ps["ccc_mean"])
                     + f" | {acc['mean']:.3f} ± {acc['std']:.3f} |")
    if "elim_minus_baseline" in summary:
        d = summary["elim_minus_baseline"]
        lines += ["", (f"ELIM − baseline, mean CCC (paired by seed and fold): "
                      f"{d['ccc_mean']['mean']:+.4f} ± {d['ccc_mean']['std']:.4f}; ELIM better in "
                      f"{d['elim_wins']} of {d['ccc_mean']['n']} fits.")]
    return "\n".join(lines) + "\n"
