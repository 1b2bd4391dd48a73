"""``elim ablate``: the OT ablation of the paper's Table 4 as cross-validated ELIM runs.

Grid: solver (sinkhorn, exact = network simplex, qp = qpth) × weights (relevance, self) ×
sampling (gumbel, none); ``--cells`` picks a subset by name or pattern, e.g.
``--cells 'sinkhorn-*,exact-relevance-gumbel'``. Each cell is an ``elim cv`` of method elim in
``OUT/cells/<cell>/`` (resumable); cells whose solver needs a missing package are listed as
skipped. Prints mean CCC (± std over folds × seeds) beside the matching layer's time.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from elim.commands.cv import _ints, _names
    from elim.commands.train import add_config_arguments

    parser = sub.add_parser("ablate", help="OT ablation grid (Table 4): solver × weights × sampling",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_config_arguments(parser, default_preset="ck_plus")
    g = parser.add_argument_group("ablation")
    g.add_argument("--cells", type=_names, metavar="NAMES",
                   help="comma-separated cell names or patterns (default: the whole grid)")
    g.add_argument("--folds", type=int, default=6)
    g.add_argument("--seeds", type=_ints, default=[0], help="comma-separated, e.g. 0,1,2")
    g.add_argument("--fold-seed", type=int, default=0, help="seed of the fold assignment")
    g.add_argument("--val-fraction", type=float, default=0.0,
                   help="share of each fold's training identities held out to pick the best "
                        "epoch (default 0, as elim cv: the last epoch is tested)")
    g.add_argument("--jobs", type=int, default=None,
                   help="fits run at once in separate processes (default: the usable CPU "
                        "cores, at most 8)")
    g.add_argument("--timing-batches", type=int, default=20,
                   help="batches of the timed pass of the matching layer per cell")
    g.add_argument("--logs", action="store_true", help="keep a CSV training log per fit")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (resumable)")
    parser.add_argument("--json", action="store_true", help="print ablation.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from elim.analysis.ablation import AXES
    from elim.commands.cv import default_jobs, print_results
    from elim.commands.train import config_from_args
    from elim.errors import ElimError
    from elim.studies.ablation import run_ablation, select_cells

    given = [f"--{k}" for k in AXES if getattr(args, k) is not None]
    if given:
        raise ElimError(f"{', '.join(given)}: the grid sets these; pick cells with --cells")
    config = config_from_args(args, default_preset="ck_plus")
    result = run_ablation(
        config, args.out, cells=select_cells(args.cells), folds=args.folds, seeds=args.seeds,
        fold_seed=args.fold_seed, val_fraction=args.val_fraction,
        timing_batches=args.timing_batches, progress=not args.json, logs=args.logs,
        jobs=args.jobs if args.jobs is not None else default_jobs(),
    )
    return print_results(result, args.json, args.out, "ablation.json", "ablation.md")
