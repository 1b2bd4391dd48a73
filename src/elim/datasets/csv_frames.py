"""The generic dataset: a CSV of face images (or video frames) with valence/arousal labels.

Format (one row per labelled face)::

    path,identity,valence,arousal[,group][,split][,x0,y0,x1,y1][,frame][,detect]
    images/S010_004_00000017.png,S010,-0.51,0.59

- ``path``: relative to the CSV's folder (the dataset root), or absolute inside it. Paths that
  leave the root (``..`` or an absolute path elsewhere) are refused, judged on the normalised
  text: symbolic links *inside* the root (e.g. an ``images`` link to another disk) are trusted,
  since whoever can create them controls the dataset folder anyway. Paths holding a NUL byte
  are skipped as ``bad_path``.
- ``identity``: person / clip; ``group`` (default: identity) is the unit kept on one side of
  every split; ``split``: optional official split name.
- ``valence``, ``arousal`` in [-1, 1]. Empty, NaN, infinite, out-of-range and ``-5`` (the
  Aff-Wild2 "no label" sentinel) values are skipped and counted.
- ``x0, y0, x1, y1``: optional face box in pixels (all four columns; empty → whole image).
- ``frame``: 0-based frame index, used only for rows whose ``path`` is a video file (an image
  row's ``frame`` column, e.g. a sequence frame number, is ignored).
- ``detect``: optional 1/0 — locate the face with the detector when the cache is built.
- A row equal to an earlier one in every column is skipped as ``duplicate_rows`` (the first is
  kept); a warning says so, and counts the rows that repeat a face (same ``path``, ``frame``,
  box) with other values, which are kept (e.g. a second annotator's labels).

Other columns are ignored. ``root`` is the CSV file or a folder containing ``labels.csv``; it
must be a regular file of at most ``$ELIM_MAX_LABEL_MB`` (default 256) MiB, refused before it is
read otherwise (:func:`elim.datasets.files.read_label_bytes`). Messages quote at most a short,
printable excerpt of its content (a binary first line is not quoted at all).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from elim.data.io import is_video
from elim.data.records import (
    BOX_COLUMNS,
    REQUIRED_COLUMNS,
    ReadResult,
    SkipReport,
)
from elim.datasets import register_dataset
from elim.datasets.files import excerpt, read_label_bytes
from elim.errors import DataError

DEFAULT_NAME = "labels.csv"
SENTINEL = -5.0
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _locate(root: str | Path | None, csv: str | None) -> Path:
    if root is None:
        raise DataError(
            "the csv dataset needs a root: a labels CSV or a folder containing labels.csv "
            "(--root PATH)"
        )
    root = Path(root).expanduser()
    if root.is_dir():
        path = root / (csv or DEFAULT_NAME)
        if not path.is_file():
            found = sorted(p.name for p in root.glob("*.csv"))
            hint = f"; CSV files there: {', '.join(found)}" if found else ""
            raise DataError(f"{path}: not found{hint}; pass the CSV file itself as --root")
        return path
    if not root.exists():
        raise DataError(f"{root}: not found; pass a labels CSV or the folder that holds labels.csv")
    return root


def _read_table(path: Path) -> pd.DataFrame:
    """The CSV as strings; read with the label-file size limit, refused when its header is
    binary (NUL bytes: nothing of it is quoted, it may be e.g. a process environment)."""
    data = read_label_bytes(path)
    end = data.find(b"\n")
    if data.find(b"\x00", 0, end if end >= 0 else len(data)) >= 0:
        raise DataError(f"{path}: not a readable CSV (binary content: NUL bytes in the first "
                        f"line); expected a header with {', '.join(REQUIRED_COLUMNS)}")
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False,
                           skipinitialspace=True)
    except pd.errors.EmptyDataError as err:
        raise DataError(
            f"{path}: empty CSV; expected a header with {', '.join(REQUIRED_COLUMNS)}"
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: not a readable CSV ({excerpt(str(err), 160)})") from err


def _resolve_paths(values: pd.Series, root: Path) -> tuple[list[str | None], list[str]]:
    """Absolute normalised paths; None (with a reason) for empty or NUL-containing paths and
    for paths that leave ``root`` (checked on the normalised text; links inside it are trusted)."""
    root_s = os.path.normpath(str(root))
    prefix = root_s.rstrip(os.sep) + os.sep
    out: list[str | None] = []
    reasons: list[str] = []
    for v in values:
        v = v.strip()
        if not v:
            out.append(None)
            reasons.append("empty_path")
            continue
        if "\x00" in v:  # no file system accepts it; os calls would raise ValueError
            out.append(None)
            reasons.append("bad_path")
            continue
        full = os.path.normpath(v if os.path.isabs(v) else os.path.join(root_s, v))
        if not full.startswith(prefix):
            out.append(None)
            reasons.append("outside_root")
            continue
        out.append(full)
        reasons.append("")
    return out, reasons


def _label_reason(v: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per row: '' when both labels are usable, else the reason to skip."""
    reason = np.full(len(v), "", dtype=object)
    both = np.stack([v, a])
    finite = np.isfinite(both).all(axis=0)
    nan = np.isnan(both).any(axis=0)
    sentinel = (both == SENTINEL).any(axis=0)
    out_of_range = finite & (np.abs(both) > 1.0 + 1e-6).any(axis=0)
    reason[out_of_range] = "label_out_of_range"
    reason[sentinel] = "label_-5"
    reason[~finite & ~nan] = "label_infinite"
    reason[nan] = "label_missing"
    return reason


def _drop_duplicates(out: pd.DataFrame, keep: np.ndarray, drop, items, path: Path) -> None:
    """Skip (``duplicate_rows``) kept rows equal in every column to an earlier kept row, and
    warn about them and about rows that repeat a face (same path, frame and box) with other
    labels (those are kept: each is a sample of its own, e.g. a second annotator's)."""
    kept = out[keep]
    exact = kept.duplicated(keep="first").to_numpy()
    face = kept.duplicated(["path"] + [c for c in ("frame", *BOX_COLUMNS) if c in out.columns],
                           keep="first").to_numpy()
    if not face.any():
        return
    mask = np.zeros(len(out), dtype=bool)
    mask[np.flatnonzero(keep)[exact]] = True
    drop(mask, "duplicate_rows", items)
    said = []
    if exact.any():
        said.append(f"{int(exact.sum())} duplicate row(s) skipped (duplicate_rows: equal to an "
                    "earlier row, which is kept)")
    if (face & ~exact).any():
        said.append(f"{int((face & ~exact).sum())} row(s) repeat an earlier row's face (path, "
                    "frame, box) with other values, kept as samples of their own")
    warnings.warn(f"{path}: {'; '.join(said)}", stacklevel=3)


@register_dataset("csv")
def read(
    root: str | Path | None,
    *,
    csv: str | None = None,
    check_files: bool = True,
    detect: bool = False,
) -> ReadResult:
    """Read a labels CSV (see the module docstring for the format).

    ``csv``: file name inside a root folder (default ``labels.csv``); ``check_files``: skip
    rows whose file does not exist; ``detect``: ask for face detection on every row without a
    box (for uncropped photos).
    """
    path = _locate(root, csv)
    base = path.parent.absolute()
    df = _read_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found "
            f"{excerpt(', '.join(df.columns)) or 'none'}; need {', '.join(REQUIRED_COLUMNS)}"
        )
    skipped = SkipReport()
    n = len(df)
    keep = np.ones(n, dtype=bool)

    def drop(mask: np.ndarray, reason: str, items) -> None:
        for i in np.flatnonzero(mask & keep):
            skipped.add(reason, f"row {i + 2}: {excerpt(items[i], 200)}")
        keep[mask] = False

    raw_paths = df["path"].to_numpy()
    paths, path_reasons = _resolve_paths(df["path"], base)
    path_reasons = np.array(path_reasons, dtype=object)
    for reason in ("empty_path", "bad_path", "outside_root"):
        drop(path_reasons == reason, reason, raw_paths)
    if skipped.counts.get("outside_root"):
        warnings.warn(
            f"{path}: skipped {skipped.counts['outside_root']} row(s) whose path leaves the "
            f"dataset root {base} (e.g. {skipped.examples['outside_root'][0]})",
            stacklevel=2,
        )

    identity = df["identity"].str.strip()
    drop((identity == "").to_numpy(), "no_identity", raw_paths)

    v = pd.to_numeric(df["valence"].str.strip(), errors="coerce").to_numpy(np.float64)
    a = pd.to_numeric(df["arousal"].str.strip(), errors="coerce").to_numpy(np.float64)
    reasons = _label_reason(v, a)
    for reason in ("label_missing", "label_infinite", "label_-5", "label_out_of_range"):
        drop(reasons == reason, reason, raw_paths)

    out = pd.DataFrame({"path": paths, "identity": identity, "valence": v, "arousal": a})
    if "group" in df.columns:
        group = df["group"].str.strip()
        out["group"] = group.where(group != "", identity)
    if "split" in df.columns:
        out["split"] = df["split"].str.strip().str.lower()

    present = [c for c in BOX_COLUMNS if c in df.columns]
    if present and len(present) < 4:
        warnings.warn(
            f"{path}: box needs all of {', '.join(BOX_COLUMNS)}; found only "
            f"{', '.join(present)}, so boxes are ignored",
            stacklevel=2,
        )
    elif present:
        box = np.stack(
            [pd.to_numeric(df[c].str.strip(), errors="coerce").to_numpy(np.float64)
             for c in BOX_COLUMNS],
            axis=1,
        )
        given = np.isfinite(box).all(axis=1)
        partial = np.isfinite(box).any(axis=1) & ~given
        bad = given & ((box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1]))
        drop(partial | bad, "bad_box", raw_paths)
        for j, c in enumerate(BOX_COLUMNS):
            out[c] = np.where(given, box[:, j], np.nan)

    video = np.array([p is not None and is_video(p) for p in paths], dtype=bool)
    if video.any():
        frame = (
            pd.to_numeric(df["frame"].str.strip(), errors="coerce").to_numpy(np.float64)
            if "frame" in df.columns
            else np.full(n, np.nan)
        )
        ok = np.isfinite(frame) & (frame >= 0) & (frame == np.floor(frame))
        drop(video & ~ok, "bad_frame", raw_paths)
        out["frame"] = np.where(video, frame, np.nan)

    flags = np.zeros(n, dtype=bool)
    if "detect" in df.columns:
        text = df["detect"].str.strip().str.lower()
        unknown = ~text.isin(_TRUE | _FALSE).to_numpy()
        drop(unknown, "bad_detect", raw_paths)
        flags = text.isin(_TRUE).to_numpy()
    if detect:
        has_box = (out[list(BOX_COLUMNS)].notna().all(axis=1).to_numpy() if present
                   else np.zeros(n, bool))
        flags = flags | ~has_box
    if flags.any():
        out["detect"] = flags

    _drop_duplicates(out, keep, drop, raw_paths, path)

    if check_files:
        exists: dict[str, bool] = {}
        missing_file = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(keep):
            p = paths[i]
            if p not in exists:
                exists[p] = os.path.isfile(p)
            missing_file[i] = not exists[p]
        drop(missing_file, "missing_file", raw_paths)

    return ReadResult(out[keep].reset_index(drop=True), skipped, source=str(path))
