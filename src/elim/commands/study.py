"""``elim study identities|shift``: studies that train many models.

``identities``: test CCC on fixed held-out identities as the number of training identities
grows (paper Fig. 6), for ELIM, ELIM without L_va and the baseline. The dataset's identities are
split once (``data.fractions``, ``data.split_seed``) into a training pool, fixed validation and
fixed test identities; each fraction trains on a nested subset of the pool. Writes
``study.json``, ``study.md`` and ``identities.png``/``.svg``.

``shift``: the identity-shift benchmark (paper Problem 1, Eq. 1) on synthetic faces whose
identity shift (or expression style) is scaled from 0 to 1; fixed training identities, unseen
test identities; CCC, cross-identity consistency on faces that share labels, paired differences
with 95 % intervals; writes ``shift.json``, ``shift.md`` and ``shift.png``/``.svg``.

Results are stored per fit as they finish, so the same command resumes.
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

    # defaults (None) are the study's own (elim.studies.shift / elim.analysis.shift): the CLI
    # registers without importing the analysis or study modules
    s = studies.add_parser("shift", help="identity-shift benchmark on synthetic faces (Eq. 1)",
                           description=__doc__.split("\n\n")[2].split(": ", 1)[1])
    add_config_arguments(s, default_preset="synthetic")
    g = s.add_argument_group("study")
    g.add_argument("--strengths", type=_floats,
                   help="values of the knob in [0, 1], comma-separated (default 0,0.25,0.5,0.75,1)")
    g.add_argument("--knob", default="shift",
                   help="shift (default): identity changes the look, not what labels mean (the "
                        "paper's Problem 1); style: identity changes the expression style "
                        "(p(y|x)); the other knob is 0")
    g.add_argument("--methods", type=_names,
                   help="comma-separated, from baseline, elim, elim-vector, each optionally with "
                        "+ttn (that fit with test-time identity normalisation; default "
                        "baseline,elim)")
    g.add_argument("--seeds", type=_ints, help="comma-separated (default 0,1,2,3,4)")
    g.add_argument("--identities", type=int, help="synthetic identities (default 40)")
    g.add_argument("--clips", type=int, help="clips per identity (default 4)")
    g.add_argument("--frames", type=int, help="frames per clip (default 8)")
    g.add_argument("--test-share", type=float, default=0.4,
                   help="share of the identities held out for testing (default 0.4; the rest "
                        "train, no validation: the last epoch is tested)")
    s.add_argument("--out", metavar="DIR", required=True, help="output folder (resumable)")
    s.add_argument("--json", action="store_true", help="print shift.json")
    s.set_defaults(func=run_shift)


def run(args: argparse.Namespace) -> int:

    from elim.commands.cv import print_results
    from elim.commands.train import config_from_args
    from elim.studies.identities import run_identity_study

    config = config_from_args(args, default_preset="ck_plus")
    result = run_identity_study(config, args.out, fractions=args.fractions,
                                methods=args.methods, seeds=args.seeds, progress=not args.json)
    return print_results(result, args.json, args.out, "study.json", "study.md", "identities.png")


def run_shift(args: argparse.Namespace) -> int:
    from elim.commands.cv import print_results
    from elim.commands.train import config_from_args
    from elim.config import apply_overrides
    from elim.errors import ElimError
    from elim.studies.shift import run_shift_study

    if not 0 < args.test_share < 1:
        raise ElimError(f"--test-share must be in (0, 1), got {args.test_share}")
    config = config_from_args(args, default_preset="synthetic")
    sizes = {"n_identities": args.identities, "clips_per_identity": args.clips,
             "frames_per_clip": args.frames}
    config = apply_overrides(config, {
        "data.fractions": [1 - args.test_share, 0.0, args.test_share],
        "data.options": {**config.data.options,
                         **{k: v for k, v in sizes.items() if v is not None}}})
    given = {"strengths": args.strengths, "methods": args.methods, "seeds": args.seeds}
    result = run_shift_study(config, args.out, knob=args.knob, progress=not args.json,
                             **{k: v for k, v in given.items() if v is not None})
    return print_results(result, args.json, args.out, "shift.json", "shift.md", "shift.png")
