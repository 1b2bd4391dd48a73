"""A trained run together with the faces it is evaluated or analysed on.

:class:`RunData` is the one object for "a saved run plus a split of a dataset": the model (eval
mode) and its preprocessing come from the run directory (:mod:`elim.runs`); the faces are either
the run's own dataset, where a split means exactly the identities stored in its
``splits.json`` (so "test" is what the run was tested on), or another dataset, where the split
follows that dataset's rule under the run's ``data`` settings; ``split="all"`` takes every face.

:func:`infer` maps faces of a cache through f_φ and f_θ (Eq. 5) with the one batched inference
loop (:func:`elim.models.infer`): validation after training, ``elim evaluate`` and every analysis
use it, so their numbers agree exactly. :func:`evaluate_run` is ``elim evaluate``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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
    "SPLIT_NAMES",
    "Inferred",
    "RunData",
    "Split",
    "evaluate_run",
    "infer",
    "load_run_data",
    "load_runs",
    "run_labels",
    "run_name",
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
        margin=margin, progress=progress, **config.data.options,
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
