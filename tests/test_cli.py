"""The CLI dispatcher and its error handling."""

from __future__ import annotations

import pytest

from elim import __version__
from elim.cli import build_parser, main
from elim.errors import DataError


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out

def test_no_command_prints_help(capsys):
    assert main([]) == 1
    assert "COMMAND" in capsys.readouterr().out

def test_every_command_module_registers():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "bench" in sub.choices

def test_user_errors_become_one_line(monkeypatch, capsys):
    parser = build_parser()

    def boom(args):
        raise DataError("labels.csv: missing column valence")

    monkeypatch.setattr("elim.cli.build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["bench"].set_defaults(func=boom)
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert "labels.csv: missing column valence" in err and "Traceback" not in err

def test_building_the_cli_does_not_import_the_training_engine():
    import subprocess
    import sys

    code = (
        "import sys, elim.cli; elim.cli.build_parser(); "
        "print(sorted(m for m in ('lightning', 'elim.training') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

