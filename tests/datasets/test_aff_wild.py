"""Aff-Wild reader: video records, per-frame boxes, label/video length mismatches, splits."""

from __future__ import annotations

import numpy as np
import pytest
from layouts import AWVideo, afew_landmarks, aw_box, aw_label, make_aff_wild, write_pts

from elim.data.crop import box_from_landmarks
from elim.data.records import BOX_COLUMNS, validate_records
from elim.datasets import read_dataset
from elim.datasets.aff_wild import frame_count, parse_box_file, read
from elim.errors import DataError


def _read(root, **kw):
    kw.setdefault("val_fraction", 0.0)
    return read(root, progress=False, **kw)


def _video(df, vid):
    return df[df["identity"] == vid].sort_values("frame")


def test_video_records_with_frames_labels_and_boxes(aw_root):
    res = read_dataset("aff-wild", aw_root, progress=False, val_fraction=0.0)
    df = res.records
    validate_records(df, "aff-wild")
    assert len(df) == 6 + 5 + 4
    assert "split" not in df.columns                    # nothing held out, no test labels
    a = _video(df, "105")
    assert a["frame"].tolist() == list(range(6))
    assert a["path"].str.endswith("105.avi").all()
    for _, row in a.iterrows():
        assert (row["valence"], row["arousal"]) == pytest.approx(aw_label("105", row["frame"]))
        assert tuple(row[list(BOX_COLUMNS)]) == pytest.approx(aw_box(row["frame"]))
    assert not a["detect"].any()
    b = _video(df, "120-30-1280x720")                   # box files for frames 0-2 only
    assert b["detect"].tolist() == [False, False, False, True, True]
    assert np.isnan(b[list(BOX_COLUMNS)].to_numpy()[3:]).all()
    assert _video(df, "200")["detect"].all()           # no box folder: detector
    assert (df["group"] == df["identity"]).all()


def test_test_videos_without_labels_are_counted(aw_root):
    skipped = _read(aw_root).skipped
    assert skipped.counts["video without label files"] == 1
    assert skipped.examples["video without label files"][0].endswith("301.avi")


def test_landmarks_bboxs_spelling_and_zero_based_box_files(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [
        AWVideo("1", 4, boxes=(0, 1), landmarks=(1, 2, 3), box_base=0),
    ], box_dir="bboxs")
    df = _video(_read(root).records, "1")
    boxes = df[list(BOX_COLUMNS)].to_numpy()
    assert boxes[0] == pytest.approx(aw_box(0)) and boxes[1] == pytest.approx(aw_box(1))
    lm_box = box_from_landmarks(afew_landmarks(0, 0))
    assert boxes[2] == pytest.approx(lm_box) and boxes[3] == pytest.approx(lm_box)
    # landmarks alone hold no file 0: the numbering must then be given
    only_lm = _video(_read(root, boxes="landmarks", box_index_base=0).records, "1")
    assert only_lm["detect"].tolist() == [True, False, False, False]
    guessed = _video(_read(root, boxes="landmarks").records, "1")
    assert guessed["detect"].tolist() == [False, False, False, True]
    assert _read(root, boxes="detect").records["detect"].all()
    forced = _video(_read(root, boxes="bboxes", box_index_base=1).records, "1")
    assert forced[list(BOX_COLUMNS)].to_numpy()[0] == pytest.approx(aw_box(1))
    with pytest.raises(DataError, match="boxes must be one of"):
        _read(root, boxes="mtcnn")


def test_doubled_train_folder_from_archives(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("7", 3, boxes=(0, 1, 2))])
    inner = root / "bboxes" / "train" / "train"
    inner.mkdir()
    (root / "bboxes" / "train" / "7").rename(inner / "7")
    videos = root / "videos" / "train" / "train"
    videos.mkdir()
    (root / "videos" / "train" / "7.avi").rename(videos / "7.avi")
    df = _read(root).records
    assert len(df) == 3 and not df["detect"].any()


@pytest.mark.parametrize(
    "n_frames, n_valence, n_arousal, expect",
    [
        (6, 6, 4, {"valence and arousal files differ in length": 2}),
        (4, 6, 6, {"label line beyond the video's last frame": 2}),
        (6, 4, 4, {"video frame without a label line": 2}),
        (5, 7, 3, {"label line beyond the video's last frame": 2,
                   "valence and arousal files differ in length": 2}),
        (8, 5, 3, {"video frame without a label line": 3,
                   "valence and arousal files differ in length": 2}),
    ],
)
def test_length_mismatches_use_the_common_prefix(tmp_path, n_frames, n_valence, n_arousal,
                                                 expect):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("9", n_frames, n_valence, n_arousal)])
    res = _read(root)
    n = min(n_frames, n_valence, n_arousal)
    assert res.records["frame"].tolist() == list(range(n))
    assert dict(res.skipped.counts) == expect
    # every position of the longest of the three is used or counted
    assert n + res.skipped.total == max(n_frames, n_valence, n_arousal)


def test_frame_count_reads_the_container(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("3", 7)])
    assert frame_count(root / "videos" / "train" / "3.avi") == 7
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    assert frame_count(bad) is None


def test_unreadable_video_skips_its_labels(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("1", 3), AWVideo("2", 4)])
    (root / "videos" / "train" / "2.avi").write_bytes(b"broken")
    res = _read(root)
    assert set(res.records["identity"]) == {"1"}
    assert res.skipped.counts["unreadable video (all its labels skipped)"] == 4
    assert len(_read(root, check_frame_count=False).records) == 7


def test_bad_label_lines_and_box_files_are_counted(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("1", 5, boxes=range(5))])
    val = root / "annotations" / "train" / "valence" / "1.txt"
    lines = val.read_text().splitlines()
    lines[1], lines[2] = "nan?", "1.7"
    val.write_text("\n".join(lines) + "\n")
    (root / "bboxes" / "train" / "1" / "4.pts").write_text("version: 1\nn_points: 4\n{\n1 2\n}\n")
    res = _read(root)
    assert res.records["frame"].tolist() == [0, 4]
    assert res.skipped.counts["unparseable label line"] == 1
    assert res.skipped.counts["valence/arousal outside [-1, 1]"] == 1
    assert res.skipped.counts["malformed box/landmark file"] == 1   # frame 3 (file 4.pts)


def test_missing_partner_label_file_is_counted(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("1", 3), AWVideo("2", 3)])
    (root / "annotations" / "train" / "arousal" / "2.txt").unlink()
    res = _read(root)
    assert set(res.records["identity"]) == {"1"}
    assert res.skipped.counts["valence file without an arousal file"] == 1
    assert res.skipped.counts["video without label files"] == 1


def test_frame_step(aw_root):
    res = _read(aw_root, frame_step=2)
    assert _video(res.records, "105")["frame"].tolist() == [0, 2, 4]
    assert res.skipped.counts["not sampled (frame_step=2)"] == 3 + 2 + 2


def test_validation_videos_are_held_out_whole(tmp_path):
    pytest.importorskip("elim.data.splits")
    root = make_aff_wild(tmp_path / "aw", [AWVideo(str(i), 2) for i in range(10)])
    df = read(root, progress=False, val_fraction=0.3, seed=1).records
    per_video = df.groupby("identity")["split"].nunique()
    assert (per_video == 1).all()
    val = set(df.loc[df["split"] == "val", "identity"])
    assert len(val) == 3                               # equal-length videos: 30 % of them
    assert read(root, progress=False).records["split"].value_counts()["val"] == 2 * 2
    again = read(root, progress=False, val_fraction=0.3, seed=1).records
    assert set(again.loc[again["split"] == "val", "identity"]) == val
    with pytest.raises(DataError, match="val_fraction"):
        read(root, progress=False, val_fraction=1.0)


def test_labelled_test_videos_keep_their_split(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("1", 3), AWVideo("2", 3, split="test")])
    df = _read(root).records
    assert df.groupby("identity")["split"].first().to_dict() == {"1": "train", "2": "test"}


def test_parse_box_file_formats(tmp_path):
    p = tmp_path / "a.pts"
    write_pts(p, [(3, 4), (3, 20), (30, 20), (30, 4)])
    assert parse_box_file(p) == (3.0, 4.0, 30.0, 20.0)
    p.write_text("5 6 25 30\n")
    assert parse_box_file(p) == (5.0, 6.0, 25.0, 30.0)
    write_pts(p, afew_landmarks(0, 0))
    assert parse_box_file(p) == pytest.approx(box_from_landmarks(afew_landmarks(0, 0)))
    for bad in ("", "1 2 3\n", "version: 1\n{\na b\n}\n", "5 6 2 30\n"):
        p.write_text(bad)
        assert parse_box_file(p) is None


def test_unknown_layout_names_the_folder(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(DataError, match=r"no video with valence and arousal files.*annotations"):
        _read(tmp_path)
