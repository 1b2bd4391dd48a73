"""Hostile dataset inputs end as a clear DataError or a counted, reported skip — never a crash."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from elim.data.io import ImageTooLargeError, read_image
from elim.datasets import open_dataset, read_dataset
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
