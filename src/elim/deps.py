"""The third-party packages whose import name is not the name they are installed by.

OpenCV is imported as ``cv2`` but installed as ``opencv-python-headless``; likewise ``PIL``
(``pillow``), ``sklearn`` (``scikit-learn``) and ``yaml`` (``pyyaml``). All four are
dependencies of elim (``pyproject.toml``; ``tests/test_deps.py`` keeps :data:`DISTRIBUTIONS`
and the declared dependencies equal). elim and its tests import them from here only::

    from elim.deps import cv2
    from elim.deps import Image                 # PIL.Image
    from elim.deps import StandardScaler        # sklearn.preprocessing.StandardScaler

so that

* which distribution provides each import is stated once, in :data:`DISTRIBUTIONS`, and can be
  checked without the packages installed (``../shared/tools/undeclared_imports.py`` reads
  import statements; without the package on the machine it cannot map ``cv2`` to OpenCV);
* a broken environment fails with one line naming the install command, not with
  ``ModuleNotFoundError: No module named 'cv2'``.

Names are imported on first use (module ``__getattr__``, PEP 562), so ``import elim.deps``
costs nothing and a command that never touches scikit-learn never loads it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from elim.errors import ElimError

__all__ = ["DISTRIBUTIONS", "NAMES"]

#: Top-level import name → the distribution pyproject declares for it.
DISTRIBUTIONS: dict[str, str] = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
}

#: Name served here → (module, attribute of it or None for the module itself).
NAMES: dict[str, tuple[str, str | None]] = {
    "cv2": ("cv2", None),
    "yaml": ("yaml", None),
    "Image": ("PIL.Image", None),
    "UnidentifiedImageError": ("PIL", "UnidentifiedImageError"),
    "LogisticRegression": ("sklearn.linear_model", "LogisticRegression"),
    "Ridge": ("sklearn.linear_model", "Ridge"),
    "TSNE": ("sklearn.manifold", "TSNE"),
    "r2_score": ("sklearn.metrics", "r2_score"),
    "StratifiedGroupKFold": ("sklearn.model_selection", "StratifiedGroupKFold"),
    "StratifiedKFold": ("sklearn.model_selection", "StratifiedKFold"),
    "make_pipeline": ("sklearn.pipeline", "make_pipeline"),
    "StandardScaler": ("sklearn.preprocessing", "StandardScaler"),
}


def __getattr__(name: str) -> Any:
    if name not in NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = NAMES[name]
    try:
        module = import_module(module_name)
    except ImportError as err:
        top = module_name.partition(".")[0]
        raise ElimError(f"the package {DISTRIBUTIONS[top]} (import {top}) is missing or broken "
                        f"({err}); reinstall elim (pip install -e \".[dev]\") or run "
                        f"pip install {DISTRIBUTIONS[top]}") from err
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups are plain module attributes
    return value
