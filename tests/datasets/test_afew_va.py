"""AFEW-VA reader: layout, labels, identities, landmark boxes and counted skips."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from layouts import AfewClip, afew_label, afew_landmarks, edit_afew_json, make_afew_va

from elim.data.crop import box_from_landmarks
from elim.data.records import validate_records
from elim.datasets import read_dataset
from elim.datasets.afew_va import normalise_actor, read
from elim.errors import DataError


def _read(root, **kw):
    return read(root, progress=False, **kw)


def test_records_labels_and_boxes(afew_root):
    res = _read(afew_root)
    df = res.records
    assert len(df) == 4 + 3 + 5 + 2
    assert res.skipped.total == 0
    validate_records(df, "afew-va")                         # contract holds
    assert set(df.columns) >= {"path", "identity", "group", "valence", "arousal",
                               "x0", "y0", "x1", "y1"}
    row = df[df["path"].str.endswith(os.path.join("003", "00002.png"))].iloc[0]
    v, a = afew_label(3, 2)
    assert row["valence"] == pytest.approx(v / 10) and row["arousal"] == pytest.approx(a / 10)
    assert tuple(row[["x0", "y0", "x1", "y1"]]) == pytest.approx(
        box_from_landmarks(afew_landmarks(3, 2)))
    assert df["valence"].abs().max() <= 1.0 and df["arousal"].abs().max() <= 1.0
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in df["path"])
    assert res.source == str(afew_root.resolve())


def test_identity_clip_or_actor_and_group_is_actor(afew_root):
    by_clip = _read(afew_root).records
    assert sorted(by_clip["identity"].unique()) == ["001", "002", "003", "004"]
    # group is the normalised actor: "Tom Hanks" and "tom_hanks" are one person
    groups = by_clip.groupby("identity")["group"].first().to_dict()
    assert groups["001"] == groups["002"] == "tom hanks"
    assert groups["003"] == "meryl streep"
    by_actor = _read(afew_root, identity="actor").records
    assert sorted(by_actor["identity"].unique()) == ["denzel washington", "meryl streep",
                                                     "tom hanks"]
    assert (by_actor["identity"] == by_actor["group"]).all()
    with pytest.raises(DataError, match="identity must be one of"):
        _read(afew_root, identity="face")


def test_normalise_actor():
    assert normalise_actor("  Tom_Hanks ") == normalise_actor("tom   hanks") == "tom hanks"


def test_group_kfold_never_splits_an_actor(afew_root):
    splits = pytest.importorskip("elim.data.splits")
    df = _read(afew_root).records
    groups = df["group"].to_numpy()
    folds = splits.group_kfold(groups, 3, 0)
    assert len(folds) == 3
    covered = np.concatenate([test for _, test in folds])
    assert sorted(covered.tolist()) == list(range(len(df)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def test_zip_part_nesting_and_registry(tmp_path):
    root = make_afew_va(tmp_path / "afew", [
        AfewClip(1, "A", 2, part="AFEW-VA_part1"), AfewClip(2, "B", 3, part="AFEW-VA_part2"),
        AfewClip(3, "C", 2),
    ])
    res = read_dataset("afew-va", root, progress=False)
    assert sorted(res.records["identity"].unique()) == ["001", "002", "003"]
    assert len(res.records) == 7


def test_duplicate_clip_across_parts_is_an_error(tmp_path):
    root = make_afew_va(tmp_path / "afew", [AfewClip(1, "A", 2, part="p1"),
                                            AfewClip(1, "A", 2, part="p2")])
    with pytest.raises(DataError, match="more than once"):
        _read(root)


def test_missing_images_and_unlisted_images_are_counted(afew_root):
    (afew_root / "001" / "00001.png").unlink()
    (afew_root / "003" / "00000.png").unlink()
    import shutil

    shutil.copy(afew_root / "004" / "00000.png", afew_root / "004" / "00099.png")
    res = _read(afew_root)
    assert len(res.records) == 14 - 2
    assert res.skipped.counts["frame in JSON without an image"] == 2
    assert res.skipped.counts["image without a JSON entry"] == 1
    assert res.skipped.examples["image without a JSON entry"][0].endswith("00099.png")


def test_bad_landmarks_and_labels_are_counted(afew_root):
    def edit(meta):
        f = meta["frames"]
        f["00000"]["landmarks"] = [[1.0, 2.0, 3.0]] * 68        # wrong shape
        f["00001"]["landmarks"] = "n/a"
        f["00002"]["valence"] = 11                              # outside [-10, 10]
        f["00003"]["arousal"] = None
        f["00004"]["landmarks"] = [[5.0, 5.0]] * 68             # no area

    edit_afew_json(afew_root, "003", edit)
    res = _read(afew_root)
    assert len(res.records) == 9
    assert res.skipped.counts["missing or malformed landmarks"] == 3
    assert res.skipped.counts["valence/arousal outside [-10, 10]"] == 1
    assert res.skipped.counts["missing or non-numeric valence/arousal"] == 1
    assert res.skipped.total == 5
    assert "003.json#00002" in res.skipped.examples["valence/arousal outside [-10, 10]"][0]


def test_corrupt_json_skips_the_clip_with_a_warning(afew_root):
    bad = afew_root / "002" / "002.json"
    bad.write_text('{"actor": "x", "frames": {', encoding="utf-8")
    with pytest.warns(UserWarning, match="002.json"):
        res = _read(afew_root)
    assert "002" not in set(res.records["identity"])
    assert len(res.records) == 11
    reason = "clip with unreadable JSON (whole clip skipped)"
    assert res.skipped.counts[reason] == 1
    assert res.skipped.examples[reason] == [str(bad)]
    # its frames are not also reported as unlisted images
    assert "image without a JSON entry" not in res.skipped.counts


def test_json_without_frames_is_a_corrupt_clip(afew_root):
    (afew_root / "004" / "004.json").write_text(json.dumps({"actor": "x"}), encoding="utf-8")
    with pytest.warns(UserWarning):
        res = _read(afew_root)
    assert res.skipped.counts["clip with unreadable JSON (whole clip skipped)"] == 1


def test_clip_folder_without_json_is_counted(afew_root):
    (afew_root / "004" / "004.json").unlink()
    res = _read(afew_root)
    assert res.skipped.counts["clip folder without its NNN.json (whole clip skipped)"] == 1
    assert "004" not in set(res.records["identity"])


def test_frame_step(afew_root):
    res = _read(afew_root, frame_step=2)
    kept = sorted(int(p[-9:-4]) for p in res.records["path"])
    assert set(kept) == {0, 2, 4}
    assert len(res.records) == 2 + 2 + 3 + 1
    assert res.skipped.counts["not sampled (frame_step=2)"] == 14 - 8
    with pytest.raises(DataError, match="frame_step"):
        _read(afew_root, frame_step=0)


def test_unknown_layout_names_the_folder(tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(DataError, match=r"no clip folder.*frames.*NNN\.json"):
        _read(tmp_path / "frames")
    with pytest.raises(DataError, match="not a directory"):
        _read(tmp_path / "absent")
    with pytest.raises(DataError, match="--root is required"):
        _read(None)
