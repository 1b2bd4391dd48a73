"""Image and video decoding: channel order, grayscale, and one clear error per bad file."""

from __future__ import annotations

import numpy as np
import pytest

from elim.data.io import is_image_file, is_video, read_image, read_video_frames
from elim.deps import cv2
from elim.errors import DataError


def test_read_image_is_rgb_uint8(tmp_path, helpers):
    rgb = helpers.face_image(1, 20, 12)
    path = helpers.write_rgb(tmp_path / "a.png", rgb)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
    np.testing.assert_array_equal(out, rgb)  # PNG is lossless: exact, and R stays R


def test_grayscale_becomes_three_channels(tmp_path):
    gray = np.arange(6 * 5, dtype=np.uint8).reshape(6, 5) * 7
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_gif_and_palette_images_are_decoded_with_pillow(tmp_path, helpers):
    """OpenCV cannot decode GIF: read_image falls back to Pillow (first frame, RGB)."""
    from elim.deps import Image

    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[:, :6] = (255, 0, 0)
    rgb[:, 6:] = (0, 0, 255)
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1, ::-1].copy())]
    frames[0].save(tmp_path / "subject01.happy", format="GIF", save_all=True,
                   append_images=frames[1:])  # no image suffix, two frames
    out = read_image(tmp_path / "subject01.happy")
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.gif")
    assert read_image(tmp_path / "gray.gif").shape == (10, 12, 3)


def test_images_are_recognised_by_suffix_or_content(tmp_path, helpers):
    from elim.deps import Image

    image = helpers.face_image(0, 16, 16)
    Image.fromarray(image).save(tmp_path / "subject01.happy", format="GIF")
    Image.fromarray(image).save(tmp_path / "NOSUFFIX", format="PNG")
    helpers.write_rgb(tmp_path / "UPPER.JPG", image)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "clip.MP4").write_bytes(b"\0" * 10)
    assert is_image_file(tmp_path / "subject01.happy") and is_image_file(tmp_path / "NOSUFFIX")
    assert is_image_file(tmp_path / "UPPER.JPG") and is_video(tmp_path / "clip.MP4")
    assert not is_image_file(tmp_path / "notes.txt") and not is_image_file(tmp_path / "clip.MP4")
    assert read_image(tmp_path / "NOSUFFIX").shape == (16, 16, 3)


@pytest.mark.parametrize("kind", ["missing", "zero", "corrupt", "text", "folder"])
def test_bad_files_raise_data_error_naming_the_file(tmp_path, helpers, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "corrupt":
        good = helpers.write_rgb(tmp_path / "good.png", helpers.face_image(0))
        path.write_bytes(good.read_bytes()[:60])  # truncated PNG
    elif kind == "text":
        path.write_text("not an image at all\n")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(DataError) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_too_large_images_are_refused(tmp_path, helpers):
    path = helpers.write_rgb(tmp_path / "big.png", helpers.face_image(0, 30, 20))
    with pytest.raises(DataError, match="too large"):
        read_image(path, max_pixels=500)
    assert read_image(path, max_pixels=None).shape == (20, 30, 3)


def test_video_frames_are_decoded_in_one_pass(tmp_path, helpers):
    path = tmp_path / "clip.avi"
    levels = helpers.write_video(path, 6)
    got = list(read_video_frames(path, [4, 1, 1, 9]))
    assert [f for f, _ in got] == [1, 4, 9]
    for frame, image in got[:2]:
        assert image.shape == (40, 48, 3) and image.dtype == np.uint8
        assert abs(float(image.mean()) - levels[frame]) < 4  # MJPG is lossy
    assert got[2][1] is None  # past the end
    assert is_video(path) and not is_video(tmp_path / "x.png")


def test_unopenable_video_raises(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(DataError, match="bad.mp4"):
        list(read_video_frames(path, [0]))


def test_video_reader_continues_across_calls(tmp_path, helpers, monkeypatch):
    import elim.data.io as io_mod

    path = tmp_path / "clip.avi"
    levels = helpers.write_video(path, 8)
    opened = []
    real = io_mod.cv2.VideoCapture
    monkeypatch.setattr(io_mod.cv2, "VideoCapture", lambda p: opened.append(p) or real(p))
    reader = io_mod.VideoReader(path)
    first = list(reader.frames([1, 2]))
    second = list(reader.frames([5, 6]))  # continues: no reopening
    assert len(opened) == 1
    back = list(reader.frames([0]))  # earlier frame: reopens
    assert len(opened) == 2
    reader.close()
    for frame, image in first + second + back:
        assert abs(float(image.mean()) - levels[frame]) < 4


def test_one_decoder_streams_frames_with_index_and_timestamp(tmp_path, helpers):
    """The decoder inference uses: every-th frame, its index, index / fps (10 fps here)."""
    from elim.data.io import VideoReader, stream_video

    path = tmp_path / "clip.avi"
    levels = helpers.write_video(path, 7)
    reader = VideoReader(path)
    assert reader.name == str(path) and reader.size == (48, 40) and reader.fps == pytest.approx(10)
    frames = list(reader.stream(every=3))
    assert [f.index for f in frames] == [0, 3, 6]
    np.testing.assert_allclose([f.timestamp for f in frames], [0.0, 0.3, 0.6])
    for f in frames:
        assert f.image.shape == (40, 48, 3) and abs(float(f.image.mean()) - levels[f.index]) < 4
    assert [f for f, _ in reader.frames([1])] == [1]  # chosen frames: reopens from the start
    assert [f.index for f in reader.stream(max_frames=2)] == [0, 1]  # a new stream restarts
    reader.close()
    assert [f.index for f in stream_video(path, every=2, max_frames=3)] == [0, 2, 4]
    with pytest.raises(DataError, match="not found"):
        next(stream_video(tmp_path / "absent.avi"))


def test_webcam_sources(monkeypatch):
    """Webcams by index: clear errors, frames stamped with wall-clock seconds (a fake camera)."""
    import elim.data.io as io_mod
    from elim.data.io import VideoReader, stream_video

    with pytest.raises(DataError, match="webcam 97: cannot open it"):
        next(stream_video(97))
    with pytest.raises(DataError, match="webcam -1: not a webcam index"):
        VideoReader(-1)
    with pytest.raises(DataError, match="webcam 99999999999: not a webcam index"):
        VideoReader(99999999999)  # OpenCV would raise its own error (a C int overflows)

    class FakeCamera:
        def __init__(self, index):
            self.index, self.shown = index, 0

        def isOpened(self):
            return self.index == 3

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 6, cv2.CAP_PROP_FPS: 25}.get(prop, 0)

        def grab(self):
            self.shown += 1
            return True

        def read(self):
            self.shown += 1
            return True, np.full((6, 8, 3), self.shown, np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(io_mod.cv2, "VideoCapture", FakeCamera)
    reader = VideoReader(3)
    assert reader.webcam and reader.name == "webcam:3" and reader.fps is None and reader.size == (8, 6)
    frames = list(reader.stream(every=2, max_frames=3))
    assert [f.index for f in frames] == [0, 2, 4]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 3, 5]  # skipped frames grabbed only
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and stamps[0] >= 0
    with pytest.raises(DataError, match="webcam 4"):
        VideoReader(4)
