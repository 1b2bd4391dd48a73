"""Settings shared by the whole test suite.

Optional backends: a test that needs one is marked (``@pytest.mark.needs_qpth``) and is skipped
with a reason that names the install command when the backend is absent, never failed.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_qpth: needs the optional QP solver qpth (skipped when absent)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_qpth"):
        from elim.ot.qp import QPTH_INSTALL, qpth_available

        if not qpth_available():
            pytest.skip(f"optional solver qpth is not installed ({QPTH_INSTALL})")
