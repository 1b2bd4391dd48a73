"""The face contract of a run: how a detected face becomes the model's input crop.

Training crops every face with :func:`elim.data.crop.crop_face` at the run's
``preprocess.image_size`` and ``preprocess.margin`` (the square around the box centre, side
max(w, h)·(1 + margin)); a run with ``preprocess.grayscale`` saw gray faces repeated on three
channels. :class:`FaceCrop` replays exactly that; the margin comes from the run's
``config.json`` and from nowhere else unless it is overridden explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elim.errors import CheckpointError, ElimError

#: Keys a run's ``preprocess`` section must have for inference and export (``margin`` too,
#: unless it is given explicitly: :meth:`FaceCrop.of_run`).
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
        ``image_size``, ``mean``, ``std``, and as written by training ``margin`` and
        optionally ``grayscale``.
    """
    pre = config.get("preprocess")
    missing = [k for k in PREPROCESS_KEYS if not isinstance(pre, dict) or k not in pre]
    if missing:
        raise CheckpointError(
            f"{where or 'config'}: config.json has no complete 'preprocess' section (missing "
            f"{', '.join(missing)}); re-save the run with elim.runs.save_run"
        )
    return pre


@dataclass(frozen=True)
class FaceCrop:
    """The model's input crop of a face: ``crop_face`` at ``image_size`` with ``margin``, then
    gray ×3 when ``grayscale``."""

    image_size: int
    margin: float
    grayscale: bool = False

    def __post_init__(self) -> None:
        if not self.margin >= 0:
            raise ElimError(f"crop margin must be >= 0, got {self.margin}")

    @classmethod
    def of_run(
        cls,
        preprocess: dict,
        margin: float | None = None,
        grayscale: bool | None = None,
        where: str | Path | None = None,
    ) -> FaceCrop:
        """The crop of a run's ``preprocess`` section (see :func:`run_preprocess`).

        ``margin`` / ``grayscale`` override the run's values when not None; without an
        override a run without ``preprocess.margin`` is a :class:`CheckpointError` naming
        ``where`` (there is no default margin to fall back on). ``grayscale`` is false when
        the run does not say.
        """
        if margin is None and "margin" not in preprocess:
            raise CheckpointError(
                f"{where or 'config'}: config.json has no preprocess.margin (the crop margin of "
                "its training faces); re-save the run with elim.runs.save_run, or give the "
                "margin explicitly (margin=, --margin)"
            )
        return cls(
            int(preprocess["image_size"]),
            float(preprocess["margin"] if margin is None else margin),
            bool(preprocess.get("grayscale", False) if grayscale is None else grayscale),
        )

    def __call__(self, image: np.ndarray, box: Sequence[float] | None) -> np.ndarray:
        """(S, S, 3) uint8 crop of ``box`` in ``image`` (``None``: the whole image is the face,
        its centred square without margin)."""
        from elim.data.crop import crop_face

        crop = crop_face(image, box, self.image_size, self.margin)
        if self.grayscale:
            import cv2

            crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        return crop

    def stack(self, pairs: Sequence[tuple[np.ndarray, Sequence[float] | None]]) -> np.ndarray:
        """(N, S, S, 3) uint8 crops of (image, box) pairs, in order (N may be 0)."""
        out = np.empty((len(pairs), self.image_size, self.image_size, 3), dtype=np.uint8)
        for n, (image, box) in enumerate(pairs):
            out[n] = self(image, box)
        return out
