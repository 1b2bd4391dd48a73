"""The face contract: measured on training crops, replayed on full photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elim.data.cache import FaceCache
from elim.data.crop import crop_face, crop_square
from elim.data.face_contract import (
    FaceContract,
    FaceTemplate,
    View,
    contract_of_cache,
    face_colour,
    measure_template,
    similarity,
    to_gray,
    warp_face,
    window_from_box,
)
from elim.errors import CheckpointError, DataError, ElimError

LONDON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "london_faces"
TEMPLATE = FaceTemplate((0.2, 0.1, 0.8, 0.9),
                        ((0.35, 0.4), (0.65, 0.4), (0.5, 0.55), (0.38, 0.72), (0.62, 0.72)))
#: how the CK+-like training crops below frame the detector's box (crop-relative): tight, the
#: chin at the bottom edge, nothing like a margin around the box ...
CK_LIKE = (0.10, 0.05, 0.90, 1.03)
#: ... or the eyes and the nose tip (crop-relative), where CK+48 crops have them
CK_EYES_NOSE = ((0.325, 0.39), (0.683, 0.385), (0.514, 0.573))


def _noise(h=80, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cache(images, boxes=None):
    table = pd.DataFrame({"identity": [f"p{i % 5}" for i in range(len(images))],
                          "valence": 0.0, "arousal": 0.0})
    if boxes is not None:
        for j, col in enumerate(("x0", "y0", "x1", "y1")):
            table[col] = [b[j] if b is not None else np.nan for b in boxes]
    return FaceCache.from_arrays(np.asarray(images), table)


class StubViewer:
    """Sees the same face (crop-relative) in every crop; counts the crops."""

    available = True

    def __init__(self, view):
        self.view, self.calls = view, 0

    def __call__(self, crop):
        self.calls += 1
        return self.view


def test_similarity_recovers_a_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 0.42, np.array([7.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    np.testing.assert_allclose(similarity(src, dst), np.hstack([scale * rot, shift[:, None]]),
                               atol=1e-12)
    with pytest.raises(ValueError, match="coincide"):
        similarity(np.ones((5, 2)), dst)


def test_window_from_box_puts_the_box_where_the_template_has_it():
    window = window_from_box((100, 200, 160, 280), TEMPLATE.box)  # w 60 = 0.6 side, h 80 = 0.8
    x0, y0, x1, y1 = window
    assert x1 - x0 == pytest.approx(100) and y1 - y0 == pytest.approx(100)
    assert ((100 - x0) / 100, (200 - y0) / 100) == pytest.approx((0.2, 0.1))


def test_colour_is_detected_from_the_faces():
    colour = _noise(32, 32)
    gray = to_gray(colour)
    assert face_colour(np.stack([gray] * 20)) == ("gray", 1.0)
    assert face_colour(np.stack([colour] * 20))[0] == "rgb"
    nearly = gray.astype(np.int16)
    nearly[..., 0] += 1  # a grey JPEG decoded as colour: channels one level apart
    assert face_colour(np.stack([np.clip(nearly, 0, 255).astype(np.uint8)] * 20))[0] == "gray"
    mixed = np.stack([gray] * 18 + [colour] * 2)  # 90 % grey: not "nearly every face"
    assert face_colour(mixed) == ("rgb", 0.9)


def test_the_contract_round_trips_and_refuses_what_it_cannot_replay():
    contract = FaceContract(48, 0.0, "gray", "template", False, TEMPLATE, {"sample": 3})
    again = FaceContract.from_dict(contract.to_dict())
    assert again == contract and again.template == TEMPLATE and again.grayscale
    boxed = contract.with_overrides(margin=0.3)
    assert (boxed.mode, boxed.margin, boxed.align, boxed.colour) == ("box", 0.3, False, "gray")
    assert contract.with_overrides(grayscale=False).colour == "rgb"
    with pytest.raises(ElimError, match="needs a template"):
        FaceContract(48, 0.0, mode="template")
    with pytest.raises(ElimError, match="margin must be >= 0"):
        FaceContract(48, -0.1)
    with pytest.raises(CheckpointError, match="runs/x: .*malformed preprocess.face"):
        FaceContract.from_dict({"image_size": 48, "mode": "template"}, "runs/x")


def test_box_geometry_is_the_margin_square_of_crop_face():
    image = _noise()
    box = (10.0, 12.0, 50.0, 60.0)
    contract = FaceContract(32, 0.25)
    np.testing.assert_array_equal(contract.cut(image, box), crop_face(image, box, 32, 0.25))
    gray = FaceContract(32, 0.25, "gray").cut(image, box)
    np.testing.assert_array_equal(gray, to_gray(crop_face(image, box, 32, 0.25)))
    np.testing.assert_array_equal(contract.cut(image, None), crop_face(image, None, 32))


def test_template_geometry_refines_the_window_with_the_box_seen_in_it():
    image = _noise(200, 200)
    box = (60.0, 50.0, 120.0, 130.0)
    contract = FaceContract(40, 0.0, "rgb", "template", False, TEMPLATE)
    first = window_from_box(box, TEMPLATE.box)
    # the viewer sees the face exactly where the template has it: the first window stays
    exact = StubViewer(View(TEMPLATE.box, np.asarray(TEMPLATE.landmarks)))
    np.testing.assert_array_equal(contract.cut(image, box, exact), crop_face(image, first, 40, 0))
    assert exact.calls == 1
    # seen 10 % of the window to the right: the final window moves right by that much
    shifted = StubViewer(View((0.3, 0.1, 0.9, 0.9)))
    matrix = contract.place(image, box, shifted)
    x0, _, side = crop_square(image.shape, first, 0.0)
    assert -matrix[0, 2] / matrix[0, 0] == pytest.approx(x0 + 0.1 * side, abs=1.0)
    # no face seen: the first window
    np.testing.assert_array_equal(contract.cut(image, box, StubViewer(None)),
                                  crop_face(image, first, 40, 0))


def test_alignment_maps_the_seen_landmarks_onto_the_template():
    image = _noise(200, 200)
    box = (60.0, 50.0, 120.0, 130.0)
    contract = FaceContract(40, 0.0, "rgb", "template", True, TEMPLATE)
    seen = np.asarray(TEMPLATE.landmarks) + [0.05, -0.02]  # the face sits a bit off
    matrix = contract.place(image, box, StubViewer(View(TEMPLATE.box, seen)))
    square = crop_square(image.shape, window_from_box(box, TEMPLATE.box), 0.0)
    points = seen * square[2] + square[:2]
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, TEMPLATE.points(40), atol=1e-9)
    crop = contract.cut(image, box, StubViewer(View(TEMPLATE.box, seen)))
    assert crop.shape == (40, 40, 3) and crop.dtype == np.uint8


def test_warp_face_equals_the_crop_for_a_rotation_free_map():
    image = _noise(120, 120, seed=3)
    k = 30 / 60  # a 60-px square shrunk to 30 px
    matrix = np.array([[k, 0, -20 * k], [0, k, -10 * k]])
    warped = warp_face(image, matrix, 30).astype(int)
    cropped = crop_face(image, (20, 10, 80, 70), 30, 0.0).astype(int)
    assert np.abs(warped - cropped).mean() < 1.0  # area-shrunk first, as crop_face shrinks
    same = warp_face(image, np.array([[1.0, 0, -20], [0, 1.0, -10]]), 30)
    np.testing.assert_array_equal(same, image[10:40, 20:50])


def test_measure_template_takes_medians_and_counts_what_it_found():
    views = [View((0.1, 0.2, 0.9, 1.0), np.full((5, 2), 0.5)),
             View((0.2, 0.1, 0.8, 0.9), np.full((5, 2), 0.4)),
             View((0.3, 0.3, 0.7, 0.8), np.full((5, 2), 0.6)), None]
    template, found = measure_template(views)
    assert found == 0.75
    assert template.box == pytest.approx((0.2, 0.2, 0.8, 0.9))
    assert template.points() == pytest.approx(np.full((5, 2), 0.5))
    assert measure_template([None, None]) == (None, 0.0)


def test_contract_of_a_cache_with_boxes_is_the_box_square():
    images = np.stack([_noise(16, 16, s) for s in range(6)])
    cache = _cache(images, boxes=[(0, 0, 10, 10)] * 6)
    viewer = StubViewer(None)
    contract = contract_of_cache(cache, np.arange(6), 0.3, viewer=viewer)
    assert (contract.mode, contract.margin, contract.colour) == ("box", 0.3, "rgb")
    assert viewer.calls == 0 and contract.measured["boxed"] == 1.0


def test_contract_of_whole_image_crops_is_measured_or_falls_back():
    gray = np.stack([to_gray(_noise(16, 16, s)) for s in range(8)])
    seen = View(TEMPLATE.box, np.asarray(TEMPLATE.landmarks))
    contract = contract_of_cache(_cache(gray), np.arange(8), 0.25, viewer=StubViewer(seen))
    assert (contract.mode, contract.colour, contract.template) == ("template", "gray", TEMPLATE)
    assert contract.measured["found"] == 1.0 and contract.measured["sample"] == 8
    blind = contract_of_cache(_cache(gray), np.arange(8), 0.25, viewer=StubViewer(None))
    assert (blind.mode, blind.margin) == ("box", 0.0) and "found a face in 0%" in \
        blind.measured["note"]
    with pytest.raises(DataError, match="data.align needs a cache built with alignment"):
        contract_of_cache(_cache(gray), np.arange(8), 0.25, align=True)


@pytest.mark.data
def test_aligned_cache_warps_every_face_onto_its_template(tmp_path):
    """A cache built with alignment measures its template on its unaligned crops and keeps it
    in cache.json; the contract replays that template, and predict's aligned crop of a photo is
    the training crop of that photo, pixel for pixel (one function on both sides)."""
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent")
    from elim.data.cache import build_cache
    from elim.data.records import ReadResult

    labels = pd.read_csv(LONDON / "labels.csv", dtype={"identity": str}).head(6)
    records = pd.DataFrame({"path": [str(LONDON / p) for p in labels["path"]],
                            "identity": labels["identity"], "valence": 0.0, "arousal": 0.0,
                            "detect": True})
    cache = build_cache(ReadResult(records), tmp_path / "c", 48, margin=0.1, align=True,
                        progress=False)
    info = cache.meta["align"]
    assert info["found"] == 1.0 and info["aligned"] == 6 and info["not_aligned"] == 0
    contract = contract_of_cache(cache, np.arange(6), 0.1, align=True)
    assert contract.align and contract.mode == "box"
    assert contract.template == FaceTemplate.from_dict(info["template"])
    plain = build_cache(ReadResult(records), tmp_path / "p", 48, margin=0.1, progress=False)
    assert plain.meta["fingerprint"] != cache.meta["fingerprint"] and "align" not in plain.meta
    from elim.data.face_contract import CropViewer
    from elim.data.io import read_image

    viewer = CropViewer()
    for i, row in cache.table.iterrows():
        box = tuple(row[c] for c in ("x0", "y0", "x1", "y1"))
        got = contract.cut(read_image(row["path"]), box, viewer)
        np.testing.assert_array_equal(got, cache.images[i])
        assert not np.array_equal(got, plain.images[i])  # aligned, not the plain square


@pytest.mark.data
@pytest.mark.parametrize("framing", ["landmarks", "box"])
def test_predict_cuts_ck_like_faces_where_the_training_crops_had_them(framing):
    """Training crops made the way CK+48 is cropped — tight grey 48-px squares, framed by the
    eyes and nose (CK_EYES_NOSE) or by the detector's box (CK_LIKE), never a margin square —
    give a measured template; cutting the full photos by it lands each face's landmarks within
    2 px (landmark framing; 3.5 px for box framing, which predict does not follow) of where
    they are in that face's training crop — several times closer than the old margin square."""
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent")
    from elim.data.crop import square_box
    from elim.data.face_contract import CropViewer, scale_shift
    from elim.data.io import read_image
    from elim.detection import detect_largest

    photos = [read_image(p) for p in sorted(LONDON.glob("*/*.jpg"))]
    faces = [detect_largest(p) for p in photos]

    def train_matrix(photo, window):
        x0, y0, side = crop_square(photo.shape, window, 0.0)
        return np.array([[48 / side, 0, -x0 * 48 / side], [0, 48 / side, -y0 * 48 / side]])

    def framed(face):
        if framing == "box":
            return window_from_box(face.box, CK_LIKE)
        m = scale_shift(face.landmarks[:3], np.asarray(CK_EYES_NOSE))  # onto the unit crop
        x0, y0 = -m[:, 2] / m[0, 0]
        return (x0, y0, x0 + 1 / m[0, 0], y0 + 1 / m[0, 0])

    windows = [framed(f) for f in faces]
    crops = np.stack([to_gray(crop_face(p, w, 48, 0.0)) for p, w in zip(photos, windows)])
    contract = contract_of_cache(_cache(crops), np.arange(len(crops)), 0.25)
    assert (contract.mode, contract.colour, contract.measured["found"]) == ("template", "gray", 1)

    def landmarks_in(matrix, face):
        return face.landmarks @ matrix[:, :2].T + matrix[:, 2]

    viewer = CropViewer()
    errors, margin_errors = [], []
    for photo, face, window in zip(photos, faces, windows):
        want = landmarks_in(train_matrix(photo, window), face)
        got = landmarks_in(contract.place(photo, face.box, viewer), face)
        errors.append(np.abs(got - want).max())
        old = train_matrix(photo, square_box(face.box, 0.25))  # the margin predict used before
        margin_errors.append(np.abs(landmarks_in(old, face) - want).max())
    errors = np.array(errors)
    # measured: landmarks median 0.66, max 1.56 px; box median 1.40, max 3.18 px
    limit = 2.0 if framing == "landmarks" else 3.5
    assert np.median(errors) <= limit / 2 and errors.max() <= limit, errors.round(2)
    # the old margin square is several times farther off (medians 2.8 and 4.8 px)
    assert np.median(margin_errors) > 3 * np.median(errors), margin_errors
