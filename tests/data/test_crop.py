"""Square face crops: geometry, padding outside the image, resizing."""

from __future__ import annotations

import numpy as np
import pytest

from elim.data.crop import box_from_landmarks, crop_face, square_box


def test_square_box_keeps_centre_and_uses_the_longer_side():
    x0, y0, x1, y1 = square_box((10, 20, 30, 60), margin=0.0)  # w 20, h 40, centre (20, 40)
    assert (x1 - x0, y1 - y0) == (40, 40)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (20, 40)
    x0, _, x1, _ = square_box((10, 20, 30, 60), margin=0.25)
    assert x1 - x0 == pytest.approx(50)


def test_square_box_rejects_empty_boxes():
    with pytest.raises(ValueError):
        square_box((5, 5, 5, 9))


def test_box_from_landmarks_covers_all_points_and_ignores_nan():
    pts = np.array([[3, 4], [10, 2], [7, 9], [np.nan, 100]])
    assert box_from_landmarks(pts) == (3.0, 2.0, 11.0, 10.0)
    with pytest.raises(ValueError):
        box_from_landmarks([[np.nan, np.nan]])


def test_crop_inside_the_image_is_an_exact_copy_when_sizes_match():
    img = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    out = crop_face(img, (10, 5, 30, 25), size=20, margin=0.0)
    np.testing.assert_array_equal(out, img[5:25, 10:30])


def test_margin_enlarges_the_crop_around_the_centre():
    img = np.random.default_rng(1).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    out = crop_face(img, (30, 30, 50, 50), size=30, margin=0.5)  # side 30 centred on (40, 40)
    np.testing.assert_array_equal(out, img[25:55, 25:55])


def test_outside_pixels_replicate_the_edge():
    img = np.zeros((10, 10, 3), np.uint8)
    img[0, :, :] = 200  # top row
    img[:, 0, :] = 100  # left column (corner is 100)
    out = crop_face(img, (-4, -4, 6, 6), size=10, margin=0.0)
    assert out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out[:4, 5:], np.full((4, 5, 3), 200))  # above: top row repeated
    np.testing.assert_array_equal(out[:4, :5], np.full((4, 5, 3), 100))  # corner and left column
    np.testing.assert_array_equal(out[4:, :4], np.full((6, 4, 3), 100))  # left: left column repeated
    np.testing.assert_array_equal(out[4:, 4:], img[:6, :6])


def test_whole_image_is_centre_cropped_to_a_square():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255  # the centred 20×20 square
    out = crop_face(img, None, size=20, margin=0.9)  # margin does not apply without a box
    assert (out == 255).all()


@pytest.mark.parametrize("size", [7, 16, 64])
def test_output_is_size_square_uint8_for_shrinking_and_growing(size):
    img = np.random.default_rng(2).integers(0, 256, (33, 21), dtype=np.uint8)  # grayscale input
    out = crop_face(img, (2, 3, 19, 30), size=size, margin=0.1)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


def test_flat_image_stays_flat_after_resizing():
    img = np.full((30, 30, 3), 77, np.uint8)
    assert (crop_face(img, (5, 5, 25, 25), 9, 0.2) == 77).all()
    assert (crop_face(img, (5, 5, 10, 10), 40, 0.2) == 77).all()


def test_box_completely_outside_is_rejected():
    with pytest.raises(ValueError, match="outside"):
        crop_face(np.zeros((10, 10, 3), np.uint8), (20, 20, 30, 30), 8, 0.0)


def test_crop_square_is_the_pixel_square_crop_face_cuts():
    from elim.data.crop import crop_square

    img = np.random.default_rng(2).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    assert crop_square(img.shape, None, 0.5) == (5, 0, 50)  # centred, no margin
    x0, y0, side = crop_square(img.shape, (10.2, 5.4, 30.2, 25.4), 0.0)
    assert (x0, y0, side) == (10, 5, 20)
    np.testing.assert_array_equal(crop_face(img, (10.2, 5.4, 30.2, 25.4), 20, 0.0),
                                  img[y0 : y0 + side, x0 : x0 + side])
