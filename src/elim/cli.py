"""The ``elim`` command line: a thin dispatcher over :mod:`elim.commands`.

Every module in :mod:`elim.commands` that defines ``register(subparsers)`` contributes one
sub-command (``elim train``, ``elim bench``, ...). ``register`` adds a parser and sets
``func=callable(args) -> int`` on it. The modules hold only argument parsing and printing;
the work lives in the library modules they call.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from elim import __version__
from elim.errors import ElimError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elim",
        description="Identity-invariant valence-arousal estimation with OT identity matching (ELIM).",
    )
    parser.add_argument("--version", action="version", version=f"elim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from elim import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"elim.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ElimError as err:
        print(f"elim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"elim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
