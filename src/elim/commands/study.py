"""``elim study identities``: test CCC on fixed held-out identities as the number of training
identities grows (paper Fig. 6), for ELIM, ELIM without L_va and the baseline.

The dataset's identities are split once (``data.fractions``, ``data.split_seed``) into a
training pool, fixed validation and fixed test identities; each fraction trains on a nested
subset of the pool. Results are stored per (method, fraction, seed) as they finish, so the same
command resumes. Writes ``study.json``, ``study.md`` and ``identities.png``/``.svg``.
"""

from __future__ import annotations

import argparse


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    from elim.commands.cv import _ints, _names
    from elim.commands.train import add_config_arguments
    from elim.config import METHOD_VARIANTS

    parser = sub.add_parser("study", help="studies over many trainings (identities: Fig. 6)")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    p = studies.add_parser("identities", help="CCC vs number of training identities (Fig. 6)",
                           description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    add_config_arguments(p, default_preset="ck_plus")
    g = p.add_argument_group("study")
    g.add_argument("--fractions", type=_floats, default=[0.1, 0.25, 0.5, 1.0],
                   help="shares of the training pool, comma-separated (default 0.1,0.25,0.5,1.0)")
    g.add_argument("--methods", type=_names, default=["elim", "elim-no-va", "baseline"],
                   help=f"comma-separated, from {', '.join(METHOD_VARIANTS)} "
                        "(default elim,elim-no-va,baseline)")
    g.add_argument("--seeds", type=_ints, default=[0], help="comma-separated, e.g. 0,1,2")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (resumable)")
    p.add_argument("--json", action="store_true", help="print study.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from elim.commands.cv import print_results
    from elim.commands.train import config_from_args
    from elim.studies.identities import run_identity_study

    config = config_from_args(args, default_preset="ck_plus")
    result = run_identity_study(config, args.out, fractions=args.fractions,
                                methods=args.methods, seeds=args.seeds, progress=not args.json)
    return print_results(result, args.json, args.out, "study.json", "study.md", "identities.png")
