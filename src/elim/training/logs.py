"""Training logs that survive a resume.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when it starts in a folder that has one, so a
resumed run would lose the curves of the part before the crash. :class:`ResumableCSVLogger`
instead keeps the rows logged before the checkpoint (``step`` < the checkpoint's global step)
and drops the later ones, which the resumed run logs again; the file then reads as if the run
had never stopped. :class:`~elim.training.checkpoint.ResumeCheckpoint` flushes the logs at every
checkpoint, so the rows a crash could lose are only those the resumed run repeats.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from elim.fileio import atomic_write_bytes

__all__ = ["ResumableCSVLogger"]


class _ResumableWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step  # read by _check_log_dir_exists inside __init__
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = self.metrics_file_path
        if self.resume_step is None or not os.path.isfile(path):
            super()._check_log_dir_exists()
            return
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) < self.resume_step]
        out = _CsvBuffer()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, out.getvalue().encode())
        self.metrics_keys = fields  # later saves append, widening the header when needed


class _CsvBuffer(list):
    def write(self, text: str) -> None:
        self.append(text)

    def getvalue(self) -> str:
        return "".join(self)


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")  # not comparable: dropped


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` keeping the rows before ``resume_step`` of an existing ``metrics.csv``
    (``resume_step=None``: a fresh log, as Lightning's)."""

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ResumableWriter(self.log_dir, self.resume_step)
        return self._experiment
