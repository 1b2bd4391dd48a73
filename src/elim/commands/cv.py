"""``elim cv``: subject-independent k-fold cross-validation of baseline and ELIM over seeds.

Defaults to the ``ck_plus`` preset (cnn-small at 48 px, small-data optimisation) when neither
``--preset`` nor ``--config`` is given. Results per (method, seed, fold) are written as soon as
each fit ends, so rerunning the same command after an interruption only does what is missing.
"""

from __future__ import annotations

import argparse
import json
from typing import get_args

from elim.config import Method


def default_jobs() -> int:
    """Usable CPU cores (affinity-aware, :func:`elim.inference.threads.available_cpus`), at
    most 8."""
    from elim.inference.threads import available_cpus

    return max(1, min(8, available_cpus()))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    from elim.commands.train import add_config_arguments

    parser = sub.add_parser("cv", help="subject-independent k-fold cross-validation",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_config_arguments(parser, default_preset="ck_plus")
    c = parser.add_argument_group("cross-validation")
    c.add_argument("--folds", type=int, default=6)
    c.add_argument("--methods", type=_names, default=["baseline", "elim"],
                   help=f"comma-separated, from {','.join(get_args(Method))}")
    c.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="comma-separated, e.g. 0,1,2")
    c.add_argument("--fold-seed", type=int, default=0, help="seed of the fold assignment")
    c.add_argument("--val-fraction", type=float, default=0.0,
                   help="share of each fold's training identities held out to pick the best "
                        "epoch by validation CCC (default 0: fixed schedule, the last epoch "
                        "is tested)")
    c.add_argument("--jobs", type=int, default=None,
                   help="fits run at once in separate processes (default: the usable CPU "
                        "cores, at most 8)")
    c.add_argument("--no-logs", action="store_true", help="no per-fit CSV logs")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (resumable)")
    parser.add_argument("--json", action="store_true", help="print cv.json instead of cv.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.commands.train import config_from_args
    from elim.training.cv import cross_validate

    config = config_from_args(args, default_preset="ck_plus")
    summary = cross_validate(
        config, args.out, folds=args.folds, methods=args.methods, seeds=args.seeds,
        fold_seed=args.fold_seed,
        val_fraction=args.val_fraction, progress=not args.json, logs=not args.no_logs,
        jobs=args.jobs if args.jobs is not None else default_jobs(),
    )
    return print_results(summary, args.json, args.out, "cv.json", "cv.md")


def print_results(result: dict, as_json: bool, out_dir: str, *files: str) -> int:
    """Print a results folder's summary: ``result`` as JSON, or its Markdown table (the first
    ``.md`` of ``files``) and the list of ``files`` written; returns the exit status 0."""
    from pathlib import Path

    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    out = Path(out_dir)
    table = next(f for f in files if f.endswith(".md"))
    print((out / table).read_text(), end="")
    print(f"written: {', '.join(str(out / f) for f in files)}")
    return 0
