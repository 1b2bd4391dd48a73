"""Frame streams and input collection."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from elim.errors import DataError
from elim.inference.inputs import collect_inputs
from elim.inference.stream import batched, iter_frames


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    from elim.benchmarks.predict import make_face_video

    face = np.random.default_rng(1).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    return make_face_video(tmp_path_factory.mktemp("v") / "clip.avi", [face], 10, size=(80, 60), fps=20)


def test_file_frames_every_and_max(small_video):
    frames = list(iter_frames(small_video, every=3))
    assert [f.index for f in frames] == [0, 3, 6, 9]
    np.testing.assert_allclose([f.timestamp for f in frames], [0, 0.15, 0.3, 0.45])
    assert frames[0].image.shape == (60, 80, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in iter_frames(small_video, max_frames=2)] == [0, 1]


def test_endless_iterables_are_read_lazily():
    frames = iter_frames(itertools.repeat(np.zeros((4, 4, 3), np.uint8)), every=2, max_frames=3)
    assert [f.index for f in frames] == [0, 2, 4]


def test_unopenable_sources(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(DataError, match="empty"):
        next(iter_frames(empty))
    with pytest.raises(DataError, match="webcam 97"):
        next(iter_frames(97))


def test_batched():
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        list(batched([], 0))


def test_collect_inputs(tmp_path, small_video):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.PNG", "notes.txt", "sub/c.jpg"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    items = collect_inputs([str(folder), small_video, "3", tmp_path / "nope.jpg", tmp_path / "empty"])
    assert [(i.kind, Path(str(i.source)).name) for i in items] == [
        ("image", "a.PNG"), ("image", "b.jpg"), ("video", "clip.avi"),
        ("webcam", "3"), ("error", "nope.jpg"), ("error", "empty"),
    ]
    assert "not found" in items[4].message and "no images or videos" in items[5].message
    assert [Path(i.source).name for i in collect_inputs([folder], recursive=True)] == ["a.PNG", "b.jpg", "c.jpg"]
    (only_sub := tmp_path / "nested" / "inner").mkdir(parents=True)
    (only_sub / "x.jpg").write_bytes(b"x")
    (item,) = collect_inputs([tmp_path / "nested"])
    assert item.kind == "error" and "--recursive" in item.message


def test_folders_find_images_by_content_and_follow_file_links(tmp_path):
    """GIF data without an image suffix, upper-case suffixes, links to files inside and outside
    the folder (followed), a dangling link (an error input), linked folders (not entered)."""
    from elim.deps import Image

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    face = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    face.save(outside / "far.png")
    folder = tmp_path / "set"
    (folder / "sub").mkdir(parents=True)
    face.save(folder / "subject01.happy", format="GIF")
    face.save(folder / "subject01.sad", format="GIF")
    face.save(folder / "UPPER.JPEG", format="JPEG")
    (folder / "readme").write_text("not an image")
    (folder / "inside-link.gif").symlink_to(folder / "subject01.sad")
    (folder / "outside-link").symlink_to(outside / "far.png")
    (folder / "dangling.png").symlink_to(tmp_path / "gone.png")
    (folder / "sub" / "deep.happy").symlink_to(folder / "subject01.happy")
    (folder / "sub" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    items = collect_inputs([folder])
    assert [(i.kind, Path(i.source).name) for i in items] == [
        ("image", "UPPER.JPEG"), ("error", "dangling.png"), ("image", "inside-link.gif"),
        ("image", "outside-link"), ("image", "subject01.happy"), ("image", "subject01.sad"),
    ]
    assert "broken symbolic link" in items[1].message
    deep = [Path(i.source).relative_to(folder).as_posix() for i in collect_inputs([folder], recursive=True)]
    assert deep == ["UPPER.JPEG", "dangling.png", "inside-link.gif", "outside-link",
                    "sub/deep.happy", "subject01.happy", "subject01.sad"]


def test_out_of_range_webcams_are_error_inputs():
    items = collect_inputs([-1, 99999999999, "5"])
    assert [i.kind for i in items] == ["error", "error", "webcam"]
    assert "webcam -1: not a webcam index" in items[0].message
    assert "webcam 99999999999" in items[1].message and items[1].name == "webcam:99999999999"
