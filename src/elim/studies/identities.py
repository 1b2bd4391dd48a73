"""Running the number-of-training-identities study (paper Sec. 5.4 A5, Fig. 6; its table and
figure: :mod:`elim.analysis.identities`).

The identities of the dataset are split once, by group and with ``data.split_seed``, into a
training pool, validation identities and test identities (``data.fractions``). Validation and
test identities stay FIXED; for each fraction f the model trains on the first
max(2, round(f · |pool|)) identities of a permutation of the pool drawn from the seed, so within
a seed the training sets are nested (10 % ⊂ 25 % ⊂ … ⊂ 100 %). Each (method, fraction, seed) is
one fit, stored as soon as it ends (resumable).

Methods: ``elim``; ``elim-no-va`` — the paper's "w/o L_va" (Fig. 6 caption: only L_main and
L_C(P)CC train the model, i.e. the MSE term of L_va is dropped, w_mse = 0); ``elim-main-only`` —
every L_va term off (w_mse = w_pcc = w_ccc = 0), so the head learns from L_main on Ẑ alone;
``baseline`` — L_va only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from elim.analysis.identities import plot_study, study_markdown
from elim.config import METHOD_VARIANTS, Config, apply_overrides
from elim.data.cache import FaceCache
from elim.data.splits import Splits, group_split, groups_of
from elim.errors import ElimError
from elim.fileio import write_json
from elim.metrics import aggregate
from elim.runs import ResultStore, config_settings
from elim.runs.provenance import environment
from elim.training.data import open_cache
from elim.training.fit import fit

__all__ = ["run_identity_study", "study_parts"]

def study_parts(groups: np.ndarray, fractions: Sequence[float], split_seed: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pool group names, val row indices, test row indices) for the (train, val, test) fractions."""
    names = ("pool", "val", "test")
    use = {n: float(f) for n, f in zip(names, fractions) if f > 0}
    if "test" not in use:
        raise ElimError("the identity study needs test identities: data.fractions[2] > 0")
    parts = group_split(groups, use, seed=split_seed)
    empty = np.zeros(0, dtype=np.int64)
    pool = np.unique(groups[parts["pool"]])
    return pool, parts.get("val", empty), parts["test"]


def _subset(pool: np.ndarray, fraction: float, seed: int, split_seed: int) -> np.ndarray:
    """The first max(2, round(f·|pool|)) pool groups of the seed's permutation (nested in f)."""
    order = np.random.default_rng([int(split_seed), int(seed)]).permutation(pool)
    return np.sort(order[: max(2, round(fraction * len(pool)))])


def _job(method: str, fraction: float, seed: int) -> str:
    return f"{method}-f{fraction:g}-seed{seed}"


def run_identity_study(
    config: Config,
    out_dir: str | Path,
    *,
    fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    methods: Sequence[str] = ("elim", "elim-no-va", "baseline"),
    seeds: Sequence[int] = (0,),
    cache: FaceCache | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the study; writes ``study.json``, ``study.md`` and ``identities.png``."""
    from tqdm.auto import tqdm

    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in METHOD_VARIANTS:
            raise ElimError(f"unknown method {m!r}; choose from {', '.join(METHOD_VARIANTS)}")
    fractions = sorted({float(f) for f in fractions})
    if not fractions or fractions[0] <= 0 or fractions[-1] > 1:
        raise ElimError(f"--fractions must lie in (0, 1], got {fractions}")
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    base = copy.deepcopy(config).validate()
    store = ResultStore(out_dir, {"config": config_settings(base)}, "study_config.json",
                        "identity study")
    if cache is None:
        cache = open_cache(base, progress=progress)
    groups = groups_of(cache.table)
    pool, val, test = study_parts(groups, base.data.fractions, base.data.split_seed)
    if len(pool) < 2:
        raise ElimError(f"the training pool has {len(pool)} identities; the study needs >= 2")

    jobs = [(m, f, s) for s in seeds for f in fractions for m in methods]
    results: dict[tuple[str, float, int], dict[str, Any]] = {}
    bar = tqdm(jobs, desc="identity study", unit="fit", disable=None if progress else True)
    for method, frac, seed in bar:
        job = _job(method, frac, seed)
        bar.set_postfix_str(job)
        stored = store.get(job)
        if stored is None:
            chosen = _subset(pool, frac, seed, base.data.split_seed)
            train = np.flatnonzero(np.isin(groups, chosen))
            cfg = apply_overrides(base, METHOD_VARIANTS[method].overrides,
                                  source=f"identity study {method}")
            cfg.seed, cfg.train.progress = seed, False
            res = fit(cfg, None, cache=cache, checkpoints=False, quiet=True, save=False,
                      splits=Splits(train, val, test, f"identity study: {len(chosen)} of "
                                    f"{len(pool)} pool identities (seed {seed})"))
            stored = store.put(job, {
                "method": method, "fraction": frac, "seed": seed,
                "n_identities": len(chosen), "n_train": len(train),
                "test": res.metrics["test"], "val": res.metrics.get("val"),
                "best_epoch": res.metrics["best_epoch"], "seconds": res.metrics["seconds"],
            })
        results[(method, frac, seed)] = stored

    summary: dict[str, Any] = {}
    for m in methods:
        summary[m] = []
        for f in fractions:
            runs = [results[(m, f, s)] for s in seeds]
            agg = aggregate([r["test"] for r in runs])
            summary[m].append({"fraction": f, "n_identities": runs[0]["n_identities"],
                               "ccc_mean": agg["ccc_mean"], "ccc_v": agg["ccc_v"],
                               "ccc_a": agg["ccc_a"], "rmse_v": agg["rmse_v"],
                               "rmse_a": agg["rmse_a"]})
    out = Path(out_dir)
    result = {
        "dataset": base.data.dataset, "root": base.data.root, "fractions": fractions,
        "methods": methods, "seeds": seeds, "pool_identities": len(pool),
        "val_identities": len(np.unique(groups[val])),
        "test_identities": len(np.unique(groups[test])), "test_faces": len(test),
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if k != "fingerprint"} for r in results.values()],
        "settings": store.settings, "environment": environment(),
    }
    write_json(out / "study.json", result)
    (out / "study.md").write_text(study_markdown(result))
    plot_study(result, out / "identities.png")
    return result
