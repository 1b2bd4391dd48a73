"""A trained run directory together with the faces it is analysed on, and its features.

The model, its preprocessing and its training configuration come from the run directory
(``elim.runs``). The faces: without ``dataset`` the run's own dataset, and a split means exactly
the identities stored in the run's ``splits.json``; with another dataset the split follows that
dataset's rule under the run's ``data`` settings; ``split="all"`` takes every face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elim.config import Config, config_from_run
from elim.data.cache import FaceCache
from elim.data.transforms import Preprocess
from elim.errors import ElimError
from elim.runs import load_run, read_json

__all__ = [
    "SPLITS",
    "Extracted",
    "RunData",
    "extract",
    "load_run_data",
    "load_runs",
    "run_labels",
    "run_name",
]

SPLITS = ("test", "val", "all")


@dataclass
class Extracted:
    """Per-face outputs of a model: features z = f_φ(x) (N, d), predictions f_θ(z) and labels (N, 2)."""

    features: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray


@dataclass
class RunData:
    """A loaded run (``model`` in eval mode on ``device``) and the rows ``indices`` of ``cache``."""

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

    def extract(self, indices: np.ndarray | None = None, batch_size: int = 256) -> Extracted:
        """Features, predictions and labels of rows ``indices`` of the cache (default: the split)."""
        return extract(self.model, self.preprocess, self.cache,
                       self.indices if indices is None else indices, batch_size, self.device)

    def with_model_of(self, other_run: str | Path) -> RunData:
        """Another run's model (and preprocessing) on the same faces."""
        model, cfg = load_run(other_run, device=self.device)
        return RunData(Path(other_run), run_name(cfg, other_run), model, cfg,
                       config_from_run(cfg, source=str(Path(other_run) / "config.json")),
                       Preprocess.from_config(cfg["preprocess"]), self.cache, self.indices,
                       self.split, self.device)


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
    """Open ``run_dir`` and the faces of ``split`` (test | val | all) it is analysed on."""
    from elim.training.evaluate import open_run_split

    if split not in SPLITS:
        raise ElimError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    o = open_run_split(run_dir, dataset, root, split, cache_dir=cache_dir, device=device,
                       progress=progress)
    return RunData(o.run_dir, run_name(o.run_config, o.run_dir), o.model, o.run_config, o.config,
                   o.preprocess, o.cache, o.indices, split, device)


def load_runs(
    run_dirs: Sequence[str | Path],
    dataset: str | None = None,
    root: str | Path | None = None,
    split: str = "test",
    *,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> list[RunData]:
    """Several runs on the same faces: those of the first run (see :func:`load_run_data`).

    Warns when a later run was trained on identities among those faces.
    """
    import warnings

    from elim.training.data import groups_of
    from elim.training.fit import SPLITS_FILE

    if not run_dirs:
        raise ElimError("no run directory given")
    first = load_run_data(run_dirs[0], dataset, root, split, cache_dir=cache_dir, device=device,
                          progress=progress)
    seen = set(groups_of(first.table).tolist())
    runs = [first]
    for d in run_dirs[1:]:
        run = first.with_model_of(d)
        stored = Path(d) / SPLITS_FILE
        if stored.is_file():
            overlap = seen & set(read_json(stored).get("train", []))
            if overlap and first.config.data.dataset == run.config.data.dataset:
                warnings.warn(f"{d} was trained on {len(overlap)} of the {len(seen)} identities "
                              f"analysed (the {split} part of {run_dirs[0]})", stacklevel=2)
        runs.append(run)
    return runs


@torch.no_grad()
def extract(
    model: torch.nn.Module,
    preprocess: Preprocess,
    cache: FaceCache,
    indices: np.ndarray,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> Extracted:
    """Features z = f_φ(x), predictions f_θ(z) and labels of rows ``indices`` (eval mode)."""
    from elim.training.data import eval_loader

    was_training = model.training
    model.eval()
    feats, preds, labels = [], [], []
    try:
        for images, y, _ in eval_loader(cache, np.asarray(indices), batch_size):
            z = model.features(preprocess(images.to(device)))
            feats.append(z.float().cpu())
            preds.append(model.predict_head(z).float().cpu())
            labels.append(y.float())
    finally:
        model.train(was_training)
    if not feats:
        raise ElimError("no faces to extract features from")
    return Extracted(torch.cat(feats).double().numpy(), torch.cat(preds).double().numpy(),
                     torch.cat(labels).double().numpy())
