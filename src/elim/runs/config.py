"""The ``config.json`` of a run and where new runs go.

``run_config`` is the one writer of a training run's configuration: the model section that
:func:`elim.models.build_model` takes, the ``preprocess`` section (normalisation and the face
contract, ``preprocess["face"]``, that ``elim predict`` replays), the training settings, the
dataset (absolute root), the matching layer, the seed and the elim version.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elim.config import Config, preprocess_for

if TYPE_CHECKING:
    from elim.data.face_contract import FaceContract
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


def run_config(config: Config, splits: Splits | None = None,
               face: FaceContract | None = None) -> dict[str, Any]:
    """The ``config.json`` of a run: model, preprocess, train, data, matching, seed, version.

    Parameters
    ----------
    config
        The run's configuration.
    splits
        Its parts (their rule and sizes go under ``split``).
    face
        The face contract measured on its training faces
        (:func:`elim.data.face_contract.contract_of_cache`), written as
        ``preprocess["face"]``; without it ``preprocess`` has ``margin`` only (the ``box``
        geometry, as runs written before the contract).

    Returns
    -------
    dict
        ``preprocess`` holds ``image_size``, ``mean``, ``std``
        (:func:`elim.config.preprocess_for`), ``margin`` (``data.margin``, the margin of the training cache) and ``face``.
    """
    from elim import __version__

    pre = preprocess_for(config)
    data = asdict(config.data)
    if data["root"] is not None:
        data["root"] = str(Path(data["root"]).expanduser().absolute())
    preprocess: dict[str, Any] = {**pre.to_dict(), "margin": float(config.data.margin)}
    if face is not None:
        preprocess["face"] = face.to_dict()
    out: dict[str, Any] = {
        "model": config.model.to_model_dict(),
        "preprocess": preprocess,
        "train": asdict(config.train),
        "data": data,
        "augment": asdict(config.augment),
        "matching": asdict(config.matching),
        "seed": int(config.seed),
        "elim_version": __version__,
    }
    if splits is not None:
        out["split"] = {"rule": splits.rule, "sizes": splits.sizes()}
    return out
