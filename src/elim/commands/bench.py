"""``elim bench NAME``: measured benchmarks (one module each under :mod:`elim.benchmarks`)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="run a benchmark (sinkhorn, step, predict, ...)")
    bench_sub = parser.add_subparsers(dest="bench", metavar="NAME")
    from elim import benchmarks

    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"elim.benchmarks.{info.name}")
        if hasattr(module, "register"):
            module.register(bench_sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)
