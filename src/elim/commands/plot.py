"""``elim plot KIND ...``: the paper's figures from trained runs (PNG + SVG in ``--out``).

Kinds: ``va`` (Fig. 3: predictions for same-label faces of different identities, one panel per
run), ``tsne`` (Fig. 4: features coloured by identity and by arousal, one column per run, e.g.
baseline and ELIM), ``id-shift`` (Fig. 5: ID shift μ of one identity-grouped test batch),
``identities`` (Fig. 6, from an ``elim study identities`` folder) and ``curves`` (training
curves from the runs' CSV logs). Runs compared in one figure see the same faces: the chosen
split of the first run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_run_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Which faces a run is analysed on (shared by ``elim plot`` and ``elim analyze``)."""
    from elim.datasets import list_datasets
    from elim.evaluation import SPLIT_NAMES

    g = parser.add_argument_group("faces")
    g.add_argument("--dataset", choices=list_datasets(),
                   help="dataset to use (default: the first run's own)")
    g.add_argument("--root", metavar="PATH", help="dataset folder or labels file")
    g.add_argument("--split", choices=SPLIT_NAMES, default="test",
                   help="part of the dataset (default test: identities unseen in training)")
    g.add_argument("--cache-dir", metavar="DIR")
    g.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    g.add_argument("--seed", type=int, default=0, help="seed of the choice of faces")


def load_runs_from_args(args: argparse.Namespace):
    from elim.errors import DataError
    from elim.evaluation import load_runs

    if args.dataset not in (None, "synthetic") and args.root is None:
        raise DataError(f"--dataset {args.dataset} needs --root (its folder or labels file)")
    return load_runs(args.runs, args.dataset, args.root, args.split, cache_dir=args.cache_dir,
                     device=args.device, progress=not getattr(args, "json", False))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plot", help="figures of the paper from trained runs (Figs. 3-6)",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    def kind(name: str, help_: str, runs_help: str, data: bool = True) -> argparse.ArgumentParser:
        p = kinds.add_parser(name, help=help_, description=help_)
        p.add_argument("runs", nargs="+", metavar="DIR", help=runs_help)
        if data:
            add_run_data_arguments(p)
        p.add_argument("--out", metavar="DIR", default="figures", help="output folder")
        p.add_argument("--dpi", type=int, default=120, help="PNG resolution (default 120)")
        p.add_argument("--json", action="store_true", help="print the written files as JSON")
        p.set_defaults(func=run)
        return p

    p = kind("va", "Fig. 3: same-label faces of different identities in the VA plane",
             "run directories (one panel each)")
    p.add_argument("--label-tol", type=float, default=0.1,
                   help="labels within this grid step count as the same (default 0.1)")
    p.add_argument("--max-identities", type=int, default=8)
    p.add_argument("--per-identity", type=int, default=2, help="faces per identity")
    p = kind("tsne", "Fig. 4: t-SNE of features coloured by identity and by arousal",
             "run directories (one column each), e.g. baseline and ELIM")
    p.add_argument("--max-identities", type=int, default=10)
    p = kind("id-shift", "Fig. 5: ID shift μ of one identity-grouped batch of test faces",
             "a run directory trained with ELIM")
    p.add_argument("--identities", type=int, help="identities in the batch (default: the run's P)")
    p.add_argument("--samples", type=int, help="faces per identity (default: the run's K)")
    kind("identities", "Fig. 6: CCC vs number of training identities",
         "an `elim study identities` folder (or its study.json)", data=False)
    kind("curves", "training curves from the runs' CSV logs",
         "run directories (or their logs/ folders); one line per run", data=False)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    with matplotlib.rc_context({"savefig.dpi": args.dpi}):
        return _plot(args)


def _plot(args: argparse.Namespace) -> int:
    from elim.analysis import figures
    from elim.errors import ElimError

    out = Path(args.out)
    written: dict[str, object] = {}
    if args.kind == "identities":
        if len(args.runs) != 1:
            raise ElimError("plot identities takes one study folder")
        written["png"] = figures.identities_figure(args.runs[0], out / "fig6_identities.png")
    elif args.kind == "curves":
        written["png"] = figures.curves_figure(args.runs, out / "curves.png")
    else:
        runs = load_runs_from_args(args)
        if args.kind == "va":
            written["png"] = figures.va_figure(
                runs, out / "fig3_va.png", label_tol=args.label_tol,
                max_identities=args.max_identities, per_identity=args.per_identity,
                seed=args.seed)
        elif args.kind == "tsne":
            written["png"] = figures.tsne_figure(runs, out / "fig4_tsne.png",
                                                 max_identities=args.max_identities,
                                                 seed=args.seed)
        else:
            if len(runs) != 1:
                raise ElimError("plot id-shift takes one run directory")
            written["png"], written["values"] = figures.id_shift_figure(
                runs[0], out / "fig5_id_shift.png", n_identities=args.identities,
                samples_per_identity=args.samples, seed=args.seed)
    png = Path(written["png"])  # type: ignore[arg-type]
    written["png"], written["svg"] = str(png), str(png.with_suffix(".svg"))
    if args.json:
        print(json.dumps(written, indent=2))
    else:
        print(f"written: {written['png']}, {written['svg']}")
    return 0
