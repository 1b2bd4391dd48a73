"""Reading the files of a published dataset layout, shared by the readers: the dataset root
(:func:`as_root`), folder walks (:func:`find_dirs`), frames numbered by their file names
(:func:`frames_by_number`, :func:`check_frame_step`), label files read with a size limit
(:func:`read_label_bytes`, :func:`max_label_bytes`), numeric label files
(:func:`read_numeric_lines`), short printable quotes of file content in messages
(:func:`excerpt`) and the per-video tables joined into one (:func:`frame_records`)."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from elim.data.io import IMAGE_EXTENSIONS
from elim.data.records import SkipReport
from elim.errors import DataError

#: Label / annotation files larger than this many MiB are refused before they are read (a CSV
#: of a few million faces is far smaller); ``$ELIM_MAX_LABEL_MB`` raises or lowers the limit.
MAX_LABEL_MB = 256
MAX_LABEL_ENV = "ELIM_MAX_LABEL_MB"
#: Longest quote of a file's content in a message (``excerpt``).
EXCERPT_CHARS = 80


def max_label_bytes() -> int:
    """The size limit of label files.

    Returns
    -------
    int
        ``$ELIM_MAX_LABEL_MB`` MiB in bytes when set, else ``MAX_LABEL_MB`` MiB; a value that
        is not a positive number is a :class:`DataError`.
    """
    text = os.environ.get(MAX_LABEL_ENV, "").strip()
    if not text:
        return MAX_LABEL_MB * 2**20
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not (mb > 0 and np.isfinite(mb)):
        raise DataError(f"{MAX_LABEL_ENV}={excerpt(text)!r}: expected a positive number of MiB "
                        f"(default {MAX_LABEL_MB})")
    return max(1, int(mb * 2**20))


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _too_large(path: Path, size: str, limit: int) -> DataError:
    return DataError(
        f"{path}: too large for a label file ({size} > {_size(limit)}); if it is one, raise "
        f"the limit with the environment variable {MAX_LABEL_ENV}=<MiB>"
    )


def read_label_bytes(path: str | Path) -> bytes:
    """The content of a label / annotation file, read only when that is safe.

    What is not a regular file (a device such as ``/dev/zero``, a pipe, a socket, a folder) and
    files larger than :func:`max_label_bytes` are refused, judged from ``stat`` before reading
    and again while reading: at most limit + 1 bytes are read, so a file whose reported size
    is wrong (``/proc``) cannot grow memory either.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    bytes
        Its content. A :class:`DataError` naming the file, the limit and ``$ELIM_MAX_LABEL_MB``
        when it is refused or cannot be read.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from err
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise DataError(f"{path}: not a regular file ({kind}); pass a labels file")
    limit = max_label_bytes()
    if st.st_size > limit:
        raise _too_large(path, _size(st.st_size), limit)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    if len(data) > limit:
        raise _too_large(path, "more than that", limit)
    return data


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A quote of file content that is safe to put in a message.

    Parameters
    ----------
    text
        What the file held (a header line, a path).
    limit
        Most characters kept.

    Returns
    -------
    str
        ``text`` with every character that is not printable replaced by ``?``, cut to
        ``limit`` characters (the last one ``…`` when cut).
    """
    clean = "".join(c if c.isprintable() else "?" for c in str(text))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def check_frame_step(frame_step: int) -> int:
    """Validate a frame subsampling step (keep frames whose 0-based index is a multiple)."""
    if isinstance(frame_step, bool) or int(frame_step) != frame_step or frame_step < 1:
        raise DataError(f"frame_step must be a positive integer, got {frame_step!r}")
    return int(frame_step)


def frames_by_number(
    folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS
) -> dict[int, Path]:
    """Map frame number -> image path for files named by a (zero-padded) integer stem.

    One directory listing per folder (no per-frame ``stat``); files whose stem is not an
    integer are ignored. A missing folder gives an empty mapping.
    """
    exts = {e.lower() for e in extensions}
    out: dict[int, Path] = {}
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return out
    with entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in exts and stem.isdigit():
                out.setdefault(int(stem), Path(entry.path))
    return out


def find_dirs(
    root: Path, match: Callable[[Path], bool], max_depth: int, prune: Callable[[Path], bool]
) -> list[Path]:
    """Directories under ``root`` (depth <= ``max_depth``) for which ``match`` holds.

    The walk does not descend into matches nor into directories for which ``prune`` holds,
    so large frame folders are never listed. Results are sorted.
    """
    found: list[Path] = []
    level = [root]
    for depth in range(max_depth + 1):
        nxt: list[Path] = []
        for folder in level:
            if match(folder):
                found.append(folder)
                continue
            if depth == max_depth or prune(folder):
                continue
            try:
                nxt.extend(sorted(p for p in folder.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = nxt
    return sorted(found)


def as_root(root: str | Path | None, dataset: str) -> Path:
    """Resolve ``root`` to an existing directory or raise a :class:`DataError`."""
    if root is None:
        raise DataError(f"{dataset}: --root is required (the folder holding the dataset)")
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"{dataset}: dataset root {str(path)!r} is not a directory")
    return path


def frame_records(tables: Sequence[pd.DataFrame | None], dataset: str, base: Path,
                  skipped: SkipReport, hint: str) -> pd.DataFrame:
    """The non-empty per-video ``tables`` as one record table.

    Raises a :class:`DataError` naming ``base``, the skip counts and the layout ``hint`` when no
    video gave a usable frame.
    """
    parts = [t for t in tables if t is not None and len(t)]
    if not parts:
        raise DataError(f"{dataset}: no usable frame under {str(base)!r} ({skipped.summary()}); "
                        f"{hint}")
    return pd.concat(parts, ignore_index=True)


def read_numeric_lines(path: Path, n_cols: int, header: bool | None = None) -> np.ndarray:
    """Rows of ``n_cols`` comma/space separated numbers, one per line.

    Returns a float64 array (n_lines, n_cols) in which unparseable lines are NaN, so that
    line numbers stay aligned with frame numbers. ``header``: drop the first line (True),
    keep it (False) or drop it when it is not numeric (None). Trailing blank lines are
    ignored. The file is read with :func:`read_label_bytes` (size limit, regular files only).
    """
    data = read_label_bytes(path)
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"cannot read annotation file {str(path)!r}: {err}") from err
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return np.empty((0, n_cols))
    if header is None:
        header = not np.isfinite(_parse_lines(lines[:1], n_cols)).all()
    body = lines[1:] if header else lines
    return _parse_fast(body, n_cols) if body else np.empty((0, n_cols))


def _parse_fast(lines: list[str], n_cols: int) -> np.ndarray:
    """Clean comma-separated files with pandas' C parser; anything unusual line by line."""
    if sum(line.count(",") for line in lines) != len(lines) * (n_cols - 1):
        return _parse_lines(lines, n_cols)
    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines)), header=None, sep=",", dtype=np.float64,
                            names=list(range(n_cols)), skip_blank_lines=False, engine="c")
        values = frame.to_numpy(dtype=np.float64)
        if values.shape == (len(lines), n_cols) and np.isfinite(values).all():
            return values
    except (ValueError, pd.errors.ParserError):
        pass
    return _parse_lines(lines, n_cols)


def _parse_lines(lines: list[str], n_cols: int) -> np.ndarray:
    """Each line as ``n_cols`` numbers separated by commas/spaces; NaN rows where it is not."""
    parts = pd.Series(lines, dtype=object).str.strip().str.split(r"[,;\s]+", regex=True,
                                                                  expand=True)
    values = np.full((len(lines), n_cols), np.nan)
    if parts.shape[1] >= n_cols:
        numeric = parts.iloc[:, :n_cols].apply(pd.to_numeric, errors="coerce")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        extra = parts.iloc[:, n_cols:].notna().to_numpy().any(axis=1)
        values[extra] = np.nan
    return values
