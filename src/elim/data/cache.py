"""The face cache: every record decoded once, cropped, resized and stored as uint8.

Training reads faces from this cache instead of decoding JPEGs / videos every epoch. A cache
directory holds

- ``shard_00000.npy`` … — (n, S, S, 3) uint8 faces, memory-mapped when loaded;
- ``shard_00000.done`` … — JSON marker written after its shard: which records it kept (and
  the box used for each), what it skipped and why, the fingerprint of the build, and the
  shard file's size and CRC-32 (``bytes``, ``crc32``; copied into ``cache.json``);
- ``cache.json`` — image size, margin, source, dataset name, counts, skip reports, shard list;
- ``index.parquet`` (when pyarrow is installed) or ``index.csv`` — the table of kept records,
  aligned row for row with the concatenated shards. It is written **last** and atomically:
  a cache without its index is an unfinished build and is never loaded.

Builds are resumable: a rerun with the same records, image size and margin keeps the shards
whose markers match and processes the rest, giving the same files as an uninterrupted build.
Opening a cache checks every shard against its size and CRC-32 (one sequential read, about
2 GB/s, once per process for an unchanged file): :meth:`FaceCache.load` raises a :class:`DataError` naming a damaged shard, and a build
(``elim data prepare``, :func:`elim.datasets.open_dataset`) rebuilds it. A failed write (a full
disk) is a :class:`DataError` naming the folder; the shards already written are kept, so
rerunning the same command resumes.
The *fingerprint* hashes the record table, the size and modification time of every source
file, the image size, the margin and the cache format (and alignment, for caches whose faces are
warped onto a measured five-point template: ``cache.json["align"]``), so any change starts a
fresh build.
It is computed once per build, by :func:`plan_cache` (the records themselves were validated
once, when their :class:`elim.data.records.ReadResult` was made).
"""

from __future__ import annotations

import errno
import hashlib
import io as _io
import json
import math
import os
import re
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elim.config import DEFAULT_MARGIN
from elim.data.extract import LazyDetector, VideoPool, detect_mask, extract_faces
from elim.data.face_contract import (
    CONTRACT_SAMPLE,
    VIEW_FILL,
    VIEW_PAD,
    VIEW_SIZE,
    Aligner,
    CropViewer,
    align_template,
    detector_name,
    sample_rows,
)
from elim.data.io import MAX_PIXELS
from elim.data.records import BOX_COLUMNS, ReadResult, SkipReport
from elim.data.shards import ShardedArray, pack_memmap, unpack_memmap
from elim.errors import DataError
from elim.fileio import atomic_write_bytes, write_json

FORMAT = "elim-face-cache"
FORMAT_VERSION = 2  # 2: shard checksums, faces under MIN_FACE_PIXELS skipped
META = "cache.json"
INDEX_PARQUET = "index.parquet"
INDEX_CSV = "index.csv"
_SHARD_RE = re.compile(r"^shard_(\d{5,})\.(npy|done)$")
_SHARD_BYTES = 256 * 2**20  # default shard: at most 4096 faces and about 256 MB
_CHUNK = 16 * 2**20  # bytes read at a time when checking a shard


# --------------------------------------------------------------------------- the cache
@dataclass
class FaceCache:
    """Cropped faces and their records, row for row.

    ``images`` is (N, S, S, 3) uint8: a numpy array, a read-only ``np.memmap`` or a
    :class:`ShardedArray` of memory-mapped shards; ``table`` holds the records (identity,
    valence, arousal, group, path, …; column ``record`` = row of the reader's table).
    """

    images: Any
    table: pd.DataFrame
    image_size: int
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.images.shape)
        if len(shape) != 4 or shape[1:] != (self.image_size, self.image_size, 3):
            raise DataError(
                f"face images must be (N, {self.image_size}, {self.image_size}, 3), got {shape}"
            )
        if self.images.dtype != np.uint8:
            raise DataError(f"face images must be uint8, got {self.images.dtype}")
        if shape[0] != len(self.table):
            raise DataError(f"{shape[0]} images but {len(self.table)} table rows")
        self.table = self.table.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.table)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "images": pack_memmap(self.images)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({**state, "images": unpack_memmap(state["images"])})

    @property
    def identities(self) -> list[str]:
        return sorted(self.table["identity"].unique())

    @property
    def skipped(self) -> SkipReport:
        """Everything left out on the way: by the reader and by the cache build."""
        report = SkipReport.from_dict(self.meta.get("reader_skipped", {}))
        report.merge(SkipReport.from_dict(self.meta.get("skipped", {})))
        return report

    @classmethod
    def from_arrays(
        cls, images: np.ndarray, table: pd.DataFrame, meta: dict | None = None
    ) -> FaceCache:
        """Wrap in-memory faces (N, S, S, 3) uint8 and their record table."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != images.shape[2]:
            raise DataError(f"face images must be (N, S, S, 3), got {images.shape}")
        table = table.copy()
        if "path" not in table.columns:
            table["path"] = [f"array:{i}" for i in range(len(table))]
        records = ReadResult(table, source="in-memory records").records
        return cls(images, records, int(images.shape[1]), dict(meta or {}))

    @classmethod
    def load(cls, directory: str | Path, verify: bool = True) -> FaceCache:
        """Open a finished cache directory (faces memory-mapped, read-only).

        Parameters
        ----------
        directory
            The cache folder.
        verify
            Check every shard's size and CRC-32 against ``cache.json`` first (a
            :class:`DataError` names a damaged shard).

        Returns
        -------
        FaceCache
            The faces and their table.
        """
        directory = Path(directory)
        meta = _read_meta(directory)
        if meta is None:
            raise DataError(
                f"{directory}: not an elim face cache ({META} missing or invalid); build it "
                "with `elim data prepare`"
            )
        if meta.get("version") != FORMAT_VERSION:
            raise DataError(
                f"{directory}: face cache format version {meta.get('version')}, this elim "
                f"reads version {FORMAT_VERSION}; rebuild it (rerun `elim data prepare`, or "
                "delete the folder)"
            )
        index = directory / meta["index"]
        if not index.is_file():
            raise DataError(
                f"{directory}: unfinished face cache (no {meta['index']}; the build was "
                "interrupted); rerun `elim data prepare` with the same arguments to resume"
            )
        table = _read_index(index, meta["columns"])
        size = int(meta["image_size"])
        parts = []
        for shard in meta["shards"]:
            if shard["n"] == 0:
                continue
            file = directory / shard["file"]
            if verify and not _shard_intact(file, shard):
                raise DataError(
                    f"{file}: shard damaged (its size or CRC-32 differs from {META}); rerun "
                    "`elim data prepare` (or training) with the same arguments to rebuild it"
                )
            try:
                arr = np.load(file, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise DataError(f"{file}: cannot open shard ({err}); rebuild the cache") from err
            if arr.shape != (shard["n"], size, size, 3) or arr.dtype != np.uint8:
                raise DataError(
                    f"{file}: shard shape {arr.shape} {arr.dtype} does not match {META}; "
                    "rebuild the cache"
                )
            parts.append(arr)
        if not parts:
            images: Any = np.zeros((0, size, size, 3), dtype=np.uint8)
        else:
            images = parts[0] if len(parts) == 1 else ShardedArray(parts)
        if len(images) != len(table):
            raise DataError(
                f"{directory}: {len(images)} faces in shards but {len(table)} rows in "
                f"{meta['index']}; rebuild the cache"
            )
        return cls(images, table, size, meta, directory)

    def subset(self, indices: Sequence[int] | np.ndarray) -> FaceCache:
        """The rows ``indices`` (memory-mapped faces are viewed, not copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self.images, ShardedArray):
            images: Any = self.images.take(idx)
        elif isinstance(self.images, np.memmap):
            images = ShardedArray([self.images], idx)
        else:
            images = np.asarray(self.images)[idx]
        return FaceCache(images, self.table.iloc[idx], self.image_size, self.meta, self.path)


# --------------------------------------------------------------------------- fingerprint
def _file_stats(paths: np.ndarray) -> np.ndarray:
    out = np.full((len(paths), 2), -1, dtype=np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
            out[i] = (st.st_size, st.st_mtime_ns)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            pass
    return out


def records_fingerprint(records: pd.DataFrame, image_size: int, margin: float,
                        align: bool = False) -> str:
    """Hash of everything a cache depends on (records, source files, size, margin, format;
    with ``align``, alignment and the detector)."""
    cols = sorted(records.columns)
    uses_detector = bool(detect_mask(records).any()) or align
    head: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "image_size": int(image_size),
        "margin": round(float(margin), 9),
        "columns": cols,
        "n": len(records),
        "detector": (detector_name() or "none") if uses_detector else None,
    }
    if align:  # only then: the fingerprints of unaligned caches stay as they were
        head["align"] = {"view": [VIEW_SIZE, VIEW_PAD, VIEW_FILL], "sample": CONTRACT_SAMPLE}
    h = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    try:
        hashed = pd.util.hash_pandas_object(records[cols], index=False)
    except TypeError:
        hashed = pd.util.hash_pandas_object(records[cols].astype(str), index=False)
    h.update(hashed.to_numpy().tobytes())
    paths = records["path"].astype(str).unique()
    h.update("\n".join(paths).encode())
    h.update(_file_stats(paths).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- on-disk pieces
def _shard_name(k: int) -> str:
    return f"shard_{k:05d}.npy"


def _marker_name(k: int) -> str:
    return f"shard_{k:05d}.done"


def _read_meta(directory: Path) -> dict | None:
    try:
        meta = json.loads((directory / META).read_text())
    except (OSError, ValueError):
        return None
    keys = ("format", "fingerprint", "image_size", "shards", "index", "columns")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    if any(k not in meta for k in keys):
        return None
    return meta


def _write_index(directory: Path, table: pd.DataFrame) -> str:
    """Write the index table atomically; returns its file name."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        buf = table.to_csv(index=False).encode()
        name = INDEX_CSV
    else:
        out = _io.BytesIO()
        table.to_parquet(out, index=False)
        buf, name = out.getvalue(), INDEX_PARQUET
    atomic_write_bytes(directory / name, buf)
    return name


def _read_index(path: Path, columns: list[list[str]]) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except ImportError as err:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from err
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read the cache index ({err}); rebuild the cache") from err
    if list(table.columns) != [c for c, _ in columns]:
        raise DataError(f"{path}: columns differ from {META}; rebuild the cache")
    if path.suffix == ".parquet":
        return table
    for col, dtype in columns:
        try:
            kind = np.dtype(dtype).kind
        except TypeError:
            continue  # pandas string / object columns stay strings
        if kind == "b":
            table[col] = table[col].map({"True": True, "False": False}).astype(bool)
        elif kind in "fiu":
            table[col] = pd.to_numeric(table[col].replace("", np.nan)).astype(dtype)
    return table


def _write_shard(directory: Path, k: int, faces: np.ndarray, marker: dict) -> None:
    """Write shard ``k`` (atomically), then its done marker with the shard's size and CRC-32."""
    buf = _io.BytesIO()
    np.save(buf, faces, allow_pickle=False)
    data = buf.getvalue()
    atomic_write_bytes(directory / _shard_name(k), data)
    write_json(directory / _marker_name(k),
               {**marker, "bytes": len(data), "crc32": f"{zlib.crc32(data):08x}"})


#: shards found intact in this process: (path, size, mtime_ns, crc32), so that a study opening
#: one cache for every fit reads each shard once
_INTACT: set[tuple[str, int, int, str]] = set()


def _shard_intact(file: Path, expected: dict) -> bool:
    """Whether ``file`` has the ``bytes`` and ``crc32`` recorded for it (read in chunks)."""
    try:
        st = file.stat()
        if st.st_size != expected.get("bytes"):
            return False
        key = (str(file.absolute()), st.st_size, st.st_mtime_ns, str(expected.get("crc32")))
        if key in _INTACT:
            return True
        crc = 0
        with open(file, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
    except OSError:
        return False
    if f"{crc:08x}" != expected.get("crc32"):
        return False
    _INTACT.add(key)
    return True


def _write_error(out: Path, err: OSError) -> DataError:
    """A failed write of the cache under ``out`` as one line saying what to do."""
    full = err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    fix = "free disk space there" if full else "make it writable"
    return DataError(
        f"{out}: cannot write the face cache ({err.strerror or err}); {fix} or choose another "
        "folder (--out of `elim data prepare`, --cache-dir / $ELIM_CACHE_DIR of training), "
        "then rerun the same command: the shards already written are kept and the build resumes"
    )


def _read_marker(directory: Path, k: int, fingerprint: str, start: int, stop: int, size: int):
    """The marker of shard ``k`` when it belongs to this build and its shard is intact."""
    try:
        marker = json.loads((directory / _marker_name(k)).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(marker, dict)
        or marker.get("fingerprint") != fingerprint
        or (marker.get("start"), marker.get("stop")) != (start, stop)
        or not _shard_intact(directory / _shard_name(k), marker)
    ):
        return None
    try:
        shard = np.load(directory / _shard_name(k), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if shard.shape != (marker["n"], size, size, 3) or shard.dtype != np.uint8:
        return None
    return marker


def _remove_own_files(directory: Path, keep_below: int | None = None) -> None:
    """Delete this module's files (all, or only shards numbered >= ``keep_below``)."""
    if keep_below is None:
        for name in (INDEX_PARQUET, INDEX_CSV, META):
            (directory / name).unlink(missing_ok=True)
    for p in directory.iterdir():
        m = _SHARD_RE.match(p.name)
        if m and (keep_below is None or int(m.group(1)) >= keep_below):
            p.unlink(missing_ok=True)


def default_shard_size(image_size: int) -> int:
    """Faces per shard: 4096, fewer for large faces (about 256 MB per shard at most)."""
    return int(max(64, min(4096, _SHARD_BYTES // (3 * image_size * image_size))))


@dataclass(frozen=True)
class CachePlan:
    """What a cache is built from, and its fingerprint, computed once (:func:`plan_cache`).

    ``read_result`` holds records already validated (:class:`ReadResult` checks them when it
    is made); ``fingerprint`` is :func:`records_fingerprint` of them with ``image_size``,
    ``margin`` and ``align`` (faces warped onto a measured template, see :meth:`build`): it names the cache folder of :func:`elim.datasets.open_dataset` and decides
    whether a folder's shards are reused.
    """

    read_result: ReadResult
    image_size: int
    margin: float
    fingerprint: str
    align: bool = False

    @property
    def records(self) -> pd.DataFrame:
        return self.read_result.records

    @property
    def source(self) -> str:
        return self.read_result.source or "records"

    def build(
        self,
        out_dir: str | Path,
        progress: bool = True,
        workers: int = 0,
        *,
        dataset: str = "",
        shard_size: int | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> FaceCache:
        """Build (resume, or reuse) the cache under ``out_dir``; see :func:`build_cache`.

        Parameters
        ----------
        out_dir
            The cache folder (created; another build's files in it are replaced).
        progress
            Show a progress bar.
        workers
            Decoding threads (> 1: that many).
        dataset
            The dataset's name, recorded in ``cache.json``.
        shard_size
            Faces per shard (default :func:`default_shard_size`).
        max_pixels
            Larger images are skipped as ``too_large`` (checked before decoding).
        """
        out = Path(out_dir)
        try:
            return self._build(out, progress, workers, dataset, shard_size, max_pixels)
        except OSError as err:
            raise _write_error(out, err) from err

    def _build(self, out: Path, progress: bool, workers: int, dataset: str,
               shard_size: int | None, max_pixels: int | None) -> FaceCache:
        records, fingerprint, image_size = self.records, self.fingerprint, self.image_size
        out.mkdir(parents=True, exist_ok=True)

        meta = _read_meta(out)
        if meta is not None and meta["fingerprint"] == fingerprint:
            try:
                return FaceCache.load(out)
            except DataError:
                pass  # unfinished or damaged: resume below
        if meta is not None and meta["fingerprint"] != fingerprint:
            _remove_own_files(out)  # another build's cache: drop its index first, then its shards
        else:
            for name in (INDEX_PARQUET, INDEX_CSV):
                (out / name).unlink(missing_ok=True)

        shard_size = int(shard_size or default_shard_size(image_size))
        n = len(records)
        n_shards = math.ceil(n / shard_size)
        detector = LazyDetector()
        aligner, align_meta = (self._aligner(detector, workers, max_pixels) if self.align
                               else (None, None))
        videos = VideoPool(size=max(workers, 1) + 2, max_pixels=max_pixels)
        from tqdm.auto import tqdm

        desc = f"caching {dataset or Path(self.source).name}"
        with tqdm(total=n, desc=desc, unit="face", disable=None if progress else True) as pbar:
            try:
                for k in range(n_shards):
                    start, stop = k * shard_size, min(n, (k + 1) * shard_size)
                    if _read_marker(out, k, fingerprint, start, stop, image_size) is not None:
                        pbar.update(stop - start)
                        continue
                    faces, marker = extract_faces(
                        records, start, stop, image_size, self.margin, detector, workers,
                        videos, pbar, aligner
                    )
                    marker = {"fingerprint": fingerprint, "shard": k, **marker}
                    _write_shard(out, k, faces, marker)
            finally:
                videos.close()
        _remove_own_files(out, keep_below=n_shards)
        return _finish(out, self, n_shards, dataset, shard_size, align_meta)

    def _aligner(self, detector: LazyDetector, workers: int, max_pixels: int | None
                 ) -> tuple[Aligner, dict]:
        """The alignment of this build: the template measured on the unaligned crops of
        :data:`~elim.data.face_contract.CONTRACT_SAMPLE` records evenly spaced over the table
        (:func:`~elim.data.face_contract.align_template`), and its ``cache.json`` entry."""

        class _NoBar:
            def update(self, n: int) -> None:
                pass

        sample = self.records.iloc[sample_rows(np.arange(len(self.records)))]
        videos = VideoPool(size=max(workers, 1) + 2, max_pixels=max_pixels)
        try:
            crops, _ = extract_faces(sample.reset_index(drop=True), 0, len(sample),
                                     self.image_size, self.margin, detector, workers, videos,
                                     _NoBar())
        finally:
            videos.close()
        viewer = CropViewer()
        template, info = align_template(crops, viewer)
        return Aligner(template, viewer), {"template": template.to_dict(), **info}


def plan_cache(read_result: ReadResult, image_size: int, margin: float = DEFAULT_MARGIN,
               align: bool = False) -> CachePlan:
    """Fingerprint the records of ``read_result`` for a cache of ``image_size`` px faces
    (``align``: warped onto the five-point template measured on their unaligned crops).

    DataError when the image size is below 8 pixels or there is no record to cache.
    """
    if image_size < 8:
        raise DataError(f"image size must be at least 8 pixels, got {image_size}")
    records = read_result.records
    if len(records) == 0:
        raise DataError(f"{read_result.source or 'records'}: no records to cache "
                        f"({read_result.skipped.summary()})")
    return CachePlan(read_result, int(image_size), float(margin),
                     records_fingerprint(records, image_size, margin, align), bool(align))


def build_cache(read_result: ReadResult, out_dir: str | Path, image_size: int,
                margin: float = DEFAULT_MARGIN, align: bool = False, **options: Any
                ) -> FaceCache:
    """Decode, crop and store every record of ``read_result`` under ``out_dir``.

    Each file is decoded once (video frames in one sequential pass); faces are cropped with
    :func:`elim.data.crop.crop_face` (``margin`` around given or detected boxes; whole
    images are centre-cropped). Unreadable files, frames past a video's end, boxes outside
    the image, faces whose source region is under ``elim.data.crop.MIN_FACE_PIXELS`` (8) px
    (``too_small``) and images where the detector finds no face are skipped and counted. Records
    with ``detect=True`` and no box use ``elim.detection.detect_largest``; without it, the
    whole image is used and counted under ``notes['no_detector']``. An existing cache with
    the same fingerprint is reused; an interrupted one is resumed.

    ``options`` are those of :meth:`CachePlan.build` (``progress``, ``workers`` decoding
    threads, ``dataset`` name, ``shard_size``, ``max_pixels``): this is
    ``plan_cache(read_result, image_size, margin, align).build(out_dir, **options)``.

    With ``align`` the five-point template is first measured on the unaligned crops of a
    sample of the records (:func:`elim.data.face_contract.align_template`; DataError when the
    detector finds too few faces), then every face is warped onto it
    (:class:`elim.data.face_contract.Aligner`; faces in which the detector sees none are kept
    unaligned, counted under ``notes['not_aligned']``); ``cache.json["align"]`` records the
    template, how it was measured and the counts.
    """
    return plan_cache(read_result, image_size, margin, align).build(out_dir, **options)


def _finish(out: Path, plan: CachePlan, n_shards: int, dataset: str, shard_size: int,
            align_meta: dict | None = None) -> FaceCache:
    """Assemble the index from the shard markers; write cache.json, then the index."""
    records, read_result = plan.records, plan.read_result
    kept: list[int] = []
    boxes: list[Any] = []
    skipped, notes = SkipReport(), SkipReport()
    shards = []
    for k in range(n_shards):
        marker = json.loads((out / _marker_name(k)).read_text())
        kept.extend(marker["kept"])
        boxes.extend(marker["boxes"])
        skipped.merge(SkipReport.from_dict(marker["skipped"]))
        notes.merge(SkipReport.from_dict(marker["notes"]))
        shards.append({"file": _shard_name(k), "n": int(marker["n"]),
                       "bytes": int(marker["bytes"]), "crc32": str(marker["crc32"])})
    table = records.iloc[kept].reset_index(drop=True)
    table.insert(len(table.columns), "record", np.asarray(kept, dtype=np.int64))
    if any(b is not None for b in boxes):
        arr = np.array([b if b is not None else [np.nan] * 4 for b in boxes], dtype=np.float64)
        for j, col in enumerate(BOX_COLUMNS):
            table[col] = arr[:, j]
    if notes.counts.get("no_detector"):
        warnings.warn(
            f"{notes.counts['no_detector']} record(s) asked for face detection but "
            "elim.detection is unavailable; used the whole image",
            stacklevel=3,
        )
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dataset": dataset,
        "source": read_result.source,
        "image_size": plan.image_size,
        "margin": plan.margin,
        "fingerprint": plan.fingerprint,
        "shard_size": shard_size,
        "counts": {
            "records": len(records),
            "written": len(table),
            "skipped": skipped.total,
            "reader_skipped": read_result.skipped.total,
            "identities": int(table["identity"].nunique()),
            **{f"note_{k}": int(v) for k, v in sorted(notes.counts.items())},
        },
        "skipped": skipped.to_dict(),
        "reader_skipped": read_result.skipped.to_dict(),
        "notes": notes.to_dict(),
        "shards": shards,
        "columns": [[str(c), str(t)] for c, t in table.dtypes.items()],
    }
    if align_meta is not None:
        not_aligned = int(notes.counts.get("not_aligned", 0))
        meta["align"] = {**align_meta, "aligned": len(table) - not_aligned,
                         "not_aligned": not_aligned}
    try:
        import pyarrow  # noqa: F401

        meta["index"] = INDEX_PARQUET
    except ImportError:
        meta["index"] = INDEX_CSV
    write_json(out / META, meta)
    _write_index(out, table)  # last: its presence marks a finished cache
    return FaceCache.load(out, verify=False)  # every shard was just written or checked
