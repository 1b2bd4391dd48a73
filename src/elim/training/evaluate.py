"""``evaluate_run``: metrics of a saved run directory on a dataset split.

The model and its preprocessing come from the run (``model.safetensors``, ``config.json``).
Without a dataset the run's own dataset is reopened and its parts are the groups stored in
``splits.json`` (so "test" means exactly the identities the run was tested on). With another
dataset, "test"/"val" follow that dataset's split rule under the run's ``data`` settings
(official split when it has one, else the seeded group split) and "all" takes every face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elim.config import config_from_run
from elim.data.cache import open_dataset
from elim.data.transforms import Preprocess
from elim.errors import ElimError
from elim.metrics import va_metrics
from elim.runs import load_run, read_json
from elim.training.data import make_splits, predict, splits_from_groups
from elim.training.fit import SPLITS_FILE

__all__ = ["SPLIT_CHOICES", "RunSplit", "evaluate_run", "open_run_split"]

SPLIT_CHOICES = ("test", "val", "all")


def evaluate_run(
    run_dir: str | Path,
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    return_predictions: bool = False,
) -> dict[str, Any]:
    """Evaluate the run at ``run_dir`` on ``split`` (test | val | all) of a dataset.

    Returns ``{"run", "dataset", "root", "split", "n", "metrics"}`` (plus ``predictions`` and
    ``labels`` arrays with ``return_predictions``).
    """
    opened = open_run_split(run_dir, dataset, root, split, cache_dir=cache_dir, device=device,
                            progress=progress)
    model, preprocess, cache, indices = opened.model, opened.preprocess, opened.cache, opened.indices
    config, run_dir = opened.config, opened.run_dir
    pred, true = predict(model, preprocess, cache, indices, batch_size, device)
    out: dict[str, Any] = {
        "run": str(run_dir),
        "dataset": config.data.dataset,
        "root": config.data.root,
        "split": split,
        "n": len(indices),
        "metrics": va_metrics(pred, true),
    }
    if return_predictions:
        out["predictions"], out["labels"] = pred, true
    return out


@dataclass
class RunSplit:
    """A saved run rebuilt, with the faces of one split of the dataset it is evaluated on."""

    run_dir: Path
    model: Any
    run_config: dict
    config: Any  # elim.config.Config (data section pointed at the evaluated dataset)
    preprocess: Preprocess
    cache: Any  # elim.data.cache.FaceCache
    indices: np.ndarray
    split: str


def open_run_split(
    run_dir: str | Path,
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    *,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> RunSplit:
    """Rebuild ``run_dir``'s model and open the faces of ``split`` (test | val | all).

    With no ``dataset`` (or the run's own dataset and root) the run's stored identity split is
    used, so its test identities are exactly those held out in training.
    """
    if split not in SPLIT_CHOICES:
        raise ElimError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
    run_dir = Path(run_dir)
    model, cfg = load_run(run_dir, device=device)
    preprocess = Preprocess.from_config(cfg["preprocess"])
    if "data" not in cfg and dataset is None:
        raise ElimError(f"{run_dir / 'config.json'}: no 'data' section; pass --dataset and --root")
    config = config_from_run(cfg, source=str(run_dir / "config.json"))
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
        stored = run_dir / SPLITS_FILE
        if own and stored.is_file():
            splits = splits_from_groups(cache.table, read_json(stored))
        else:
            splits = make_splits(cache.table, config)
        indices = getattr(splits, split)
    if len(indices) == 0:
        raise ElimError(
            f"the {split!r} part of dataset {config.data.dataset!r} is empty; use --split all"
        )
    return RunSplit(run_dir, model, cfg, config, preprocess, cache,
                    np.asarray(indices, dtype=np.int64), split)
