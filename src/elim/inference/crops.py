"""The face contract of a run, replayed: how a detected face becomes the model's input crop.

Training records what its faces looked like in ``config.json["preprocess"]["face"]``
(:class:`elim.data.face_contract.FaceContract`: size, colour, geometry ``box`` or measured
``template``, optional alignment). :class:`FaceCrop` replays it with
:meth:`FaceContract.cut <elim.data.face_contract.FaceContract.cut>`, the rule the cache used
for the training faces. Runs written before the contract existed (no ``face`` section) keep
their ``preprocess.margin`` and ``preprocess.grayscale``: the ``box`` geometry. Explicit
overrides (``margin=`` / ``--margin``: the box square with that margin; ``grayscale=`` /
``--grayscale``) win over the run; nothing else changes the crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from elim.data.face_contract import CropViewer, FaceContract
from elim.errors import CheckpointError

#: Keys a run's ``preprocess`` section must have for inference and export (``margin`` too,
#: for runs without a ``face`` section, unless it is given explicitly: :meth:`FaceCrop.of_run`).
PREPROCESS_KEYS = ("image_size", "mean", "std")


def run_preprocess(config: dict, where: str | Path | None = None) -> dict:
    """The ``preprocess`` section of a run's ``config.json``, checked to have
    :data:`PREPROCESS_KEYS`.

    Parameters
    ----------
    config
        The run's configuration (``elim.runs.load_run``).
    where
        The run directory (or file) named in the error message.

    Returns
    -------
    dict
        ``image_size``, ``mean``, ``std``, and as written by training ``margin`` and ``face``
        (older runs: ``margin`` and optionally ``grayscale``).
    """
    pre = config.get("preprocess")
    missing = [k for k in PREPROCESS_KEYS if not isinstance(pre, dict) or k not in pre]
    if missing:
        raise CheckpointError(
            f"{where or 'config'}: config.json has no complete 'preprocess' section (missing "
            f"{', '.join(missing)}); re-save the run with elim.runs.save_run"
        )
    return pre


def run_contract(preprocess: dict, margin: float | None = None, grayscale: bool | None = None,
                 where: str | Path | None = None) -> FaceContract:
    """The :class:`FaceContract` of a run's ``preprocess`` section with explicit overrides.

    ``preprocess["face"]`` when present; otherwise (older runs) the ``box`` geometry with
    ``preprocess.margin`` and ``preprocess.grayscale`` (false when absent). Without an override
    such a run without ``margin`` is a :class:`CheckpointError` naming ``where`` (there is no
    default margin to fall back on).
    """
    if isinstance(preprocess.get("face"), dict):
        contract = FaceContract.from_dict(preprocess["face"], where)
    elif margin is None and "margin" not in preprocess:
        raise CheckpointError(
            f"{where or 'config'}: config.json has no preprocess.margin (the crop margin of "
            "its training faces); re-save the run with elim.runs.save_run, or give the "
            "margin explicitly (margin=, --margin)"
        )
    else:
        contract = FaceContract(
            int(preprocess["image_size"]),
            float(preprocess["margin"] if margin is None else margin),
            "gray" if preprocess.get("grayscale", False) else "rgb",
        )
    return contract.with_overrides(margin, grayscale)


@dataclass(frozen=True)
class FaceCrop:
    """The model's input crop of a face: :meth:`FaceContract.cut` of ``contract``.

    Geometries other than the plain box square look at their first crop through ``viewer``
    (:class:`elim.data.face_contract.CropViewer`: the default detector, loaded on first use).
    """

    contract: FaceContract
    viewer: CropViewer = field(default_factory=CropViewer, repr=False, compare=False)

    @classmethod
    def of_run(
        cls,
        preprocess: dict,
        margin: float | None = None,
        grayscale: bool | None = None,
        where: str | Path | None = None,
    ) -> FaceCrop:
        """The crop of a run's ``preprocess`` section (:func:`run_contract`); ``margin`` /
        ``grayscale`` override the run's values when not None."""
        return cls(run_contract(preprocess, margin, grayscale, where))

    @property
    def image_size(self) -> int:
        return self.contract.image_size

    @property
    def margin(self) -> float:
        return self.contract.margin

    @property
    def grayscale(self) -> bool:
        return self.contract.grayscale

    def __call__(self, image: np.ndarray, face: Any) -> np.ndarray:
        """(S, S, 3) uint8 crop of ``face`` in ``image``: an ``elim.detection.Face``, a box
        ``(x0, y0, x1, y1)``, or None (the whole image is the face: its centred square)."""
        box = getattr(face, "box", face)
        return self.contract.cut(image, box, self.viewer)

    def stack(self, pairs: Sequence[tuple[np.ndarray, Any]]) -> np.ndarray:
        """(N, S, S, 3) uint8 crops of (image, face | box | None) pairs, in order (N may be 0)."""
        out = np.empty((len(pairs), self.image_size, self.image_size, 3), dtype=np.uint8)
        for n, (image, face) in enumerate(pairs):
            out[n] = self(image, face)
        return out
