"""The analysis commands register without importing the analysis or study modules."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_cli_does_not_import_elim_analysis():
    code = ("import sys, elim.cli; elim.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('elim.analysis', "
            "'elim.studies'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

