"""Provenance: the software and machine a study or an analysis ran on, recorded next to its
numbers (the ``environment`` entry of ``ablation.json``, ``study.json`` and
``invariance.json``, and the last section of ``elim report``)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["PACKAGES", "environment"]

#: packages whose versions are recorded (absent ones are reported as ``None``)
PACKAGES = ("torch", "lightning", "numpy", "pot", "scikit-learn", "qpth")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Python, elim and key package versions, platform, CPU count and CUDA device (if any)."""
    import torch

    from elim import __version__

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "elim": __version__,
        **{name: _version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": cuda,
        "executable": sys.executable,
    }
