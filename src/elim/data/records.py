"""Face records: the one table every dataset reader produces.

A *record table* is a :class:`pandas.DataFrame` with one row per labelled face image:

============  ========  ==============================================================
column        required  meaning
============  ========  ==============================================================
path          yes       absolute path of the image file, or of the video for ``frame``
identity      yes       identity (person / clip / video) as a string; matching groups by it
valence       yes       float in [-1, 1]
arousal       yes       float in [-1, 1]
group         no        unit that must not straddle splits (e.g. AFEW-VA actor);
                        defaults to ``identity``
split         no        official split name (``train`` / ``val`` / ``test``) where a
                        dataset defines one
frame         no        0-based frame index inside the video at ``path`` (videos only)
x0,y0,x1,y1   no        face box in source pixels; missing -> the whole image is the face
detect        no        True: find the box with the face detector when the cache is built
============  ========  ==============================================================

Readers return a :class:`ReadResult`: the table (validated when the result is made) plus a
:class:`SkipReport` that counts every item left out and why, so that nothing is dropped
silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from elim.errors import DataError

REQUIRED_COLUMNS = ("path", "identity", "valence", "arousal")
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
#: Optional columns naming the recording a face comes from (a clip, sequence or video): faces of
#: one recording are near-duplicates, so measures that fold over faces keep them together.
GROUP_COLUMNS = ("clip", "sequence", "video")


@dataclass
class SkipReport:
    """Counts of skipped items by reason, with a few examples of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def add(self, reason: str, item: str = "", n: int = 1) -> None:
        self.counts[reason] += n
        ex = self.examples.setdefault(reason, [])
        if item and len(ex) < self.max_examples:
            ex.append(item)

    def merge(self, other: SkipReport) -> None:
        for reason, n in other.counts.items():
            self.counts[reason] += n
            ex = self.examples.setdefault(reason, [])
            for item in other.examples.get(reason, []):
                if len(ex) < self.max_examples:
                    ex.append(item)

    @classmethod
    def from_dict(cls, data: dict) -> SkipReport:
        """Inverse of :meth:`to_dict`."""
        report = cls()
        for reason, entry in data.items():
            report.counts[reason] += int(entry["count"])
            report.examples[reason] = list(entry.get("examples", []))[: report.max_examples]
        return report

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def to_dict(self) -> dict:
        return {
            reason: {"count": int(n), "examples": list(self.examples.get(reason, []))}
            for reason, n in sorted(self.counts.items())
        }

    def summary(self) -> str:
        if not self.counts:
            return "skipped: none"
        parts = [f"{reason}: {n}" for reason, n in sorted(self.counts.items())]
        return f"skipped {self.total} ({'; '.join(parts)})"


@dataclass
class ReadResult:
    """What a dataset reader returns: the record table and what it skipped.

    ``records`` is checked and normalised once, when the result is made
    (:func:`validate_records`; errors name ``source``), so the records of every reader meet the
    contract above and nothing downstream (cache, splits, training) validates them again.
    """

    records: pd.DataFrame
    skipped: SkipReport = field(default_factory=SkipReport)
    source: str = ""

    def __post_init__(self) -> None:
        self.records = validate_records(self.records, source=self.source or "records")


def validate_records(df: pd.DataFrame, source: str = "records") -> pd.DataFrame:
    """Check and normalise a record table (types, ranges, optional columns).

    Raises :class:`DataError` naming ``source`` when a required column is missing or when
    labels are not finite values in [-1, 1]. Returns a copy with ``identity``/``group`` as
    strings and ``group`` filled from ``identity`` when absent.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; expected at least "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    out = df.copy()
    out["identity"] = out["identity"].astype(str)
    out["group"] = out["group"].astype(str) if "group" in out.columns else out["identity"]
    out["path"] = out["path"].astype(str)
    for col in ("valence", "arousal"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float32)
        bad = ~np.isfinite(out[col].to_numpy()) | (out[col].abs() > 1.0 + 1e-6).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: {int(bad.sum())} row(s) with {col} not a finite value in [-1, 1] "
                f"(first: row {row}, path {out['path'].iloc[row]!r}); filter them or use a "
                "reader that skips them"
            )
    return out.reset_index(drop=True)
