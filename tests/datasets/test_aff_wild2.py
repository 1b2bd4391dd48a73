"""Aff-Wild2 reader: annotation search, frame alignment, -5 and missing images, splits."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from layouts import AW2Video, aw2_label, make_aff_wild2

from elim.data.records import BOX_COLUMNS, validate_records
from elim.datasets import read_dataset
from elim.datasets.aff_wild2 import read
from elim.datasets.files import read_numeric_lines
from elim.errors import DataError


def _read(root, **kw):
    return read(root, progress=False, **kw)


def _frame_number(path: str) -> int:
    return int(os.path.splitext(os.path.basename(path))[0])


def test_records_align_line_k_with_frame_k(aw2_root):
    res = read_dataset("aff-wild2", aw2_root, progress=False)
    df = res.records
    validate_records(df, "aff-wild2")
    # video1: 6 frames - no image (2) - ignored (5); left: 4; right: 4 - 2 ignored; video3: 5 - 1
    assert len(df) == 4 + 4 + 2 + 4
    for _, row in df.iterrows():
        k = _frame_number(row["path"])
        v, a = aw2_label(row["identity"], k)
        assert (row["valence"], row["arousal"]) == pytest.approx((v, a), abs=1e-6)
        assert os.path.basename(os.path.dirname(row["path"])) == row["identity"]
        assert os.path.basename(row["path"]) == f"{k:05d}.jpg"
    assert not set(BOX_COLUMNS) & set(df.columns)            # already cropped and aligned


def test_ignored_and_missing_frames_are_counted_separately(aw2_root):
    skipped = _read(aw2_root).skipped
    assert skipped.counts["annotation -5 (frame to ignore)"] == 1 + 2
    assert skipped.counts["frame without an image (no face)"] == 1 + 1
    assert skipped.total == 5
    example = skipped.examples["frame without an image (no face)"][0]
    assert example.endswith(os.path.join("video1", "00002.jpg"))


def test_left_right_videos_are_separate_identities(aw2_root):
    df = _read(aw2_root).records
    assert sorted(df["identity"].unique()) == ["video1", "video2_left", "video2_right", "video3"]
    right = df[df["identity"] == "video2_right"]
    assert sorted(_frame_number(p) for p in right["path"]) == [3, 4]
    assert (df["group"] == df["identity"]).all()


def test_official_splits(aw2_root):
    df = _read(aw2_root).records
    assert df.groupby("identity")["split"].first().to_dict() == {
        "video1": "train", "video2_left": "train", "video2_right": "train", "video3": "val"}
    only_val = _read(aw2_root, splits=["val"]).records
    assert set(only_val["identity"]) == {"video3"}
    with pytest.raises(DataError, match="unknown split"):
        _read(aw2_root, splits=["dev"])


@pytest.mark.parametrize("parent", ["Annotations", "ABAW/Third ABAW Annotations/annotations", "."])
def test_annotation_folder_found_at_any_depth(tmp_path, parent):
    root = make_aff_wild2(tmp_path / "aw2", [AW2Video("a", "Train_Set", 3),
                                             AW2Video("b", "Validation_Set", 2)],
                          annotation_parent=parent, images_parent="images")
    df = _read(root).records
    assert len(df) == 5 and set(df["split"]) == {"train", "val"}


def test_two_annotation_folders_need_a_choice(aw2_root):
    src = next(aw2_root.rglob("VA_Estimation_Challenge"))
    shutil.copytree(src, aw2_root / "copy" / "VA_Estimation_Challenge")
    with pytest.raises(DataError, match="several annotation folders.*annotations_dir"):
        _read(aw2_root)
    df = _read(aw2_root, annotations_dir=src).records
    assert len(df) == 14


def test_images_split_over_several_cropped_aligned_folders(aw2_root):
    extra = aw2_root / "new_vids" / "cropped_aligned_new_50_vids"
    extra.mkdir(parents=True)
    (aw2_root / "cropped_aligned" / "video3").rename(extra / "video3")
    df = _read(aw2_root).records
    assert len(df) == 14 and (df["identity"] == "video3").sum() == 4
    only_first = _read(aw2_root, images_dir=aw2_root / "cropped_aligned")
    assert "video3" not in set(only_first.records["identity"])
    assert only_first.skipped.counts["video without a cropped_aligned folder"] == 5
    shutil.copytree(extra / "video3", aw2_root / "cropped_aligned" / "video3")
    with pytest.raises(DataError, match="two image folders"):
        _read(aw2_root)


def test_missing_video_folder_and_frame_step(tmp_path):
    root = make_aff_wild2(tmp_path / "aw2", [AW2Video("a", "Train_Set", 7),
                                             AW2Video("gone", "Train_Set", 3, has_folder=False)])
    res = _read(root, frame_step=3)
    assert sorted(_frame_number(p) for p in res.records["path"]) == [1, 4, 7]
    assert res.skipped.counts["video without a cropped_aligned folder"] == 1
    assert res.skipped.counts["not sampled (frame_step=3)"] == 4 + 2


def test_bad_lines_are_counted_and_keep_alignment(tmp_path):
    root = make_aff_wild2(tmp_path / "aw2", [AW2Video("a", "Train_Set", 5)])
    ann = next(root.rglob("a.txt"))
    lines = ann.read_text().splitlines()
    lines[2] = "oops"                     # frame 2
    lines[3] = "1.5,0.2"                  # frame 3
    ann.write_text("\n".join(lines) + "\n\n")
    res = _read(root)
    assert sorted(_frame_number(p) for p in res.records["path"]) == [1, 4, 5]
    assert res.skipped.counts["unparseable annotation line"] == 1
    assert res.skipped.counts["valence/arousal outside [-1, 1]"] == 1


def test_read_numeric_lines_header_detection(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("valence,arousal\n0.1,0.2\n-5,-5\n")
    assert read_numeric_lines(path, 2).tolist() == [[0.1, 0.2], [-5.0, -5.0]]
    path.write_text("0.1,0.2\n0.3 , 0.4\n")
    assert read_numeric_lines(path, 2).tolist() == [[0.1, 0.2], [0.3, 0.4]]
    path.write_text("0.1,0.2,0.3\n0.5,0.6\n")
    values = read_numeric_lines(path, 2, header=False)
    assert np.isnan(values[0]).all() and values[1].tolist() == [0.5, 0.6]
    path.write_text("0.1,0.2\n\n0.5,0.6\n\n")           # inner blank line keeps its row
    values = read_numeric_lines(path, 2, header=False)
    assert values.shape == (3, 2) and np.isnan(values[1]).all()


def test_layout_errors_name_the_folder(tmp_path):
    (tmp_path / "cropped_aligned").mkdir()
    with pytest.raises(DataError, match="no VA_Estimation_Challenge folder.*cropped_aligned"):
        _read(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no cropped_aligned folder under .*empty"):
        _read(empty)
