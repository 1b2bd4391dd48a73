"""Exceptions shared across the package."""

from __future__ import annotations


class ElimError(Exception):
    """Base class of errors that ``elim`` reports to users as one clear message."""


class DataError(ElimError):
    """A dataset file is missing, malformed or inconsistent; the message names the file and the fix."""


class CheckpointError(ElimError):
    """A run directory or checkpoint cannot be loaded safely."""
