"""The embedded synthetic dataset: determinism, format, labels, identity shift, round trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from elim.data.io import read_image
from elim.datasets import get_reader, read_dataset
from elim.datasets.synthetic import (
    ExpressionStyle,
    display_values,
    generate,
    read,
    render_identity,
    write_synthetic,
)
from elim.deps import Ridge, r2_score
from elim.errors import DataError

SMALL = {"n_identities": 3, "clips_per_identity": 2, "frames_per_clip": 5, "image_size": 32}
STYLE_COLUMNS = ["gain_v", "gain_a", "offset_v", "offset_a", "gamma_v", "gamma_a", "mouth_share"]


@pytest.fixture(scope="module")
def default32():
    """The default dataset (60 identities × 4 clips × 12 frames) at the preset's 32×32."""
    return generate(image_size=32, progress=False)


def test_shapes_dtypes_and_table():
    images, table = generate(**SMALL, progress=False)
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.uint8
    assert len(table) == 30 and table.index.tolist() == list(range(30))
    for col in ["path", "identity", "group", "clip", "frame", "valence", "arousal",
                *STYLE_COLUMNS]:
        assert col in table.columns, col
    assert table["path"].iloc[7] == "synthetic://id_000/clip_1/0002.png"
    assert table["identity"].unique().tolist() == ["id_000", "id_001", "id_002"]
    assert (table["group"] == table["identity"]).all()
    assert table["clip"].unique().tolist() == [0, 1] and table["frame"].max() == 4
    assert table["path"].is_unique
    # the style is constant within an identity and differs between identities
    assert (table.groupby("identity")[STYLE_COLUMNS].nunique() == 1).all().all()
    assert table.groupby("identity")["gain_v"].first().nunique() == 3
    assert images.std() > 20  # not blank


def test_deterministic_from_seed():
    a_img, a_tab = generate(**SMALL, seed=5, progress=False)
    b_img, b_tab = generate(**SMALL, seed=5, progress=False)
    c_img, c_tab = generate(**SMALL, seed=6, progress=False)
    np.testing.assert_array_equal(a_img, b_img)
    pd.testing.assert_frame_equal(a_tab, b_tab)
    assert np.abs(a_img.astype(int) - c_img).mean() > 10
    assert not np.allclose(a_tab["valence"], c_tab["valence"])


def test_identities_are_independent_draws():
    """Identity i depends only on (seed, i): drawing more identities leaves the first unchanged,
    so any identity-disjoint split of the identities is a valid split."""
    few_img, few_tab = generate(**{**SMALL, "n_identities": 2}, progress=False)
    many_img, many_tab = generate(**{**SMALL, "n_identities": 4}, progress=False)
    np.testing.assert_array_equal(few_img, many_img[: len(few_img)])
    pd.testing.assert_frame_equal(few_tab, many_tab.iloc[: len(few_tab)])


def test_image_size_and_argument_checks():
    images, _ = generate(n_identities=1, clips_per_identity=1, frames_per_clip=2,
                         image_size=48, progress=False)
    assert images.shape == (2, 48, 48, 3)
    for bad in ({"n_identities": 0}, {"image_size": 8}, {"frames_per_clip": 2.5},
                {"seed": -1}):
        with pytest.raises(DataError):
            generate(**{**SMALL, **bad}, progress=False)


def test_labels_range_quadrants_and_smooth_clips(default32):
    images, table = default32
    assert images.shape == (2880, 32, 32, 3)
    v, a = table["valence"].to_numpy(), table["arousal"].to_numpy()
    assert np.all(np.hypot(v, a) <= 0.98 + 1e-6)  # inside the unit disk, so within [-1, 1]
    quadrant = (v > 0) * 2 + (a > 0)
    share = np.bincount(quadrant, minlength=4) / len(v)
    assert share.min() > 0.15, share
    assert np.abs(v).max() > 0.8 and np.abs(a).max() > 0.8
    # every identity shows several expressions (clip centres spread around the circle)
    per_id = table.assign(q=quadrant).groupby("identity")["q"].nunique()
    assert per_id.min() >= 2
    # trajectories are smooth within a clip: steps far smaller than the label spread
    step = table.groupby(["identity", "clip"])[["valence", "arousal"]].diff().abs()
    assert step.max().max() < 0.3 and step.median().max() < 0.08 and v.std() > 0.3


def test_rendering_depends_on_the_label_only_through_the_identity_style():
    """p(x | y) is identity-specific: pixels follow the *displayed* expression, which each
    identity's style maps from the label differently."""
    v = np.array([-0.8, 0.0, 0.5, 0.8])
    a = np.array([0.6, 0.0, -0.5, 0.2])
    neutral = ExpressionStyle(1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.7)
    base = render_identity(2, v, a, image_size=64, style=neutral)
    np.testing.assert_array_equal(base, render_identity(2, v, a, image_size=64, style=neutral))
    # another style that displays the same values (half gain, offset 0.25 at v = 0.5) → same face
    same_display = replace(neutral, gain_v=0.5, offset_v=0.25)
    np.testing.assert_array_equal(
        render_identity(2, v[2:3], a[2:3], image_size=64, style=neutral),
        render_identity(2, v[2:3], a[2:3], image_size=64, style=same_display))
    # a person who looks happy at rest: the same labels render differently ...
    cheerful = render_identity(2, v, a, image_size=64, style=replace(neutral, offset_v=0.5))
    diff = np.abs(cheerful.astype(int) - base).mean(axis=(1, 2, 3))
    assert np.all(diff > 0.3), diff
    # ... about as differently as a real change of label does
    label_change = np.abs(base[1].astype(int) - render_identity(
        2, v[1:2] + 0.5, a[1:2], image_size=64, style=neutral)[0]).mean()
    assert diff[1] == pytest.approx(label_change, rel=0.5)
    # the changes sit in the face (mouth, eyes), not in the background or the hair
    changed = np.abs(cheerful.astype(int) - base).sum(axis=(0, 3)) > 0
    assert not changed[:, :8].any() and not changed[:8].any()


def _face_pixels(images: np.ndarray) -> np.ndarray:
    """Raw grey pixels of the central face region, standardised per image."""
    s = images.shape[1]
    crop = images[:, int(0.2 * s):int(0.75 * s), s // 4:3 * s // 4].mean(-1)
    x = crop.reshape(len(images), -1).astype(np.float64)
    x -= x.mean(1, keepdims=True)
    return x / x.std(1, keepdims=True)


def test_learnable_across_identities_yet_identity_dependent(default32):
    images, table = default32
    x = _face_pixels(images)
    ident = table["identity"].str.slice(3).astype(int).to_numpy()
    train, test = ident < 40, ident >= 40
    dv, _ = display_values(table)
    r2 = {}
    for name, y in (("valence", table["valence"].to_numpy()), ("arousal",
                    table["arousal"].to_numpy()), ("display_v", dv)):
        model = Ridge(alpha=300.0).fit(x[train], y[train])
        r2[name] = r2_score(y[test], model.predict(x[test]))
    # unseen identities: clearly better than chance from raw pixels with a linear model
    assert r2["valence"] > 0.2, r2
    assert r2["arousal"] > 0.1, r2
    # but the pixels carry each identity's displayed expression better than the shared label
    assert r2["display_v"] > r2["valence"] + 0.05, r2


def test_write_synthetic_round_trip(tmp_path):
    images, table = generate(**SMALL, progress=False)
    labels = write_synthetic(tmp_path / "syn", progress=False, **SMALL)
    assert labels == tmp_path / "syn" / "labels.csv" and labels.is_file()
    raw = pd.read_csv(labels)
    assert raw.columns[:7].tolist() == ["path", "identity", "valence", "arousal", "group",
                                        "clip", "frame"]
    assert raw["path"].iloc[0] == "images/id_000/clip_0/0000.png"
    assert not list(tmp_path.glob("syn/*.tmp"))
    for name, root in (("csv", labels), ("synthetic", tmp_path / "syn")):
        result = read_dataset(name, root)
        rec = result.records
        assert result.skipped.total == 0 and len(rec) == len(table)
        np.testing.assert_allclose(rec["valence"], table["valence"], atol=1e-6)
        np.testing.assert_allclose(rec["arousal"], table["arousal"], atol=1e-6)
        assert rec["identity"].tolist() == table["identity"].tolist()
        assert rec["group"].tolist() == table["group"].tolist()
        for i in (0, 13, 29):  # PNG is lossless: the pixels come back exactly
            np.testing.assert_array_equal(read_image(rec["path"].iloc[i]), images[i])
    rec = read_dataset("synthetic", tmp_path / "syn").records
    np.testing.assert_allclose(rec[STYLE_COLUMNS], table[STYLE_COLUMNS])
    assert rec["clip"].tolist() == table["clip"].tolist()


def test_reader_registration_and_errors(tmp_path):
    assert get_reader("synthetic") is read
    with pytest.raises(DataError, match="open_dataset"):
        read(None)
    with pytest.raises(DataError):
        read(tmp_path / "nowhere")


# ---------------------------------------------------------------- shift and style strengths
TINY = {"n_identities": 4, "clips_per_identity": 2, "frames_per_clip": 3, "image_size": 32}


def test_shift_zero_is_identity_neutral_and_labels_never_depend_on_the_strengths():
    from elim.datasets.synthetic import _identity
    from elim.datasets.synthetic_draw import CANONICAL

    for i in range(4):
        neutral = _identity(0, i, shift=0.0, style=0.0)
        assert neutral.look == CANONICAL and neutral.camera is None
        assert neutral.style.display(0.3, -0.4) == (0.3, -0.4)  # display = label
    tables = [generate(**TINY, progress=False, shift=s, style=t)[1] for s, t in
              ((0.0, 0.0), (0.5, 0.0), (1.0, 1.0), (0.0, 1.0))]
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t[["identity", "clip", "frame", "valence", "arousal"]],
                                      tables[0][["identity", "clip", "frame", "valence",
                                                 "arousal"]])


def test_shift_one_is_the_full_draw_and_strengths_scale_between():
    from elim.datasets.synthetic import _LOOK, _identity, _rng
    from elim.datasets.synthetic_draw import CANONICAL, sample_appearance

    own = sample_appearance(_rng(0, 2, _LOOK))
    assert _identity(0, 2, shift=1.0).look == own
    half = _identity(0, 2, shift=0.5).look
    assert half.face_w == pytest.approx((CANONICAL.face_w + own.face_w) / 2)
    # faces drift away from the canonical one as s grows; clip nuisance stays the same
    images = [generate(**TINY, progress=False, shift=s, style=0.0)[0].astype(float)
              for s in (0.0, 0.5, 1.0)]
    d_half, d_full = (np.abs(im - images[0]).mean() for im in images[1:])
    assert 0 < d_half < d_full
    with pytest.raises(DataError, match=r"shift must be a number in \[0, 1\]"):
        generate(**TINY, progress=False, shift=1.5)
    with pytest.raises(DataError, match="style"):
        generate(**TINY, progress=False, style=-0.1)


def test_style_strength_scales_the_expression_style_only():
    _, full = generate(**TINY, progress=False, style=1.0)
    _, none = generate(**TINY, progress=False, style=0.0)
    assert full["gain_v"].nunique() == 4
    assert (none[STYLE_COLUMNS[:6]].to_numpy() == [1, 1, 0, 0, 1, 1]).all()
    assert (none["mouth_share"] == 0.7).all()
    dv, da = display_values(none)
    np.testing.assert_array_equal(dv, none["valence"])
    np.testing.assert_array_equal(da, none["arousal"])


def test_probe_faces_show_the_same_labels_for_every_identity():
    from elim.datasets.synthetic import probe_faces, probe_labels

    labels = probe_labels()
    assert labels.shape == (24, 2) and np.all(np.hypot(*labels.T) <= 0.9 + 1e-12)
    assert len({(v > 0, a > 0) for v, a in labels}) == 4
    images, table = probe_faces([1, 3], image_size=32, shift=1.0, style=0.0, n_identities=4)
    assert images.shape == (48, 32, 32, 3) and table["identity"].unique().tolist() == [
        "id_001", "id_003"]
    for name in ("id_001", "id_003"):
        np.testing.assert_array_equal(table.loc[table.identity == name, ["valence", "arousal"]],
                                      labels)
    again, _ = probe_faces([3], image_size=32, shift=1.0, style=0.0, n_identities=4)
    np.testing.assert_array_equal(again, images[24:])  # one identity's probe: its own stream
