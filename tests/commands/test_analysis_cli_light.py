"""The analysis commands register without importing the analysis modules, and the choices they
hold for that stay equal to the library's."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_cli_does_not_import_elim_analysis():
    code = ("import sys, elim.cli; elim.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('elim.analysis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_choices_match_the_library():
    from elim.analysis.invariance import GROUP_COLUMNS
    from elim.commands import analyze, study
    from elim.studies.identities import METHODS

    assert study.METHOD_NAMES == tuple(METHODS)
    assert analyze.GROUP_COLUMNS == GROUP_COLUMNS
