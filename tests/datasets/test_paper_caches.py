"""The paper's readers feed the face cache and the ``elim data prepare`` command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from layouts import AfewClip, AWVideo, make_afew_va, make_aff_wild

from elim.cli import main
from elim.data.cache import FaceCache, build_cache
from elim.data.crop import crop_face
from elim.data.io import read_image, read_video_frames
from elim.datasets import open_dataset, read_dataset

SIZE = 32
MARGIN = 0.25


def test_afew_va_cache_crops_the_landmark_box(afew_root, tmp_path):
    res = read_dataset("afew-va", afew_root, progress=False)
    cache = build_cache(res, tmp_path / "cache", SIZE, MARGIN, progress=False, dataset="afew-va")
    assert len(cache) == len(res.records) == 14
    assert cache.images.shape == (14, SIZE, SIZE, 3)
    row = cache.table.iloc[5]
    box = tuple(row[["x0", "y0", "x1", "y1"]])
    expected = crop_face(read_image(row["path"]), box, SIZE, MARGIN)
    np.testing.assert_array_equal(np.asarray(cache.images[5]), expected)
    assert set(cache.table["group"]) == {"tom hanks", "meryl streep", "denzel washington"}


def test_aff_wild2_cache_keeps_splits(aw2_root, tmp_path):
    cache = open_dataset("aff-wild2", aw2_root, SIZE, cache_dir=tmp_path / "caches",
                         progress=False)
    assert len(cache) == 14
    assert set(cache.table["split"]) == {"train", "val"}
    first = cache.table.iloc[0]
    np.testing.assert_array_equal(np.asarray(cache.images[0]),
                                  crop_face(read_image(first["path"]), None, SIZE, MARGIN))
    again = open_dataset("aff-wild2", aw2_root, SIZE, cache_dir=tmp_path / "caches",
                         progress=False)
    assert again.path == cache.path                      # reused, not rebuilt


def test_aff_wild_cache_decodes_video_frames_with_their_boxes(tmp_path):
    root = make_aff_wild(tmp_path / "aw", [AWVideo("5", 5, boxes=range(5)),
                                           AWVideo("6", 3, boxes=range(3))])
    res = read_dataset("aff-wild", root, progress=False, val_fraction=0.0)
    cache = build_cache(res, tmp_path / "cache", SIZE, MARGIN, progress=False)
    assert len(cache) == 8
    rows = cache.table[cache.table["identity"] == "5"].sort_values("frame")
    frames = dict(read_video_frames(rows["path"].iloc[0], [3]))
    row = rows[rows["frame"] == 3].iloc[0]
    expected = crop_face(frames[3], tuple(row[["x0", "y0", "x1", "y1"]]), SIZE, MARGIN)
    np.testing.assert_array_equal(np.asarray(cache.images[row.name]), expected)


def test_data_prepare_command(tmp_path, capsys):
    root = make_afew_va(tmp_path / "afew", [AfewClip(1, "A", 3), AfewClip(2, "B", 2)])
    out = tmp_path / "cache"
    code = main(["data", "prepare", "--dataset", "afew-va", "--root", str(root), "--out", str(out),
                 "--image-size", str(SIZE), "-o", "identity=actor", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 5 and summary["identities"] == 2
    cache = FaceCache.load(out)
    assert sorted(cache.identities) == ["a", "b"]


def test_data_prepare_reports_a_bad_root(tmp_path, capsys):
    code = main(["data", "prepare", "--dataset", "afew-va", "--root", str(tmp_path),
                 "--out", str(tmp_path / "c"), "--image-size", str(SIZE)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no clip folder" in err and str(tmp_path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["afew-va", "aff-wild", "aff-wild2"])
def test_registered(name):
    from elim.datasets import get_reader

    assert callable(get_reader(name))


def test_cv_on_afew_va_folds_by_actor(tmp_path):
    """``elim cv`` on AFEW-VA: clips are the identities, folds never split an actor."""
    root = make_afew_va(tmp_path / "afew", [AfewClip(i, f"actor {i % 4}", 6) for i in range(1, 9)])
    out = tmp_path / "cv"
    code = main(["cv", "--dataset", "afew-va", "--root", str(root), "--folds", "2", "--epochs", "1",
                 "--methods", "elim", "--seeds", "0", "--image-size", str(SIZE), "--no-logs",
                 "--cache-dir", str(tmp_path / "caches"), "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads((out / "cv.json").read_text())
    assert summary["n_groups"] == 4 and summary["n_faces"] == 48
    tested = [set(json.loads(p.read_text())["test_groups"])
              for p in sorted((out / "results").glob("*.json"))]
    assert len(tested) == 2 and not tested[0] & tested[1]
    assert tested[0] | tested[1] == {f"actor {i}" for i in range(4)}
