"""``elim report PATH...``: one self-contained HTML report (plus report.md) of results folders.

PATHs: run directories (``elim train``), cross-validation (``elim cv``), ablation
(``elim ablate``), identity study (``elim study identities``) and invariance
(``elim analyze invariance``) folders, and figure folders (``elim plot``). The report shows their
metrics tables, figures (embedded as base64), configurations and versions.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="self-contained HTML report of results folders",
                            description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="results folders")
    parser.add_argument("--out", metavar="FILE", default="report.html",
                        help="HTML file (report.md is written beside it)")
    parser.add_argument("--title", default="elim report")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elim.analysis.report import build_report

    html, md = build_report(args.paths, args.out, title=args.title)
    print(f"written: {html}, {md}")
    return 0
