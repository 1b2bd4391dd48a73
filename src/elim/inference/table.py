"""The prediction table: its columns, rows → DataFrame, and writing it as CSV, JSON or Parquet.

Every prediction path (``ElimPredictor.predict`` / ``predict_video``, ``elim predict``) produces
rows with the columns of :data:`COLUMNS`: ``source, frame, timestamp, face, x0, y0, x1, y1,
score, valence, arousal, status`` (+ ``valence_raw, arousal_raw`` when smoothed, + ``f0 …
f{d-1}`` with features).
"""

from __future__ import annotations

import errno
import importlib.util
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from elim.errors import ElimError

__all__ = [
    "COLUMNS", "TABLE_FORMATS", "check_writable", "rows_to_frame", "table_format", "table_text",
    "write_table",
]

COLUMNS = [
    "source", "frame", "timestamp", "face", "x0", "y0", "x1", "y1",
    "score", "valence", "arousal", "status",
]

#: The columns :func:`table_text` shows.
SHOWN = ["source", "frame", "face", "valence", "arousal", "score", "status"]

TABLE_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def feature_columns(feature_dim: int) -> list[str]:
    """Names of the feature columns z of a prediction table: ``f0 … f{d-1}``."""
    return [f"f{j}" for j in range(feature_dim)]


def rows_to_frame(rows: list[dict], feature_dim: int = 0) -> pd.DataFrame:
    """Rows (dicts; optional ``features`` arrays) → a table with :data:`COLUMNS` (+ f0…)."""
    table = pd.DataFrame.from_records(rows, columns=COLUMNS)
    table["frame"] = table["frame"].astype("Int64")
    table["face"] = table["face"].astype("Int64")
    for col in ("timestamp", "x0", "y0", "x1", "y1", "score", "valence", "arousal"):
        table[col] = table[col].astype("float64")
    table["source"] = table["source"].astype(str)
    table["status"] = table["status"].astype(str)
    if feature_dim:
        feats = np.full((len(rows), feature_dim), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            if row.get("features") is not None:
                feats[i] = row["features"]
        table = pd.concat([table, pd.DataFrame(feats, columns=feature_columns(feature_dim),
                                               index=table.index)], axis=1)
    return table


def table_format(out: str | None) -> str | None:
    """The table format of the file name ``out`` (None: no file), checked before any work."""
    if out is None:
        return None
    fmt = TABLE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise ElimError(f"{out}: unknown table format; use a .csv, .json or .parquet file name")
    if fmt == "parquet" and not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        raise ElimError(f"{out}: writing Parquet needs pyarrow (pip install pyarrow); or use .csv / .json")
    return fmt


def check_writable(path: str | Path) -> None:
    """ElimError (one line naming ``path``) unless the table can be written there: checked
    before any work, so that a read-only or missing target never costs a whole run.

    The folder must exist and accept a new file (a probe file is created and removed), or be
    creatable inside a writable existing folder; ``path`` must not be a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise ElimError(f"{path}: is a folder; give the table a file name (-o FILE.csv)")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ElimError(f"{path}: cannot write the table there ({existing} is not a folder)")
    try:
        if existing == folder:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
            os.close(fd)
            os.unlink(probe)
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"{existing} is not writable")
    except OSError as err:
        raise ElimError(
            f"{path}: cannot write the table there ({err.strerror or err}); choose another -o"
        ) from err


def write_table(table, path: str | Path, fmt: str) -> None:
    """Write the prediction table as CSV, JSON (records) or Parquet, atomically
    (:func:`elim.fileio.atomic_write_bytes`): a failed write (full disk, read-only folder)
    keeps the previous file and raises an ElimError naming ``path``."""
    from elim.fileio import atomic_write_bytes

    path = Path(path)
    if fmt == "csv":
        data = table.to_csv(index=False).encode("utf-8")
    elif fmt == "json":
        data = table.to_json(orient="records", indent=1).encode("utf-8")
    else:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise ElimError(
            f"{path}: cannot write the table ({err.strerror or err}); an existing file there "
            "is kept unchanged"
        ) from err


def table_text(table: pd.DataFrame) -> str:
    """The table for a terminal: :data:`SHOWN` columns, file names without their folder,
    signed V/A with three decimals, ``-`` for empty cells."""
    shown = table[[c for c in SHOWN if c in table]].copy()
    shown["source"] = [Path(s).name if not s.startswith("<") else s for s in shown["source"]]
    signed = {c: (lambda v: "-" if pd.isna(v) else f"{v:+.3f}") for c in ("valence", "arousal")}
    return shown.to_string(index=False, formatters=signed, float_format="{:.3f}".format, na_rep="-")
