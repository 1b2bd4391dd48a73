"""``elim evaluate RUN_DIR``: metrics of a trained run on a dataset split.

Without ``--dataset`` the run's own dataset is used, and ``--split test`` (the default) means
the identities the run was tested on (stored in its ``splits.json``).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from elim.datasets import list_datasets
    from elim.evaluation import SPLIT_NAMES

    parser = sub.add_parser("evaluate", help="evaluate a run directory on a dataset split",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `elim train`")
    parser.add_argument("--dataset", choices=list_datasets(),
                        help="dataset to evaluate on (default: the run's own)")
    parser.add_argument("--root", metavar="PATH", help="dataset folder or labels file")
    parser.add_argument("--split", choices=SPLIT_NAMES, default="test")
    parser.add_argument("--cache-dir", metavar="DIR")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.errors import DataError
    from elim.evaluation import evaluate_run
    from elim.metrics import format_metrics_table

    if args.dataset not in (None, "synthetic") and args.root is None:
        raise DataError(f"--dataset {args.dataset} needs --root (its folder or labels file)")
    result = evaluate_run(args.run_dir, args.dataset, args.root, args.split,
                          cache_dir=args.cache_dir, batch_size=args.batch_size,
                          device=args.device, progress=not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    name = f"{result['dataset']}/{result['split']} (n={result['n']})"
    print(format_metrics_table({name: result["metrics"]}, label="data"))
    return 0
