"""Running the identity-shift benchmark: the paper's Problem 1 (Sec. 3.1, Eq. 1) with its premise
under control (its table and figure: :mod:`elim.analysis.shift`).

The synthetic faces (:mod:`elim.datasets.synthetic`) are drawn at each strength of one knob —
``shift`` (identity changes p(z), not p(y | z): the paper's setting) or ``style`` (identity
changes what an expression means, p(y | x): no single-image model can undo it) — with the other
knob at 0. Identities, labels, poses and backgrounds are the same at every strength; only how
much identity changes the faces differs. The identities are split once (``data.fractions``,
``data.split_seed``; by default 60 % training, 40 % test, no validation: the last epoch of a
fixed schedule is tested) into FIXED training and FIXED unseen test identities.

Each (method, strength, seed) is one fit, stored as soon as it ends (resumable, like
``elim cv``). Every fit is measured twice on the test identities:

* **plain** — f_θ(f_φ(x)), the paper's inference;
* **ttn** — test-time identity normalisation (:mod:`elim.inference.identity_norm`): each test
  identity's faces normalised with Eqs. 3–4 against a reference bank of k training faces per
  training identity of this fit (:func:`elim.matching.reference_bank`).

and for each: CCC on the test faces, the cross-identity **consistency** (spread of the
predictions across identities for the same label, :mod:`elim.analysis.consistency`) on probe
faces that show the SAME 24 labels for every test identity (:func:`probe_faces`, one clip per
identity: also the "synthetic video" of TTN), the CCC on those probe faces and a linear identity
probe on the features of the test faces (:func:`elim.analysis.invariance.identity_probe`,
folds grouped by clip; TTN: on the normalised features).

Rows of the result (``methods``): ``baseline``, ``elim`` (the paper), ``elim-vector`` (the
barycentric vector shift δ^e, ``matching.shift = "vector"``) and ``<method>+ttn`` (that fit
measured with test-time normalisation; no extra training).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from elim.analysis.consistency import prediction_consistency
from elim.analysis.invariance import identity_probe
from elim.analysis.shift import (
    DEFAULT_STRENGTHS,
    SHIFT_METHODS,
    STUDY_DATA,
    plot_shift,
    shift_markdown,
    shift_rows,
    summarise_shift,
)
from elim.config import Config, apply_overrides, preprocess_for
from elim.data.cache import FaceCache
from elim.data.splits import Splits, groups_of
from elim.datasets.synthetic import Knob, probe_faces, probe_labels
from elim.errors import ElimError
from elim.evaluation import infer
from elim.fileio import write_json
from elim.inference.identity_norm import IdentityNormaliser
from elim.metrics import va_metrics
from elim.runs import ResultStore, config_settings
from elim.runs.provenance import environment
from elim.studies.identities import study_parts
from elim.training.data import open_cache
from elim.training.fit import fit, training_bank

__all__ = ["run_shift_study"]

def _job(method: str, strength: float, seed: int) -> str:
    return f"{method}-s{strength:g}-seed{seed}"


def _scores(pred: np.ndarray, feats: np.ndarray, labels: np.ndarray, test_ids: np.ndarray,
            clips: np.ndarray, probe_pred: np.ndarray, probe_ids: np.ndarray,
            probe_labels: np.ndarray) -> dict[str, Any]:
    consistency = prediction_consistency(probe_pred, probe_ids, probe_labels)
    probe = identity_probe(feats, test_ids, groups=clips)
    return {"test": va_metrics(pred, labels),
            "probe_ccc": va_metrics(probe_pred, probe_labels)["ccc_mean"],
            "consistency": consistency.to_dict(), "identity_probe": probe.accuracy}


def _measure(model: Any, cfg: Config, cache: FaceCache, probe: FaceCache, splits: Splits
             ) -> dict[str, Any]:
    """Plain and test-time-normalised scores of one fitted model (module docstring)."""
    preprocess = preprocess_for(cfg)
    table = cache.table
    test = infer(model, preprocess, cache, splits.test)
    probe_out = infer(model, preprocess, probe, np.arange(len(probe)))
    ids = table["identity"].astype(str).to_numpy()
    test_ids, clips = ids[splits.test], table["clip"].astype(str).to_numpy()[splits.test]
    probe_ids = probe.table["identity"].astype(str).to_numpy()
    bank = training_bank(model, cfg, cache, splits.train)
    norm = IdentityNormaliser(model.head, cfg.matching.build(), bank)
    plain = _scores(test.predictions, test.features, test.labels, test_ids, clips,
                    probe_out.predictions, probe_ids, probe_out.labels)
    test_z, test_pred = norm.normalise_and_predict(test.features, test_ids)
    ttn = _scores(test_pred, test_z, test.labels, test_ids, clips,
                  norm.predict(probe_out.features, probe_ids), probe_ids, probe_out.labels)
    return {"plain": plain, "ttn": ttn, "bank_identities": len(bank)}


def _identity_index(names: Sequence[str]) -> list[int]:
    """Identity numbers of synthetic names ``id_007`` → 7."""
    return [int(str(n).rsplit("_", 1)[1]) for n in names]


def run_shift_study(
    config: Config,
    out_dir: str | Path,
    *,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    methods: Sequence[str] = ("baseline", "elim"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    knob: Knob = "shift",
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the benchmark; writes ``shift.json``, ``shift.md`` and ``shift.png``.

    Parameters
    ----------
    config
        Everything but the method, the seed and the knob's strength (which vary): the
        ``synthetic`` dataset generated in memory (no root); ``data.options`` may set the
        dataset's size (defaults :data:`STUDY_DATA`) but not ``shift`` / ``style``.
    out_dir
        The results folder (resumable; a folder with other settings is refused).
    strengths
        Values of the knob in [0, 1].
    methods
        Rows (:func:`shift_rows`).
    seeds
        Training seeds; the identities, labels and split do not depend on them.
    knob
        ``"shift"`` (the paper's identity shift) or ``"style"``; the other knob is 0.
    progress
        A progress bar over the fits.

    Returns
    -------
    dict
        The content of ``shift.json`` (see :func:`elim.analysis.shift.summarise_shift`).
    """
    from tqdm.auto import tqdm

    if knob not in get_args(Knob):
        raise ElimError(f"unknown knob {knob!r}; choose from {', '.join(get_args(Knob))}")
    rows, trained, labels = shift_rows(methods)
    strengths = sorted({float(s) for s in strengths})
    if not strengths or strengths[0] < 0 or strengths[-1] > 1:
        raise ElimError(f"--strengths must lie in [0, 1], got {strengths}")
    seeds = [int(s) for s in dict.fromkeys(seeds)]
    base = copy.deepcopy(config).validate()
    if base.data.dataset != "synthetic" or base.data.root is not None:
        raise ElimError("the identity-shift study draws its faces: use --dataset synthetic "
                        "without --root")
    given = set(base.data.options) & set(get_args(Knob))
    if given:
        raise ElimError(f"data.options {sorted(given)} are set by the study (--knob, "
                        "--strengths); remove them from the configuration")
    base.data.options = {**STUDY_DATA, **base.data.options}
    store = ResultStore(out_dir, {"config": config_settings(base), "knob": knob},
                        "shift_config.json", "identity-shift study")
    other = next(k for k in get_args(Knob) if k != knob)

    def config_at(strength: float) -> Config:
        return apply_overrides(base, {"data.options": {**base.data.options, knob: strength,
                                                       other: 0.0}}, source="shift study")

    caches: dict[float, tuple[FaceCache, FaceCache]] = {}

    def faces(strength: float) -> tuple[FaceCache, FaceCache]:
        if strength not in caches:
            cfg = config_at(strength)
            cache = open_cache(cfg, progress=False)
            names = np.unique(cache.table["identity"].astype(str).to_numpy()[parts.test])
            opts = cfg.data.options
            images, table = probe_faces(_identity_index(names), cache.image_size,
                                        int(opts.get("seed", 0)), shift=opts["shift"],
                                        style=opts["style"], n_identities=opts["n_identities"])
            caches[strength] = (cache, FaceCache.from_arrays(images, table))
        return caches[strength]

    first = open_cache(config_at(strengths[0]), progress=False)
    groups = groups_of(first.table)
    pool, val, test = study_parts(groups, base.data.fractions, base.data.split_seed)
    parts = Splits(np.flatnonzero(np.isin(groups, pool)), val, test, "shift study: fixed "
                   f"{len(pool)} training identities, {len(np.unique(groups[test]))} test "
                   "identities")
    del first

    jobs = [(m, s, seed) for seed in seeds for s in strengths for m in trained]
    results: dict[tuple[str, float, int], dict[str, Any]] = {}
    bar = tqdm(jobs, desc="shift study", unit="fit", disable=None if progress else True)
    for method, strength, seed in bar:
        job = _job(method, strength, seed)
        bar.set_postfix_str(job)
        stored = store.get(job)
        if stored is None:
            started = time.perf_counter()
            cache, probe = faces(strength)
            cfg = apply_overrides(config_at(strength), SHIFT_METHODS[method].overrides,
                                  source=f"shift study {method}")
            cfg.seed, cfg.train.progress = seed, False
            res = fit(cfg, None, cache=cache, splits=parts, checkpoints=False, quiet=True,
                      save=False)
            stored = store.put(job, {
                "method": method, "strength": strength, "seed": seed,
                **_measure(res.model, cfg, cache, probe, parts),
                "best_epoch": res.metrics["best_epoch"], "steps": res.metrics["steps"],
                "fit_seconds": res.metrics["seconds"],
                "seconds": round(time.perf_counter() - started, 3),
            })
        results[(method, strength, seed)] = stored

    result = summarise_shift(results, rows, labels, strengths, seeds)
    result.update({
        "knob": knob, "dataset": "synthetic", "data_options": base.data.options,
        "train_identities": len(pool), "test_identities": len(np.unique(groups[test])),
        "test_faces": len(test), "probe_labels": len(probe_labels()),
        "runs": [{k: v for k, v in r.items() if k != "fingerprint"} for r in results.values()],
        "settings": store.settings, "environment": environment(),
    })
    out = Path(out_dir)
    write_json(out / "shift.json", result)
    (out / "shift.md").write_text(shift_markdown(result))
    plot_shift(result, out / "shift.png")
    return result
