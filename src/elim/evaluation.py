"""A trained run together with the faces it is evaluated or analysed on.

:class:`RunData` is the one object for "a saved run plus a split of a dataset": the model (eval
mode) and its preprocessing come from the run directory (:mod:`elim.runs`); the faces are either
the run's own dataset, where a split means exactly the identities stored in its
``splits.json`` (so "test" is what the run was tested on), or another dataset, where the split
follows that dataset's rule under the run's ``data`` settings; ``split="all"`` takes every face.

:func:`infer` maps faces of a cache through f_φ and f_θ (Eq. 5) with the one batched inference
loop (:func:`elim.models.infer`): validation after training, ``elim evaluate`` and every analysis
use it, so their numbers agree exactly. :func:`evaluate_run` is ``elim evaluate``.

Cross-dataset orderings (``elim evaluate-pairs``): :func:`read_pair_labels` reads a CSV of
labelled photos (path, identity, label), :func:`parse_orderings` what must hold per person
(``smiling>neutral``, ``sleepy<*:arousal``), and :func:`score_orderings` checks them on the
predictions (made by ``elim predict``'s predictor, which cuts faces by the run's contract).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch

from elim.config import Config, config_from_run
from elim.data.cache import FaceCache
from elim.data.splits import groups_of, make_splits, splits_from_groups
from elim.datasets import open_dataset
from elim.errors import ElimError
from elim.metrics import va_metrics
from elim.models import Preprocess
from elim.models import infer as infer_batches
from elim.runs import CONFIG, SPLITS, load_run, read_json

__all__ = [
    "ANY_OTHER",
    "LABEL_COLUMNS",
    "SPLIT_NAMES",
    "Dimension",
    "Inferred",
    "Ordering",
    "RunData",
    "Split",
    "evaluate_pairs",
    "evaluate_run",
    "infer",
    "load_run_data",
    "load_runs",
    "parse_orderings",
    "read_pair_labels",
    "run_labels",
    "run_name",
    "score_orderings",
]

#: Which faces of a dataset a run is evaluated on.
Split = Literal["test", "val", "all"]
SPLIT_NAMES: tuple[str, ...] = get_args(Split)


@dataclass
class Inferred:
    """Per-face outputs: features z = f_φ(x) (N, d), predictions f_θ(z) and labels (N, 2),
    all float64."""

    features: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray


def infer(
    model: torch.nn.Module,
    preprocess: Preprocess,
    cache: FaceCache,
    indices: np.ndarray,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> Inferred:
    """Features, predictions and labels of rows ``indices`` of ``cache`` (float64 arrays).

    The model runs in eval mode on sequential batches of ``batch_size`` faces (its previous
    mode is restored).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if batch_size < 1:
        raise ElimError(f"batch_size must be >= 1, got {batch_size}")
    batches = (np.asarray(cache.images[indices[i : i + batch_size]])
               for i in range(0, len(indices), batch_size))
    pred, feats = infer_batches(model, preprocess, batches, device=device, features=True)
    labels = cache.table[["valence", "arousal"]].to_numpy(np.float32)[indices]
    return Inferred(feats.astype(np.float64), pred.astype(np.float64), labels.astype(np.float64))


@dataclass
class RunData:
    """A loaded run (``model`` in eval mode on ``device``) and the rows ``indices`` of ``cache``.

    ``config`` is the run's :class:`elim.config.Config` with its ``data`` section pointed at the
    dataset being evaluated; ``run_config`` the run's ``config.json`` as written.
    """

    run_dir: Path
    name: str
    model: torch.nn.Module
    run_config: dict[str, Any]
    config: Config
    preprocess: Preprocess
    cache: FaceCache
    indices: np.ndarray
    split: str
    device: str = "cpu"

    @property
    def table(self) -> pd.DataFrame:
        """The cache table rows of ``indices`` (index reset)."""
        return self.cache.table.iloc[self.indices].reset_index(drop=True)

    def infer(self, indices: np.ndarray | None = None, batch_size: int = 256) -> Inferred:
        """Features, predictions and labels of rows ``indices`` of the cache (default: the split)."""
        return infer(self.model, self.preprocess, self.cache,
                     self.indices if indices is None else indices, batch_size, self.device)

    def evaluate(self, batch_size: int = 256, return_predictions: bool = False
                 ) -> dict[str, Any]:
        """Metrics of the run on its faces: ``{"run", "dataset", "root", "split", "n",
        "metrics"}`` (plus ``predictions`` and ``labels`` arrays with ``return_predictions``)."""
        out = self.infer(batch_size=batch_size)
        result: dict[str, Any] = {
            "run": str(self.run_dir),
            "dataset": self.config.data.dataset,
            "root": self.config.data.root,
            "split": self.split,
            "n": len(self.indices),
            "metrics": va_metrics(out.predictions, out.labels),
        }
        if return_predictions:
            result["predictions"], result["labels"] = out.predictions, out.labels
        return result

    def with_model_of(self, other_run: str | Path) -> RunData:
        """Another run's model (and preprocessing) on the same faces."""
        model, cfg = load_run(other_run, device=self.device)
        return replace(self, run_dir=Path(other_run), name=run_name(cfg, other_run), model=model,
                       run_config=cfg,
                       config=config_from_run(cfg, source=str(Path(other_run) / CONFIG)),
                       preprocess=Preprocess.from_config(cfg["preprocess"]))


def run_name(run_config: dict[str, Any], run_dir: str | Path) -> str:
    """Display name: ``ELIM`` or ``baseline`` (the method), else the folder name."""
    method = run_config.get("train", {}).get("method")
    return {"elim": "ELIM", "baseline": "baseline"}.get(method, Path(run_dir).name)


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """The runs' display names, made unique with their folder names when two coincide."""
    names = [r.name for r in runs]
    return [f"{n} ({r.run_dir.name})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def load_run_data(
    run_dir: str | Path,
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    *,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> RunData:
    """Rebuild ``run_dir``'s model and open the faces of ``split`` (test | val | all).

    With no ``dataset`` (or the run's own dataset and root) the run's stored identity split is
    used, so its test identities are exactly those held out in training.
    """
    if split not in SPLIT_NAMES:
        raise ElimError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_NAMES)}")
    run_dir = Path(run_dir)
    model, cfg = load_run(run_dir, device=device)
    preprocess = Preprocess.from_config(cfg["preprocess"])
    if "data" not in cfg and dataset is None:
        raise ElimError(f"{run_dir / CONFIG}: no 'data' section; pass --dataset and --root")
    config = config_from_run(cfg, source=str(run_dir / CONFIG))
    own = dataset is None or (dataset == config.data.dataset and (
        root is None or (config.data.root is not None
                         and Path(root).expanduser().absolute() == Path(config.data.root))))
    if not own:
        config.data.dataset = str(dataset)
        config.data.root = None if root is None else str(root)
        config.data.options = {}
    margin = float(cfg["preprocess"].get("margin", config.data.margin))
    cache = open_dataset(
        config.data.dataset, config.data.root, preprocess.image_size,
        cache_dir=cache_dir if cache_dir is not None else config.data.cache_dir,
        margin=margin, align=config.data.align, progress=progress, **config.data.options,
    )
    if split == "all":
        indices = np.arange(len(cache), dtype=np.int64)
    else:
        stored = run_dir / SPLITS
        if own and stored.is_file():
            splits = splits_from_groups(cache.table, read_json(stored))
        else:
            splits = make_splits(cache.table, config.data)
        indices = getattr(splits, split)
    if len(indices) == 0:
        raise ElimError(
            f"the {split!r} part of dataset {config.data.dataset!r} is empty; use --split all"
        )
    return RunData(run_dir, run_name(cfg, run_dir), model, cfg, config, preprocess, cache,
                   np.asarray(indices, dtype=np.int64), split, device)


def load_runs(
    run_dirs: Sequence[str | Path],
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    **options: Any,
) -> list[RunData]:
    """Several runs on the same faces: those of the first run.

    ``dataset``, ``root``, ``split`` and ``options`` (``cache_dir``, ``device``, ``progress``)
    are those of :func:`load_run_data`. Warns when a later run was trained on identities among
    those faces.
    """
    if not run_dirs:
        raise ElimError("no run directory given")
    first = load_run_data(run_dirs[0], dataset, root, split, **options)
    seen = set(groups_of(first.table).tolist())
    runs = [first]
    for d in run_dirs[1:]:
        run = first.with_model_of(d)
        stored = Path(d) / SPLITS
        if stored.is_file():
            overlap = seen & set(read_json(stored).get("train", []))
            if overlap and first.config.data.dataset == run.config.data.dataset:
                warnings.warn(f"{d} was trained on {len(overlap)} of the {len(seen)} identities "
                              f"analysed (the {split} part of {run_dirs[0]})", stacklevel=2)
        runs.append(run)
    return runs


def evaluate_run(
    run_dir: str | Path,
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    *,
    batch_size: int = 256,
    return_predictions: bool = False,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """``elim evaluate``: the run at ``run_dir`` on ``split`` (test | val | all) of a dataset.

    Faces as :func:`load_run_data` opens them (``options``: ``cache_dir``, ``device``); returns
    :meth:`RunData.evaluate` (``{"run", "dataset", "root", "split", "n", "metrics"}``, plus
    ``predictions`` and ``labels`` arrays with ``return_predictions``).
    """
    run = load_run_data(run_dir, dataset, root, split, progress=progress, **options)
    return run.evaluate(batch_size, return_predictions)


# --------------------------------------------------------------------------- orderings of pairs
#: The dimensions an ordering compares.
Dimension = Literal["valence", "arousal"]
#: Stands for "every other label of the person" in an ordering.
ANY_OTHER = "*"
#: Label columns looked for when none is named, in this order.
LABEL_COLUMNS = ("label", "expression")


@dataclass(frozen=True)
class Ordering:
    """"``higher`` gets a higher ``dimension`` than ``lower``" for the same person; ``lower``
    (or ``higher``) may be :data:`ANY_OTHER` (every other label of the person)."""

    higher: str
    lower: str
    dimension: Dimension = "valence"

    def __str__(self) -> str:
        return f"{self.higher} > {self.lower} on {self.dimension}"


def parse_orderings(specs: Sequence[str]) -> list[Ordering]:
    """Orderings from specs such as ``smiling>neutral`` (valence), ``happy>normal>sad:valence``
    (a chain: happy > normal and normal > sad), ``sleepy<*:arousal`` (sleepy below every other
    label of the person). ElimError naming the spec when it is malformed.
    """
    out: list[Ordering] = []
    for spec in specs:
        text, _, dim = str(spec).partition(":")
        dim = dim.strip() or "valence"
        if dim not in get_args(Dimension):
            raise ElimError(f"ordering {spec!r}: dimension {dim!r} is not one of "
                            f"{', '.join(get_args(Dimension))}")
        signs = [c for c in text if c in "<>"]
        labels = [s.strip() for s in text.replace("<", ">").split(">")]
        if not signs or len(set(signs)) > 1 or any(not s for s in labels):
            raise ElimError(f"ordering {spec!r}: expected labels joined by all '>' or all '<', "
                            "e.g. smiling>neutral, happy>normal>sad:valence, sleepy<*:arousal")
        if signs[0] == "<":
            labels = labels[::-1]
        for hi, lo in itertools.pairwise(labels):
            if hi == lo or (hi == ANY_OTHER and lo == ANY_OTHER):
                raise ElimError(f"ordering {spec!r}: compares {hi!r} with itself")
            out.append(Ordering(hi, lo, dim))  # type: ignore[arg-type]
    if not out:
        raise ElimError("no ordering given (e.g. --order smiling>neutral)")
    return out


def read_pair_labels(csv: str | Path, label_column: str | None = None) -> pd.DataFrame:
    """The labelled photos of a cross-dataset check: a CSV with ``path`` (relative to the CSV's
    folder), ``identity`` and a label column (``label_column``, else the first of
    :data:`LABEL_COLUMNS` present), optionally numeric ``valence`` / ``arousal``.

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (absolute), ``identity``, ``label`` (strings), and ``valence`` /
        ``arousal`` (float, NaN where empty) when the CSV has them. DataError naming the file
        for a missing column or no rows.
    """
    import io

    from elim.datasets.files import excerpt, read_label_bytes
    from elim.errors import DataError

    csv = Path(csv)
    try:
        table = pd.read_csv(io.BytesIO(read_label_bytes(csv)), dtype=str,
                            keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{csv}: not a CSV file ({excerpt(str(err))})") from None
    column = label_column or next((c for c in LABEL_COLUMNS if c in table.columns), None)
    missing = [c for c in ("path", "identity", column or LABEL_COLUMNS[0])
               if c not in table.columns]
    if missing:
        found = excerpt(", ".join(map(str, table.columns)))
        raise DataError(f"{csv}: no column {', '.join(missing)} (columns: {found}); the label "
                        "column is chosen with --label-column")
    table[column] = table[column].astype(str).str.strip()
    table = table[(table["path"].str.strip() != "") & (table[column] != "")]
    out = pd.DataFrame({
        "path": [str((csv.parent / p).absolute()) for p in table["path"]],
        "identity": table["identity"].astype(str).to_numpy(),
        "label": table[column].to_numpy(),
    })
    for dim in get_args(Dimension):
        if dim in table.columns:
            out[dim] = pd.to_numeric(table[dim].replace("", np.nan), errors="coerce").to_numpy()
    if len(out) == 0:
        raise DataError(f"{csv}: no labelled rows")
    return out


def evaluate_pairs(
    labels: pd.DataFrame,
    predict: Callable[[list[str]], pd.DataFrame],
    orderings: Sequence[Ordering],
) -> dict[str, Any]:
    """``elim evaluate-pairs``: predict every photo of ``labels`` and check ``orderings``.

    Parameters
    ----------
    labels
        :func:`read_pair_labels`.
    predict
        Paths → the table of ``elim predict`` (``ElimPredictor.predict``: faces found by the
        detector and cut by the run's face contract), one row per face.
    orderings
        :func:`parse_orderings` (may be empty when ``labels`` has numeric valence/arousal).

    Returns
    -------
    dict
        :func:`score_orderings` of the largest face of each photo, plus ``photos`` (labelled
        rows), ``faces`` (rows with a face) and ``missing`` (``{"path", "status"}`` of the
        photos without one: ``no_face`` or ``error: …``).
    """
    paths = list(dict.fromkeys(labels["path"]))
    table = predict(paths)
    ok = table[table["status"] == "ok"].copy()
    ok["area"] = (ok["x1"].astype(float) - ok["x0"].astype(float)) * \
        (ok["y1"].astype(float) - ok["y0"].astype(float))
    largest = ok.sort_values("area", ascending=False, kind="stable").drop_duplicates("source")
    largest = largest.rename(columns={"valence": "pred_valence", "arousal": "pred_arousal"})
    faces = labels.merge(largest[["source", "pred_valence", "pred_arousal"]],
                         left_on="path", right_on="source", how="inner").drop(columns="source")
    faces[["pred_valence", "pred_arousal"]] = faces[["pred_valence", "pred_arousal"]].astype(float)
    status = table.drop_duplicates("source").set_index("source")["status"]
    found = set(largest["source"])
    missing = [{"path": p, "status": str(status.get(p, "no_face"))}
               for p in paths if p not in found]
    result = score_orderings(faces, orderings)
    return {"photos": len(labels), "faces": len(faces), "missing": missing, **result}


def score_orderings(faces: pd.DataFrame, orderings: Sequence[Ordering]) -> dict[str, Any]:
    """Per-person check of ``orderings`` on predicted valence/arousal.

    Parameters
    ----------
    faces
        One row per photo with a face: ``identity``, ``label``, ``pred_valence``,
        ``pred_arousal`` (and ``valence`` / ``arousal`` labels when known). A person's value
        for a label is the mean over their photos with that label.
    orderings
        What must hold (:func:`parse_orderings`).

    Returns
    -------
    dict
        ``orderings``: per ordering ``{"ordering", "people", "respected", "fraction"}``
        (people = those with both sides; fraction None when there are none);
        ``per_person``: DataFrame ``identity, ordering, higher, lower, respected`` (the
        person's values of the two sides; with :data:`ANY_OTHER`, the extreme of the others);
        ``metrics``: :func:`elim.metrics.va_metrics` (CCC, …) over the photos with both numeric
        labels, None without such photos; ``n_metrics``: their count.
    """
    means = faces.groupby(["identity", "label"])[["pred_valence", "pred_arousal"]].mean()
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for order in orderings:
        col = f"pred_{order.dimension}"
        respected = people = 0
        for identity, values in means[col].groupby(level="identity"):
            values = values.droplevel("identity")
            if order.higher != ANY_OTHER and order.higher not in values.index:
                continue
            if order.lower != ANY_OTHER and order.lower not in values.index:
                continue
            if order.lower == ANY_OTHER:
                hi, others = values[order.higher], values.drop(order.higher)
                lo = others.max() if len(others) else np.nan
            elif order.higher == ANY_OTHER:
                lo, others = values[order.lower], values.drop(order.lower)
                hi = others.min() if len(others) else np.nan
            else:
                hi, lo = values[order.higher], values[order.lower]
            if not (np.isfinite(hi) and np.isfinite(lo)):
                continue
            ok = bool(hi > lo)
            people += 1
            respected += ok
            rows.append({"identity": identity, "ordering": str(order), "higher": float(hi),
                         "lower": float(lo), "respected": ok})
        summary.append({"ordering": str(order), "people": people, "respected": respected,
                        "fraction": round(respected / people, 4) if people else None})
    metrics, n_metrics = None, 0
    if all(d in faces.columns for d in get_args(Dimension)):
        known = faces[["valence", "arousal"]].notna().all(axis=1).to_numpy()
        n_metrics = int(known.sum())
        if n_metrics:
            metrics = va_metrics(faces.loc[known, ["pred_valence", "pred_arousal"]].to_numpy(),
                                 faces.loc[known, ["valence", "arousal"]].to_numpy())
    per_person = pd.DataFrame(rows, columns=["identity", "ordering", "higher", "lower",
                                             "respected"])
    return {"orderings": summary, "per_person": per_person, "metrics": metrics,
            "n_metrics": n_metrics}
