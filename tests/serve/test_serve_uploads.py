"""Uploads are judged by content and size, never by name; nothing names a server path."""

from __future__ import annotations

import numpy as np
import pytest
from serve_support import encode, png_header

from elim.serve.uploads import (
    RequestError,
    check_image,
    decode_image,
    make_upload,
    safe_name,
    sniff,
)


@pytest.mark.parametrize("ext, container", [
    (".jpg", "jpeg"), (".png", "png"), (".bmp", "bmp"), (".tiff", "tiff"), (".webp", "webp"),
    (".ppm", "pnm"),
])
def test_images_are_sniffed_by_content(ext, container):
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    data = encode(image, ext)
    assert sniff(data) == ("image", container)
    upload = make_upload(data, "misleading-name.mp4")  # the name does not count
    assert upload.kind == "image" and upload.name == "misleading-name.mp4"
    decoded = decode_image(upload, 10_000)
    assert decoded.shape == (20, 30, 3) and decoded.dtype == np.uint8


@pytest.mark.parametrize("head, container", [
    (b"\x00\x00\x00\x18ftypisom", "mp4"), (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
    (b"\x1a\x45\xdf\xa3\x01\x00", "matroska"),
])
def test_videos_are_sniffed_by_content(head, container):
    assert sniff(head + b"\x00" * 32) == ("video", container)


def test_unknown_and_empty_uploads_are_refused():
    with pytest.raises(RequestError) as err:
        make_upload(b"%PDF-1.7 not an image", "photo.jpg")
    assert err.value.status == 415 and "photo.jpg" in err.value.message
    with pytest.raises(RequestError) as err:
        make_upload(b"", None)
    assert err.value.status == 400


def test_file_names_are_labels_only():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\face.jpg") == "face.jpg"
    assert safe_name("a\x00b\nc.png") == "abc.png"
    assert safe_name(None) == safe_name("") == safe_name("dir/") == "upload"
    assert len(safe_name("x" * 1000)) == 120


def test_decompression_bomb_is_refused_from_the_header():
    bomb = make_upload(png_header(50_000, 50_000), "bomb.png")  # 2.5 Gpx claimed in 100 bytes
    with pytest.raises(RequestError) as err:
        check_image(bomb, 25_000_000)
    assert err.value.status == 413 and "bomb.png" in err.value.message
    small = make_upload(png_header(4000, 4000), "big.png")
    with pytest.raises(RequestError) as err:
        check_image(small, 1_000_000)
    assert err.value.status == 413 and "4000×4000" in err.value.message


def test_corrupt_images_are_unprocessable(face_jpg):
    with pytest.raises(RequestError) as err:
        decode_image(make_upload(face_jpg[:40], "cut.jpg"), 10**7)
    assert err.value.status == 422 and "cut.jpg" in err.value.message
