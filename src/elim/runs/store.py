"""Saving and loading run directories: what ``elim train`` writes and ``elim evaluate`` /
``elim predict`` read (file names: :mod:`elim.runs.layout`).

A run directory holds

- ``model.safetensors`` — the weights of :class:`elim.models.ElimModel` (no pickle, ever);
- ``config.json`` — everything needed to rebuild the model and its preprocessing
  (keys ``model``, ``preprocess`` and, for training runs, ``train``, ``data``, ``matching``);
- ``metrics.json`` — the final metrics; plus logs and Lightning checkpoints under ``logs/``.

Files are written atomically (temporary file in the same folder, then ``os.replace``), so an
interrupted write never leaves a truncated file that is later trusted.

Loading never runs code from a file: weights are read with safetensors, configurations as
JSON. The one pickle format we read, Lightning's training checkpoint (for ``--resume``), is
opened with ``torch.load(weights_only=True)`` — tensors, numbers, strings and plain
containers only — and only from the run's own ``logs/`` folder (:func:`load_training_checkpoint`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily: data tools should not pay for it
    import torch

from elim.errors import CheckpointError
from elim.fileio import atomic_write_bytes, write_json
from elim.fileio import read_json as _read_json
from elim.runs.layout import CHECKPOINT_SUFFIX, CONFIG, LOGS, METRICS, WEIGHTS


def read_json(path: str | Path) -> Any:
    """A JSON file of a run directory (CheckpointError naming the file when missing/invalid)."""
    return _read_json(path, CheckpointError, "is this a run directory written by `elim train`?")


def save_run(
    run_dir: str | Path,
    model: torch.nn.Module,
    config: dict,
    metrics: dict | None = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json`` and (optionally) ``metrics.json``."""
    from safetensors.torch import save

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(run_dir / WEIGHTS, save(state))
    write_json(run_dir / CONFIG, config)
    if metrics is not None:
        write_json(run_dir / METRICS, metrics)
    return run_dir


def load_config(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"{run_dir}: not a directory; pass the run directory written by `elim train --out`"
        )
    config = read_json(run_dir / CONFIG)
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{run_dir / CONFIG}: has no 'model' section; not an elim run config")
    if not isinstance(config["model"], dict):
        raise CheckpointError(f"{run_dir / CONFIG}: 'model' must be a mapping of model settings")
    return config


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the model of a run directory; returns ``(model in eval mode, config)``.

    Weights are read with safetensors only: a pickle (``.pt``/``.ckpt``) is refused, and so
    are weights holding NaN or inf (a model that would predict NaN). Every refusal is a
    :class:`CheckpointError` naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing; the run did not finish writing its model")
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{weights}: not a valid safetensors file ({err}); elim never loads pickled checkpoints"
        ) from err
    import torch

    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(
            f"{weights}: {len(broken)} weight tensor(s) hold NaN or inf (first: {broken[0]}); "
            "the training diverged or the file is damaged: retrain, or use another run"
        )
    from elim.models import build_model

    # The weights come from the file: never fetch ImageNet weights when rebuilding.
    model = build_model({**config["model"], "pretrained": False})
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{weights}: weights do not fit the model in {CONFIG}: {err}"
        ) from err
    return model.to(device).eval(), config


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` (symbolic links resolved) lies inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def load_training_checkpoint(path: str | Path, run_dir: str | Path) -> dict:
    """Read a Lightning training checkpoint of ``run_dir`` for resuming, without running code.

    Only ``*.ckpt`` files inside ``<run_dir>/logs/`` (symbolic links resolved) are accepted, and
    they are opened with ``torch.load(weights_only=True)``, which refuses any pickled object
    other than tensors, numbers, strings and plain containers. Every refusal is a
    :class:`CheckpointError` naming the file.
    """
    import pickle

    import torch

    path, run_dir = Path(path), Path(run_dir)
    logs = run_dir / LOGS
    if path.suffix != CHECKPOINT_SUFFIX or not _inside(path, logs):
        raise CheckpointError(
            f"{path}: refused; training checkpoints are read only from the run's own "
            f"{logs}/ folder (*{CHECKPOINT_SUFFIX}); resume with `elim train --resume RUN_DIR`"
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # files pickled with protocol > 2 load fine
            warnings.filterwarnings("ignore", message=".*Detected pickle protocol.*")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError,
            AttributeError, ImportError, IndexError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused; not a checkpoint that loads with torch.load(weights_only=True) "
            f"({first[:200]}); elim never unpickles arbitrary objects. Delete it to restart "
            "from the previous checkpoint or from scratch"
        ) from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"{path}: not a Lightning training checkpoint (no 'state_dict')")
    return state


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The most recently written ``*.ckpt`` under ``<run_dir>/logs/`` (None when there is none).

    Temporary files of interrupted writes (hidden ``.name.tmp`` files) are never returned.
    """
    logs = Path(run_dir) / LOGS
    if not logs.is_dir():
        return None
    found = [p for p in logs.rglob(f"*{CHECKPOINT_SUFFIX}")
             if p.is_file() and not p.name.startswith(".") and _inside(p, logs)]
    if not found:
        return None
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name))
