"""Helpers for tests that start `elim` in a child process (importable from every test folder:
the root conftest's folder is on sys.path)."""

from __future__ import annotations

import signal
import subprocess


def popen_taking_ctrl_c(args: list[str], **popen) -> subprocess.Popen:
    """``subprocess.Popen(args, **popen)`` for a child that a test stops with SIGINT (Ctrl-C).

    A test run started in the background (``pytest &``, ``nohup``) ignores SIGINT, and a child
    inherits an ignored signal through ``exec``: Python would then not turn Ctrl-C into
    KeyboardInterrupt and the child would run to its end. So SIGINT is set to its default while
    the child is started (as for a process in the foreground of a terminal), then put back."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return subprocess.Popen(args, **popen)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
