"""Hostile dataset inputs end as a clear DataError or a counted, reported skip — never a crash."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import elim.data.cache as cache_mod
from elim.cli import main
from elim.data.cache import FaceCache, build_cache
from elim.data.io import ImageTooLargeError, read_image
from elim.datasets import open_dataset, read_dataset
from elim.datasets.files import read_numeric_lines
from elim.errors import DataError


@pytest.mark.parametrize("case", ["zero_bytes", "truncated_png", "truncated_jpg",
                                  "header_only_png", "random_bytes", "text_as_jpg"])
def test_broken_image_files_are_a_clear_error(tmp_path, hostile, case):
    files = hostile.hostile_files(tmp_path)
    with pytest.raises(DataError, match=str(files[case].name)):
        read_image(files[case])


@pytest.mark.parametrize("case", ["enormous_64mpx", "bomb_10gpx"])
def test_enormous_images_are_refused_from_the_header(tmp_path, hostile, case):
    files = hostile.hostile_files(tmp_path)
    with pytest.raises(ImageTooLargeError, match=r"too large \(.*Mpx > 40 Mpx\)"):
        read_image(files[case])


def test_cache_counts_every_broken_file_and_keeps_the_good_ones(tmp_path, hostile):
    files = hostile.hostile_files(tmp_path / "ds")
    rows = [{"path": p.name, "identity": f"id{i % 3}", "valence": 0.1, "arousal": -0.2}
            for i, p in enumerate(files.values())]
    pd.DataFrame(rows).to_csv(tmp_path / "ds" / "labels.csv", index=False)
    cache = open_dataset("csv", tmp_path / "ds", 16, cache_dir=tmp_path / "cache", progress=False)
    assert sorted(cache.table["path"].map(lambda p: p.rsplit("/", 1)[-1])) == ["good.jpg",
                                                                               "good.png"]
    skipped = cache.skipped.counts
    assert skipped["unreadable"] == 6 and skipped["too_large"] == 2
    assert cache.meta["counts"]["skipped"] == 8


def test_dataset_without_a_single_readable_face_is_a_clear_error(tmp_path, hostile):
    files = hostile.hostile_files(tmp_path / "ds")
    pd.DataFrame([{"path": files[k].name, "identity": "a", "valence": 0, "arousal": 0}
                  for k in ("zero_bytes", "random_bytes")]).to_csv(tmp_path / "ds" / "bad.csv",
                                                                  index=False)
    with pytest.raises(DataError, match=r"none of the 2 record\(s\) gave a face.*unreadable: 2"):
        open_dataset("csv", tmp_path / "ds" / "bad.csv", 16, cache_dir=tmp_path / "c",
                     progress=False)


def test_hostile_labels_are_skipped_and_counted(tmp_path, hostile):
    root = tmp_path / "ds"
    hostile.write_png(root / "a.png")
    labels = [("0.1", "0.2", None), ("nan", "0.2", "label_missing"), ("NaN", "0", "label_missing"),
              ("", "0.2", "label_missing"), ("None", "0", "label_missing"),
              ("inf", "0", "label_infinite"), ("-inf", "0", "label_infinite"),
              ("1e400", "0", "label_infinite"), ("-5", "0.3", "label_-5"),
              (" -5.0 ", "0.3", "label_-5"), ("0.3", "-5", "label_-5"),
              ("1.5", "0", "label_out_of_range"), ("0", "-1.01", "label_out_of_range"),
              ("1", "-1", None)]
    lines = ["path,identity,valence,arousal"] + [f"a.png,p,{v},{a}" for v, a, _ in labels]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    rr = read_dataset("csv", root)
    expected = pd.Series([r for _, _, r in labels if r]).value_counts().to_dict()
    assert dict(rr.skipped.counts) == expected
    np.testing.assert_allclose(rr.records[["valence", "arousal"]].to_numpy(), [[0.1, 0.2], [1, -1]],
                               rtol=1e-6)


def test_paths_escaping_the_root_are_refused(tmp_path, hostile):
    root = tmp_path / "ds"
    hostile.write_png(root / "a.png")
    secret = hostile.write_png(tmp_path / "secret.png", 2)
    rows = ["a.png", "../secret.png", str(secret), "sub/../../secret.png", "./../ds/../secret.png",
            "a.png\x00.txt", "~/secret.png"]
    lines = ["path,identity,valence,arousal"] + [f"{p},p,0.1,0.1" for p in rows]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rr = read_dataset("csv", root)
    assert rr.skipped.counts["outside_root"] == 4
    assert rr.skipped.counts["bad_path"] == 1  # the NUL byte
    assert rr.skipped.counts["missing_file"] == 1  # a literal "~" folder inside the root
    assert rr.records["path"].tolist() == [str(root / "a.png")]
    assert any("leaves the dataset root" in str(w.message) for w in caught)
    # Without the file check nothing outside the root gets through either.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unchecked = read_dataset("csv", root, check_files=False)
    assert all(p.startswith(str(root) + "/") for p in unchecked.records["path"])


@pytest.mark.parametrize("content, message", [
    (b"", "empty CSV"),
    (b"\xff\xfe\x00\x01garbage", "not a readable CSV"),
    (b"path,identity\nx,y\n", "missing column"),
    (b'path,identity,valence,arousal\n"unterminated,a,0,0\n', "not a readable CSV"),
])
def test_malformed_label_files_are_a_clear_error(tmp_path, content, message):
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_dataset("csv", tmp_path)


def test_a_nul_byte_path_in_an_unchecked_table_is_a_counted_skip(tmp_path, hostile):
    root = tmp_path / "ds"
    hostile.write_png(root / "a.png")
    (root / "labels.csv").write_text("path,identity,valence,arousal\na.png,p,0,0\n"
                                     "a.png\x00x,q,0,0\n")
    cache = open_dataset("csv", root, 16, cache_dir=tmp_path / "c", progress=False,
                         check_files=False)
    assert len(cache) == 1 and cache.skipped.counts["bad_path"] == 1


# --------------------------------------------------------------- issue 16: through hostile hands
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_device_as_root_is_refused_before_reading(tmp_path, capsys):
    with pytest.raises(DataError, match="/dev/zero: not a regular file"):
        read_dataset("csv", "/dev/zero")
    assert main(["train", "--dataset", "csv", "--root", "/dev/zero",
                 "--out", str(tmp_path / "run")]) == 2
    assert "/dev/zero: not a regular file" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_huge_sparse_labels_file_is_refused_before_reading(tmp_path, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    with open(root / "labels.csv", "wb") as fh:  # 1 GiB, no disk blocks used
        fh.truncate(2**30)
    with pytest.raises(DataError, match=r"too large for a label file \(1024 MiB > 256 MiB\).*"
                                        "ELIM_MAX_LABEL_MB"):
        read_dataset("csv", root)
    with pytest.raises(DataError, match="too large"):
        read_numeric_lines(root / "labels.csv", 2)  # the per-video label files of aff-wild(2)
    assert main(["data", "prepare", "--dataset", "csv", "--root", str(root), "--out",
                 str(tmp_path / "c"), "--image-size", "16"]) == 2
    assert "ELIM_MAX_LABEL_MB" in _one_line_error(capsys)


def test_the_label_file_limit_is_set_by_an_environment_variable(tmp_path, monkeypatch, hostile):
    root = tmp_path / "ds"
    hostile.write_png(root / "a.png")
    lines = ["path,identity,valence,arousal"] + [f"a.png,p{i},0.1,0.2" for i in range(100)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")  # about 1.9 KiB
    monkeypatch.setenv("ELIM_MAX_LABEL_MB", "0.001")
    with pytest.raises(DataError, match=r"\(1,\d{3} bytes > 1,048 bytes\)"):
        read_dataset("csv", root)
    monkeypatch.setenv("ELIM_MAX_LABEL_MB", "0.01")
    assert len(read_dataset("csv", root).records) == 100
    monkeypatch.setenv("ELIM_MAX_LABEL_MB", "lots")
    with pytest.raises(DataError, match="ELIM_MAX_LABEL_MB='lots': expected a positive number"):
        read_dataset("csv", root)


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="needs Linux /proc")
def test_a_process_environment_as_labels_file_is_not_echoed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FOO_SECRET", "hunter2-do-not-print")
    assert main(["data", "prepare", "--dataset", "csv", "--root", "/proc/self/environ", "--out",
                 str(tmp_path / "c"), "--image-size", "16"]) == 2
    err = _one_line_error(capsys)
    assert "not a readable CSV" in err and "hunter2" not in err and "FOO_SECRET" not in err
    assert len(err) < 200


def test_a_bad_header_is_quoted_as_a_short_printable_excerpt(tmp_path):
    header = "name,\x1b[31mred\x07," + "x" * 5000 + ",TOKEN=hunter2"
    (tmp_path / "labels.csv").write_text(header + "\n1,2,3,4\n")
    with pytest.raises(DataError) as err:
        read_dataset("csv", tmp_path)
    msg = str(err.value)
    found = msg.split("; found ", 1)[1].split("; need ", 1)[0]
    assert len(found) <= 80 and found.isprintable() and "\x1b" not in msg
    assert found.startswith("name, ?[31mred?, xxx") and found.endswith("…")
    assert "hunter2" not in msg and "missing column(s) path, identity" in msg


def test_tiny_faces_are_skipped_as_too_small(tmp_path, hostile):
    root = tmp_path / "ds"
    for size in (1, 4, 7, 8):
        hostile.write_png(root / f"s{size}.png", size, size)
    hostile.write_png(root / "big.png", 0, 40)
    rows = [f"s{size}.png,p{size},0.1,0.1,,,," for size in (1, 4, 7, 8)]
    rows += ["big.png,q,0.2,0.2,10,10,13,13",      # a 3×3 box on a 40 px photo
             "big.png,q,0.3,0.3,36,36,60,60",      # a 24 px box of which 4×4 lies in the photo
             "big.png,q,0.4,0.4,10,10,30,30"]      # a usable 20 px box
    (root / "labels.csv").write_text("path,identity,valence,arousal,x0,y0,x1,y1\n"
                                     + "\n".join(rows) + "\n")
    cache = open_dataset("csv", root, 16, cache_dir=tmp_path / "c", progress=False)
    assert cache.skipped.counts == {"too_small": 5}
    np.testing.assert_allclose(sorted(cache.table["valence"]), [0.1, 0.4], rtol=1e-6)
    assert any("s1.png" in ex for ex in cache.meta["skipped"]["too_small"]["examples"])


def test_duplicate_rows_are_counted_and_reported(tmp_path, hostile):
    root = tmp_path / "ds"
    hostile.write_png(root / "a.png")
    hostile.write_png(root / "b.png", 1)
    rows = ["a.png,p,0.1,0.2", "b.png,q,0.3,0.4", "a.png,p,0.1,0.2", "./a.png,p,0.1,0.2",
            "b.png,q,-0.5,0.4"]  # two repeats of a.png's row; b.png again with other labels
    (root / "labels.csv").write_text("path,identity,valence,arousal\n" + "\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"2 duplicate row\(s\) skipped.*; 1 row\(s\) repeat "
                                         "an earlier row's face"):
        rr = read_dataset("csv", root)
    assert rr.skipped.counts == {"duplicate_rows": 2}
    assert rr.skipped.examples["duplicate_rows"] == ["row 4: a.png", "row 5: ./a.png"]
    np.testing.assert_allclose(rr.records["valence"], [0.1, 0.3, -0.5], rtol=1e-6)


def _shard_bytes(cache_dir: Path, k: int) -> bytes:
    return (cache_dir / f"shard_{k:05d}.npy").read_bytes()


def _six_faces(root, hostile):
    """A CSV dataset of six distinct PNG faces of three people in ``root``."""
    rows = []
    for i in range(6):
        hostile.write_png(root / f"{i}.png", i)
        rows.append(f"{i}.png,p{i % 3},0.1,0.2")
    (root / "labels.csv").write_text("path,identity,valence,arousal\n" + "\n".join(rows) + "\n")
    return root


def test_a_same_size_corrupted_shard_is_detected_and_rebuilt(tmp_path, hostile):
    root = _six_faces(tmp_path / "ds", hostile)
    rr = read_dataset("csv", root)
    out = tmp_path / "c"
    good = np.asarray(build_cache(rr, out, 16, progress=False, shard_size=4).images)
    original = _shard_bytes(out, 1)
    damaged = bytearray(original)
    damaged[-7] ^= 0xFF  # one face pixel: same size, same header, still a valid .npy
    (out / "shard_00001.npy").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"shard_00001\.npy: shard damaged.*rebuild"):
        FaceCache.load(out)
    rebuilt = build_cache(rr, out, 16, progress=False, shard_size=4)  # the shard is rebuilt
    assert _shard_bytes(out, 1) == original
    np.testing.assert_array_equal(np.asarray(rebuilt.images), good)
    assert FaceCache.load(out).meta["shards"][1]["crc32"]


def test_a_full_disk_during_prepare_is_one_line_and_the_build_resumes(tmp_path, monkeypatch,
                                                                       capsys, hostile):
    root = _six_faces(tmp_path / "ds", hostile)
    monkeypatch.setattr(cache_mod, "default_shard_size", lambda size: 2)
    real_write = cache_mod.atomic_write_bytes
    written: list[str] = []

    def full_disk(path, data):
        if Path(path).name == "shard_00001.npy":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(Path(path).name)
        real_write(path, data)

    monkeypatch.setattr(cache_mod, "atomic_write_bytes", full_disk)
    out = tmp_path / "cache"
    args = ["data", "prepare", "--dataset", "csv", "--root", str(root), "--out", str(out),
            "--image-size", "16", "--json"]
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert f"{out}: cannot write the face cache (No space left on device)" in err
    assert "rerun the same command" in err
    assert sorted(p.name for p in out.iterdir()) == ["shard_00000.done", "shard_00000.npy"]
    with pytest.raises(DataError, match="not an elim face cache|unfinished"):
        FaceCache.load(out)
    monkeypatch.setattr(cache_mod, "atomic_write_bytes", real_write)
    rebuilt: list[int] = []
    real_shard = cache_mod._write_shard
    monkeypatch.setattr(cache_mod, "_write_shard",
                        lambda d, k, *a: rebuilt.append(k) or real_shard(d, k, *a))
    assert main(args) == 0
    assert rebuilt == [1, 2] and len(FaceCache.load(out)) == 6
