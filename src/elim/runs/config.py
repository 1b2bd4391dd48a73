"""The ``config.json`` of a run and where new runs go.

``run_config`` is the one writer of a training run's configuration: the model section that
:func:`elim.models.build_model` takes, the ``preprocess`` section (the face contract that
``elim predict`` replays), the training settings, the dataset (absolute root), the matching
layer, the seed and the elim version.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elim.config import Config, preprocess_for

if TYPE_CHECKING:
    from elim.data.splits import Splits

__all__ = ["default_run_dir", "run_config"]


def default_run_dir(method: str, root: str | Path = "runs") -> Path:
    """``runs/<YYYYmmdd-HHMMSS>-<method>`` (a numeric suffix keeps it unique)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{method}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run_config(config: Config, splits: Splits | None = None) -> dict[str, Any]:
    """The ``config.json`` of a run: model, preprocess, train, data, matching, seed, version."""
    from elim import __version__

    pre = preprocess_for(config)
    data = asdict(config.data)
    if data["root"] is not None:
        data["root"] = str(Path(data["root"]).expanduser().absolute())
    out: dict[str, Any] = {
        "model": config.model.to_model_dict(),
        "preprocess": {**pre.to_dict(), "margin": float(config.data.margin)},
        "train": asdict(config.train),
        "data": data,
        "matching": asdict(config.matching),
        "seed": int(config.seed),
        "elim_version": __version__,
    }
    if splits is not None:
        out["split"] = {"rule": splits.rule, "sizes": splits.sizes()}
    return out
