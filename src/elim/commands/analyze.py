"""``elim analyze invariance RUN...``: how identity-invariant the features of trained runs are.

Features z = f_φ(x) of the same faces (default: the first run's test identities) go to linear
identity probes (on z, its direction and its magnitude; accuracy, lower = more invariant, next
to chance) and a distance ratio (same-label pairs of different identities / different-label
pairs of one identity; lower = more invariant); the predictions to the consistency spread (std
across identities of the prediction for the same label; lower = more consistent) and CCC.
``--test-time-norm`` adds each run after test-time identity normalisation of every identity's
faces (its reference bank). Writes ``invariance.json`` and ``invariance.md`` in ``--out``.

``elim analyze paired CV_DIR:METHOD CV_DIR:METHOD``: the paired difference of a test metric
between two methods of ``elim cv`` folders made with the same folds (mean, 95 % interval, wins).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from elim.commands.plot import add_run_data_arguments
    from elim.data.records import GROUP_COLUMNS

    parser = sub.add_parser("analyze", help="measurements on trained runs and results "
                                            "(invariance, paired)")
    what = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    p = what.add_parser("invariance", help="identity probe and distance ratio of run features",
                        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, e.g. baseline ELIM")
    add_run_data_arguments(p)
    g = p.add_argument_group("measures")
    g.add_argument("--folds", type=int, default=5, help="folds of the identity probe")
    g.add_argument("--groups", default="auto",
                   help=f"probe fold groups: auto ({'/'.join(GROUP_COLUMNS)} column, else "
                        "label), label, none, or a column name")
    g.add_argument("--same-tol", type=float, default=0.05,
                   help="labels closer than this count as the same (distance ratio)")
    g.add_argument("--other-min", type=float, default=0.25,
                   help="labels at least this far apart count as different (distance ratio)")
    g.add_argument("--pixels", action="store_true",
                   help="also measure the input pixels (a reference for the features)")
    g.add_argument("--test-time-norm", action="store_true",
                   help="also measure each run with test-time identity normalisation (Eqs. 3-4 "
                        "against the run's reference bank, each identity's faces together)")
    p.add_argument("--out", metavar="DIR", help="write invariance.json / invariance.md here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)

    q = what.add_parser("paired", help="A − B over the same seeds and folds of elim cv folders",
                        description="Paired difference of a test metric between two methods "
                                    "of `elim cv` folders (one folder or two made with the same "
                                    "folds), matched by seed and fold: mean, 95 %% Student-t "
                                    "interval, wins.")
    q.add_argument("a", metavar="CV_DIR:METHOD", help="e.g. results/ck-cv:elim")
    q.add_argument("b", metavar="CV_DIR:METHOD", help="e.g. results/ck-cv:baseline")
    q.add_argument("--metric", default="ccc_mean", help="test metric (default ccc_mean)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=run_paired)


def _side(text: str) -> tuple[str, str]:
    from elim.errors import ElimError

    folder, sep, method = text.rpartition(":")
    if not sep or not folder or not method:
        raise ElimError(f"{text!r}: expected CV_DIR:METHOD, e.g. results/ck-cv:elim")
    return folder, method


def run_paired(args: argparse.Namespace) -> int:
    from elim.analysis.paired import format_paired, paired_cv

    result = paired_cv(_side(args.a), _side(args.b), metric=args.metric)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['a']} − {result['b']}, test {result['metric']}: "
              f"{format_paired(result, digits=4)} (95 % interval), {result['wins']} of "
              f"{result['n']} pairs higher")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from elim.analysis.invariance import invariance_markdown, measure_invariance
    from elim.commands.plot import load_runs_from_args
    from elim.fileio import write_json

    runs = load_runs_from_args(args)
    normalisers = None
    if args.test_time_norm:
        from elim.inference.identity_norm import IdentityNormaliser

        normalisers = [IdentityNormaliser.from_run(r.run_dir, device=r.device) for r in runs]
    result = measure_invariance(runs, n_folds=args.folds, groups=args.groups,
                                same_tol=args.same_tol, other_min=args.other_min,
                                seed=args.seed, pixels=args.pixels, normalisers=normalisers)
    markdown = invariance_markdown(result)
    if args.out:
        out = Path(args.out)
        write_json(out / "invariance.json", result)
        (out / "invariance.md").write_text(markdown)
    print(json.dumps(result, indent=2, default=str) if args.json else markdown, end="\n")
    return 0
