"""The face cache: build, load, resume after an interruption, skips, fingerprints."""

from __future__ import annotations

import filecmp
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import elim.data.cache as cache_mod
from elim.data.cache import (
    FaceCache,
    build_cache,
    records_fingerprint,
)
from elim.data.crop import crop_face
from elim.data.io import read_image
from elim.data.records import ReadResult
from elim.data.shards import ShardedArray
from elim.datasets import read_dataset
from elim.errors import DataError


def _records(csv: Path) -> ReadResult:
    return read_dataset("csv", csv)


def test_build_and_load_match_crop_face(tmp_path, dataset_csv):
    rr = _records(dataset_csv)
    cache = build_cache(rr, tmp_path / "c", 16, margin=0.2, progress=False)
    assert isinstance(cache.images, np.memmap) and cache.images.shape == (12, 16, 16, 3)
    for i in (0, 5, 11):
        expected = crop_face(read_image(cache.table.path[i]), None, 16, 0.2)
        np.testing.assert_array_equal(cache.images[i], expected)
    loaded = FaceCache.load(tmp_path / "c")
    pd.testing.assert_frame_equal(loaded.table, cache.table)
    assert loaded.table.identity.tolist()[:3] == ["000", "000", "000"]  # strings survive the CSV
    assert loaded.table.valence.dtype == np.float32
    assert loaded.meta["counts"]["written"] == 12 and loaded.skipped.total == 0
    np.testing.assert_array_equal(np.asarray(loaded.images), np.asarray(cache.images))


def test_boxes_are_used_and_stored(tmp_path, helpers):
    csv = helpers.make_dataset(tmp_path / "raw", n_ids=2, per_id=2, boxes=True)
    cache = build_cache(_records(csv), tmp_path / "c", 20, margin=0.0, progress=False)
    row = cache.table.iloc[1]
    box = (row.x0, row.y0, row.x1, row.y1)
    assert box == (5.0, 3.0, 25.0, 27.0)
    np.testing.assert_array_equal(cache.images[1], crop_face(read_image(row.path), box, 20, 0.0))


def _interrupt_after(monkeypatch, n_shards: int):
    real = cache_mod._write_shard
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n_shards:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(cache_mod, "_write_shard", flaky)
    return calls


def test_resume_after_interruption_gives_the_same_cache(tmp_path, monkeypatch, dataset_csv):
    rr = _records(dataset_csv)
    whole = build_cache(rr, tmp_path / "whole", 16, progress=False, shard_size=5)
    calls = _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        build_cache(rr, tmp_path / "part", 16, progress=False, shard_size=5)
    part = tmp_path / "part"
    assert (part / "shard_00001.done").exists() and not (part / "shard_00002.npy").exists()
    with pytest.raises(DataError, match="not an elim face cache|unfinished"):
        FaceCache.load(part)  # half-written: never trusted
    monkeypatch.undo()
    written = []
    real = cache_mod._write_shard
    monkeypatch.setattr(cache_mod, "_write_shard", lambda d, k, *a: written.append(k) or real(d, k, *a))
    resumed = build_cache(rr, part, 16, progress=False, shard_size=5)
    assert written == [2] and calls["n"] == 2  # only the missing shard was built
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == sorted(p.name for p in part.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "whole", part, names, shallow=False)
    assert mismatch == [] and errors == []
    assert isinstance(resumed.images, ShardedArray) and len(resumed) == len(whole) == 12


def test_threaded_build_is_identical(tmp_path, dataset_csv):
    rr = _records(dataset_csv)
    serial = build_cache(rr, tmp_path / "serial", 16, progress=False, shard_size=5)
    threaded = build_cache(rr, tmp_path / "threads", 16, progress=False, shard_size=5, workers=3)
    np.testing.assert_array_equal(np.asarray(threaded.images), np.asarray(serial.images))
    pd.testing.assert_frame_equal(threaded.table, serial.table)


def test_missing_index_means_unfinished(tmp_path, dataset_csv):
    build_cache(_records(dataset_csv), tmp_path / "c", 16, progress=False)
    (tmp_path / "c" / "index.csv").unlink()
    with pytest.raises(DataError, match="unfinished"):
        FaceCache.load(tmp_path / "c")
    with pytest.raises(DataError, match="not an elim face cache"):
        FaceCache.load(tmp_path / "empty")


def test_unreadable_records_are_skipped_and_counted(tmp_path, dataset_csv):
    rr = read_dataset("csv", dataset_csv, check_files=False)
    paths = rr.records.path
    Path(paths[0]).write_bytes(b"")  # zero bytes
    Path(paths[1]).write_bytes(b"garbage, not a png")  # corrupt
    os.remove(paths[2])  # missing
    rr.records.loc[3, ["x0", "y0", "x1", "y1"]] = [500.0, 500.0, 600.0, 600.0]  # outside the image
    cache = build_cache(rr, tmp_path / "c", 16, progress=False, shard_size=4)
    counts = dict(cache.meta["counts"])
    skipped = {k: v["count"] for k, v in cache.meta["skipped"].items()}
    assert skipped == {"unreadable": 2, "missing_file": 1, "bad_box": 1}
    assert counts["written"] == 8 and len(cache) == 8
    assert cache.table.record.tolist() == list(range(4, 12))
    assert any(paths[1] in ex for ex in cache.meta["skipped"]["unreadable"]["examples"])


def test_all_skipped_shard_still_loads(tmp_path, dataset_csv):
    rr = read_dataset("csv", dataset_csv)
    for p in rr.records.path[:4]:
        Path(p).write_bytes(b"")
    cache = build_cache(rr, tmp_path / "c", 16, progress=False, shard_size=4)
    assert len(cache) == 8 and cache.meta["shards"][0]["n"] == 0
    assert FaceCache.load(tmp_path / "c").images.shape == (8, 16, 16, 3)


def test_fingerprint_tracks_labels_size_margin_and_files(dataset_csv):
    rec = _records(dataset_csv).records
    base = records_fingerprint(rec, 16, 0.2)
    assert records_fingerprint(rec.copy(), 16, 0.2) == base
    changed = rec.copy()
    changed.loc[0, "valence"] = 0.123
    assert records_fingerprint(changed, 16, 0.2) != base
    assert records_fingerprint(rec, 32, 0.2) != base
    assert records_fingerprint(rec, 16, 0.3) != base
    st = os.stat(rec.path[0])
    os.utime(rec.path[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert records_fingerprint(rec, 16, 0.2) != base


def test_changed_dataset_invalidates_a_cache_dir(tmp_path, dataset_csv):
    rr = _records(dataset_csv)
    first = build_cache(rr, tmp_path / "c", 16, progress=False)
    again = build_cache(rr, tmp_path / "c", 16, progress=False)  # reused as is
    assert again.meta["fingerprint"] == first.meta["fingerprint"]
    rr.records.loc[0, "valence"] = 0.5
    second = build_cache(rr, tmp_path / "c", 16, progress=False)
    assert second.meta["fingerprint"] != first.meta["fingerprint"]
    assert second.table.valence[0] == 0.5


def test_detect_uses_the_detector_or_falls_back(tmp_path, monkeypatch, dataset_csv):
    import types

    try:  # as in a full test run: the real module may already be imported
        import elim.detection  # noqa: F401
    except ImportError:
        pass
    rr = read_dataset("csv", dataset_csv, detect=True)
    assert rr.records.detect.all()
    fake = types.ModuleType("elim.detection")
    fake.DETECTOR_NAME = "fake"
    seen = []

    def detect_largest(image):
        seen.append(image.shape)
        if len(seen) % 3 == 0:
            return None  # every third image: no face
        return types.SimpleNamespace(box=(2.0, 2.0, 22.0, 22.0), score=1.0)

    fake.detect_largest = detect_largest
    monkeypatch.setitem(sys.modules, "elim.detection", fake)
    cache = build_cache(rr, tmp_path / "c", 16, margin=0.0, progress=False)
    assert len(seen) == 12 and cache.meta["skipped"]["no_face"]["count"] == 4
    assert (cache.table[["x0", "y0", "x1", "y1"]].to_numpy() == [2, 2, 22, 22]).all()
    expected = crop_face(read_image(cache.table.path[0]), (2, 2, 22, 22), 16, 0.0)
    np.testing.assert_array_equal(cache.images[0], expected)

    monkeypatch.setitem(sys.modules, "elim.detection", None)  # import fails
    with pytest.warns(UserWarning, match="detection"):
        fallback = build_cache(rr, tmp_path / "c2", 16, progress=False)
    assert len(fallback) == 12 and fallback.meta["notes"]["no_detector"]["count"] == 12
    assert fallback.meta["fingerprint"] != cache.meta["fingerprint"]


def test_fingerprint_names_the_default_detector(monkeypatch, dataset_csv):
    """Records that ask for detection are fingerprinted with the default detector (shipped
    YuNet, its file's checksum); another detector means another cache."""
    import elim.detection

    rr = read_dataset("csv", dataset_csv, detect=True)
    assert elim.detection.DETECTOR_NAME.startswith("yunet(yunet_n_640_640.onnx sha256 25a606a1")
    base = records_fingerprint(rr.records, 16, 0.2)
    plain = read_dataset("csv", dataset_csv).records
    before = records_fingerprint(plain, 16, 0.2)
    monkeypatch.setattr(elim.detection, "DETECTOR_NAME", "mtcnn(facenet-pytorch 2.5.3)")
    assert records_fingerprint(rr.records, 16, 0.2) != base
    assert records_fingerprint(plain, 16, 0.2) == before  # no detection: detector not hashed


def test_video_records_are_cached(tmp_path, helpers):
    levels = helpers.write_video(tmp_path / "v" / "clip.avi", 5)
    records = pd.DataFrame({
        "path": [str(tmp_path / "v" / "clip.avi")] * 3, "identity": "a",
        "valence": [0.1, 0.2, 0.3], "arousal": 0.0, "frame": [3.0, 0.0, 7.0]})
    cache = build_cache(ReadResult(records), tmp_path / "c", 8, progress=False)
    assert cache.table.frame.tolist() == [3.0, 0.0]
    assert abs(float(cache.images[0].mean()) - levels[3]) < 4
    assert abs(float(cache.images[1].mean()) - levels[0]) < 4
    assert cache.meta["skipped"]["frame_missing"]["count"] == 1


def test_video_spanning_shards_is_decoded_once(tmp_path, helpers, monkeypatch):
    import elim.data.io as io_mod

    helpers.write_video(tmp_path / "clip.avi", 6)
    opened = []
    real = io_mod.cv2.VideoCapture
    monkeypatch.setattr(io_mod.cv2, "VideoCapture", lambda p: opened.append(p) or real(p))
    records = pd.DataFrame({"path": str(tmp_path / "clip.avi"), "identity": "a",
                            "valence": 0.0, "arousal": 0.0, "frame": [0.0, 1, 2, 4, 5]})
    cache = build_cache(ReadResult(records), tmp_path / "c", 8, progress=False, shard_size=2)
    assert len(cache) == 5 and len(cache.meta["shards"]) == 3 and len(opened) == 1


def test_sharded_array_indexes_like_the_concatenation():
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 255, (n, 2, 2, 3), dtype=np.uint8) for n in (3, 1, 4)]
    full = np.concatenate(parts)
    arr = ShardedArray(parts)
    assert len(arr) == 8 and arr.shape == full.shape and arr.dtype == np.uint8
    for key in (0, -1, 5, slice(1, 7, 2), [7, 0, 3, 3], np.array([2, 4]), full[:, 0, 0, 0] > 100):
        np.testing.assert_array_equal(arr[key], full[key])
    np.testing.assert_array_equal(arr[[1, 6], 0, 1], full[[1, 6], 0, 1])
    np.testing.assert_array_equal(np.asarray(arr), full)
    view = arr.take([6, 2, 0]).take([2, 0])
    np.testing.assert_array_equal(np.asarray(view), full[[0, 6]])
    with pytest.raises(IndexError):
        arr[8]


def test_subset_views_memory_mapped_faces(tmp_path, dataset_csv):
    cache = build_cache(_records(dataset_csv), tmp_path / "c", 16, progress=False)
    sub = cache.subset([11, 2, 5])
    assert isinstance(sub.images, ShardedArray)
    assert sub.table.record.tolist() == [11, 2, 5]
    np.testing.assert_array_equal(sub.images[[0, 2]], cache.images[[11, 5]])
    mem = FaceCache.from_arrays(np.asarray(cache.images), cache.table).subset([1])
    np.testing.assert_array_equal(mem.images[0], cache.images[1])


def test_pickling_remaps_instead_of_copying(tmp_path, dataset_csv):
    import pickle

    one = build_cache(_records(dataset_csv), tmp_path / "one", 32, progress=False)
    many = build_cache(_records(dataset_csv), tmp_path / "many", 32, progress=False, shard_size=5)
    for cache in (one, many, many.subset([9, 1])):
        blob = pickle.dumps(cache)
        assert len(blob) < cache.images.nbytes  # faces are not in the pickle
        back = pickle.loads(blob)
        np.testing.assert_array_equal(np.asarray(back.images), np.asarray(cache.images))
        pd.testing.assert_frame_equal(back.table, cache.table)


def test_from_arrays_validates(helpers):
    images = np.zeros((2, 8, 8, 3), np.uint8)
    table = pd.DataFrame({"identity": ["a", "b"], "valence": [0.0, 0.5], "arousal": [0.1, 0.2]})
    cache = FaceCache.from_arrays(images, table)
    assert cache.image_size == 8 and cache.table.group.tolist() == ["a", "b"]
    with pytest.raises(DataError):
        FaceCache.from_arrays(images[:1], table)
    with pytest.raises(DataError):
        FaceCache.from_arrays(images.astype(np.float32), table)


def test_nothing_to_cache_is_a_clear_error(tmp_path):
    empty = ReadResult(pd.DataFrame(columns=["path", "identity", "valence", "arousal"]))
    with pytest.raises(DataError, match="no records"):
        build_cache(empty, tmp_path / "c", 16, progress=False)


LONDON = Path(__file__).resolve().parents[3] / "shared" / "data" / "london_faces"


@pytest.mark.data
@pytest.mark.skipif(not LONDON.is_dir(), reason="../shared/data/london_faces absent")
def test_real_photos_with_the_real_detector(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "smiling").symlink_to(LONDON / "smiling")  # a link inside the root is allowed
    pd.DataFrame({"path": ["smiling/001_08.jpg", "smiling/002_08.jpg"], "identity": ["1", "2"],
                  "valence": [0.8, 0.8], "arousal": [0.3, 0.3]}).to_csv(root / "labels.csv",
                                                                      index=False)
    rr = read_dataset("csv", root, detect=True)
    cache = build_cache(rr, tmp_path / "c", 32, progress=False)
    assert len(cache) == 2 and not cache.meta["skipped"] and not cache.meta["notes"]
    for _, row in cache.table.iterrows():  # a face box well inside the 1350×1350 portrait
        w, h = row.x1 - row.x0, row.y1 - row.y0
        assert 200 < w < 1000 and 200 < h < 1000
        assert 0 <= row.x0 and row.x1 <= 1350 and 0 <= row.y0 and row.y1 <= 1350
