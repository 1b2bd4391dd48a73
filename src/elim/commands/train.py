"""``elim train``: train ELIM (or the baseline) and write a run directory.

With no arguments it trains ``cnn-small`` with ELIM on the synthetic default dataset (the
``synthetic`` preset, about a minute on a CPU) and prints the validation and test metrics.
Settings come from, in increasing priority: the defaults (the paper's optimisation), a preset
(``--preset``; ``synthetic`` is used when neither ``--preset`` nor ``--config`` is given and the
dataset is synthetic), a YAML file (``--config``) and the flags below.

Several processes: ``--devices G --strategy ddp`` (one process per device, each drawing its own
identities), on several machines also ``--num-nodes N`` (started by torchrun, SLURM's srun or
once per machine with NODE_RANK; docs/scaling.md). An interrupted run continues with
``elim train --resume RUN_DIR``; ``--out`` never replaces a finished run without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, get_args

from elim.config import (
    PRESETS,
    Accelerator,
    Config,
    Method,
    Precision,
    SplitMode,
    Strategy,
    apply_overrides,
    load_config_file,
    preset_config,
)
from elim.matching import Sampling, Weights
from elim.ot import Grad, Solver

#: flag destination → dotted config key
_FLAG_KEYS = {
    "dataset": "data.dataset", "root": "data.root", "image_size": "data.image_size",
    "cache_dir": "data.cache_dir", "split_mode": "data.split_mode",
    "batch_identities": "data.batch_identities",
    "samples_per_identity": "data.samples_per_identity",
    "method": "train.method", "epochs": "train.epochs", "max_steps": "train.max_steps",
    "lr": "train.lr", "lr_head": "train.lr_head", "warmup": "train.warmup",
    "main_weight": "train.main_weight", "grad_clip": "train.grad_clip",
    "accelerator": "train.accelerator", "devices": "train.devices",
    "precision": "train.precision", "max_minutes": "train.max_minutes",
    "backbone": "model.backbone", "feature_dim": "model.feature_dim",
    "pretrained": "model.pretrained",
    "eps": "matching.eps", "k": "matching.k", "n_identities": "matching.n_identities",
    "weights": "matching.weights", "sampling": "matching.sampling",
    "solver": "matching.solver", "grad": "matching.grad",
    "threads": "train.threads", "seed": "seed",
}


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None) -> None:
    """The configuration flags shared by ``elim train`` and ``elim cv``."""
    from elim.datasets import list_datasets

    g = parser.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE", help="YAML (or JSON) preset; flags override it")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help=f"built-in preset (default: {default_preset or 'none'} when no --config)")
    d = parser.add_argument_group("data")
    d.add_argument("--dataset", choices=list_datasets())
    d.add_argument("--root", metavar="PATH", help="dataset folder or labels file")
    d.add_argument("--image-size", type=int, help="face size in pixels (default: the backbone's)")
    d.add_argument("--cache-dir", metavar="DIR", help="where face caches are kept")
    d.add_argument("--split-mode", choices=get_args(SplitMode))
    d.add_argument("--batch-identities", type=int, metavar="P", help="identities per batch")
    d.add_argument("--samples-per-identity", type=int, metavar="K", help="samples per identity")
    m = parser.add_argument_group("model and optimisation")
    m.add_argument("--method", choices=get_args(Method))
    m.add_argument("--backbone", help="cnn-small, alexnet-light, resnet18, mixer, timm:<model>")
    m.add_argument("--feature-dim", type=int, metavar="D")
    m.add_argument("--pretrained", action="store_true", default=None,
                   help="ImageNet weights (must already be in the local cache)")
    m.add_argument("--epochs", type=int)
    m.add_argument("--max-steps", type=int, help="stop after this many iterations")
    m.add_argument("--lr", type=float, help="learning rate of the backbone f_φ")
    m.add_argument("--lr-head", type=float, help="learning rate of the head f_θ")
    m.add_argument("--warmup", type=float, metavar="FRACTION",
                   help="fraction of all steps over which the L_main weight ramps 0 → 1")
    m.add_argument("--main-weight", type=float, help="weight of L_main after the warm-up")
    m.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient norm")
    m.add_argument("--seed", type=int)
    o = parser.add_argument_group("identity matching (method elim)")
    o.add_argument("--eps", type=float,
                   help="entropic regularisation of Sinkhorn, in cosine-cost units (>= 1e-4)")
    o.add_argument("--k", type=int, help="samples per identity kept by the Gumbel top-k (Eq. 7)")
    o.add_argument("--n-identities", type=int, metavar="N", help="identities matched per batch")
    o.add_argument("--weights", choices=get_args(Weights), help="OT masses (Eq. 8)")
    o.add_argument("--sampling", choices=get_args(Sampling))
    o.add_argument("--solver", choices=get_args(Solver),
                   help="OT solver (--eps is a Sinkhorn option: not with exact or qp)")
    o.add_argument("--grad", choices=get_args(Grad), help="gradient through the plan")
    e = parser.add_argument_group("engine")
    e.add_argument("--accelerator", choices=get_args(Accelerator))
    e.add_argument("--devices", type=lambda s: s if s == "auto" else int(s))
    e.add_argument("--precision", choices=get_args(Precision))
    e.add_argument("--max-minutes", type=float, help="wall-clock cap of the training loop")
    e.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: the config's; presets use 1)")


def config_from_args(args: argparse.Namespace, default_preset: str | None) -> Config:
    """Defaults ← preset ← ``--config`` file ← flags."""
    preset = args.preset
    if preset is None and args.config is None and default_preset is not None:
        dataset = args.dataset
        if default_preset != "synthetic" or dataset in (None, "synthetic"):
            preset = default_preset
    config = preset_config(preset) if preset else Config()
    if args.config:
        config = load_config_file(args.config, base=config)
    overrides: dict[str, Any] = {key: getattr(args, dest) for dest, key in _FLAG_KEYS.items()}
    config = apply_overrides(config, overrides)
    if args.dataset is not None and args.dataset != "synthetic" and args.root is None \
            and config.data.root is None:
        from elim.errors import DataError

        raise DataError(f"--dataset {args.dataset} needs --root (its folder or labels file)")
    return config


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train", help="train ELIM or the baseline; writes a run directory",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_config_arguments(parser, default_preset="synthetic")
    f = parser.add_argument_group("scaling and faults (docs/scaling.md)")
    f.add_argument("--strategy", choices=get_args(Strategy),
                   help="ddp: one process per device (--devices G), gloo on CPU, nccl on GPU")
    f.add_argument("--num-nodes", type=int, metavar="N",
                   help="machines taking part (N × G processes; each machine runs this command: "
                        "torchrun, srun, or NODE_RANK/MASTER_ADDR/MASTER_PORT); needs --out")
    f.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="write the resume checkpoint every STEPS steps (0: at epoch ends only)")
    f.add_argument("--max-bad-steps", type=int, metavar="M",
                   help="stop after M consecutive steps with a non-finite loss (0: never)")
    f.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR from its last checkpoint "
                        "(its configuration is used; only --threads and --json may be added)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default runs/<time>-<method>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the finished or unfinished run in --out (a folder holding "
                             "other files is never written into)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


_TRAIN_ONLY_KEYS = {"strategy": "train.strategy", "num_nodes": "train.num_nodes",
                    "checkpoint_every": "train.checkpoint_every",
                    "max_bad_steps": "train.max_bad_steps"}
#: DDP starts the other processes by re-running this command: they must write to the same run.
_RUN_DIR_ENV = "ELIM_TRAIN_RUN_DIR"


def _started_by_launcher() -> bool:
    """This process is one of several started by torchrun or srun (each picks its own run
    folder name unless ``--out`` is given)."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1


def _resume(args: argparse.Namespace):
    from elim.errors import ElimError
    from elim.training import resume

    given = [f"--{dest.replace('_', '-')}" for dest in (*_FLAG_KEYS, *_TRAIN_ONLY_KEYS)
             if dest != "threads" and getattr(args, dest, None) is not None]
    given += [f"--{name}" for name in ("config", "preset") if getattr(args, name) is not None]
    given += ["--overwrite"] if args.overwrite else []
    if args.out is not None and os.path.abspath(args.out) != os.path.abspath(args.resume):
        given.append("--out")
    if given:
        raise ElimError(f"--resume continues with the configuration stored in the checkpoint; "
                        f"drop {', '.join(given)}")
    return resume(args.resume, progress=not args.json, threads=args.threads)


def _fresh(args: argparse.Namespace):
    from elim.errors import ElimError
    from elim.runs import default_run_dir
    from elim.training import fit

    config = config_from_args(args, default_preset="synthetic")
    config = apply_overrides(config, {key: getattr(args, dest)
                                      for dest, key in _TRAIN_ONLY_KEYS.items()})
    if args.json:
        config.train.progress = False
    out = args.out or os.environ.get(_RUN_DIR_ENV)
    if out is None and (config.train.num_nodes > 1 or _started_by_launcher()):
        raise ElimError("--out is needed when the processes of a run are started on several "
                        "machines or by torchrun / srun: all of them must write to one folder")
    out = out or default_run_dir(config.train.method)
    ours = _RUN_DIR_ENV not in os.environ
    os.environ[_RUN_DIR_ENV] = str(out)
    try:
        return fit(config, out, overwrite=args.overwrite)
    finally:
        if ours:
            os.environ.pop(_RUN_DIR_ENV, None)


def run(args: argparse.Namespace) -> int:
    from elim.metrics import format_metrics_table
    from elim.training.run_dir import TrainingInterrupted

    try:
        result = _resume(args) if args.resume is not None else _fresh(args)
    except TrainingInterrupted as stop:
        if stop.rank == 0:
            print(f"elim train: {stop.hint()}", file=sys.stderr)
        return 130
    config_train, config_model = result.config["train"], result.config["model"]
    if result.global_rank != 0:  # the other DDP processes: process 0 reports
        return 0
    metrics = result.metrics
    if args.json:
        print(json.dumps({"run_dir": str(result.run_dir), "metrics": metrics}, indent=2))
        return 0
    rows = {part: metrics[part] for part in ("val", "test") if part in metrics}
    print(format_metrics_table(rows, label="split"))
    print(
        f"method {config_train['method']}, backbone {config_model['backbone']}, "
        f"best epoch {metrics['best_epoch']}, {metrics['steps']} steps, "
        f"{metrics['seconds']:.1f} s; sizes {metrics['sizes']}"
    )
    skipped = metrics.get("skipped_steps", {}).get("skipped_steps", 0)
    if skipped:
        print(f"skipped {skipped} step(s) with a non-finite loss or gradient: "
              f"{metrics['skipped_steps']['by_cause']} (see metrics.json)")
    data = metrics.get("data_skipped", {})
    if data:
        reasons = "; ".join(f"{k}: {v['count']}" for k, v in data.items())
        print(f"data: skipped {sum(v['count'] for v in data.values())} record(s) ({reasons})")
    print(f"run dir: {result.run_dir}")
    return 0


__all__ = ["add_config_arguments", "config_from_args", "register", "run"]
