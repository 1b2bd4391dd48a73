"""Test-time identity normalisation: a track's prediction changes only through Eqs. 3–4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ot as pot
import pandas as pd
import pytest
import torch
from torch import nn

from elim.errors import CheckpointError, ElimError
from elim.inference.identity_norm import GROUPINGS, IdentityNormaliser, person_keys
from elim.matching import IdentityMatching, ReferenceBank


def _bank(n_ids=3, k=4, d=6, seed=0) -> ReferenceBank:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n_ids, k, d, generator=g) + 1.0
    mask = torch.ones(n_ids, k, dtype=torch.bool)
    mask[1, -1] = False
    return ReferenceBank(features * mask.unsqueeze(-1), mask, [f"r{i}" for i in range(n_ids)],
                         k, seed)


def _head(d=6, seed=1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(d, 2)


def _normaliser(shift="scalar", **options) -> IdentityNormaliser:
    layer = IdentityMatching(eps=0.05, max_iter=2000, tol=1e-9, shift=shift)
    return IdentityNormaliser(_head(), layer, _bank(), **options)


def _by_hand(track: np.ndarray, norm: IdentityNormaliser) -> np.ndarray:
    """Eqs. 2, 3, 4, 8 with POT's Sinkhorn against every reference, then the mean of f_θ."""
    layer = norm.matching
    w, b = (p.detach().double().numpy() for p in norm.head.parameters())
    preds = []
    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    for r in range(len(norm.bank)):
        ref = norm.bank.features[r][norm.bank.mask[r]].double().numpy()
        cost = 1 - unit(ref) @ unit(track).T
        a_hat = np.maximum(ref @ track.mean(0), 0)
        b_hat = np.maximum(track @ ref.mean(0), 0)
        floor = layer.mass_floor
        a = (1 - floor) * a_hat / a_hat.sum() + floor / len(ref)
        bm = (1 - floor) * b_hat / b_hat.sum() + floor / len(track)
        plan = pot.sinkhorn(a, bm, cost, reg=layer.eps, numItermax=5000, stopThr=1e-12)
        mu = (cost * plan).sum(0) / plan.sum(0)
        centred = track - mu[:, None]
        sigma = np.sqrt((centred ** 2).mean(1, keepdims=True))
        preds.append((centred / (sigma + layer.norm_eps)) @ w.T + b)
    return np.mean(preds, axis=0)


def test_prediction_is_eq3_eq4_against_every_reference_then_f_theta():
    norm = _normaliser()
    track = np.random.default_rng(2).normal(size=(5, 6)) + 1.0
    got = norm.predict(track, np.zeros(5))
    np.testing.assert_allclose(got, _by_hand(track, norm), atol=2e-4)
    # and nothing but Eq. 4 reaches f_θ: the same as f_θ applied to the mean Ẑ (linear head)
    z_hat = norm.normalise(track, np.zeros(5))
    head = norm.head
    with torch.no_grad():
        np.testing.assert_allclose(got, head(torch.as_tensor(z_hat).float()).numpy(),
                                   atol=1e-5)


def test_tracks_are_independent_and_chunking_changes_nothing():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(12, 6)) + 1.0
    groups = np.array(list("aabbbbcccddd"))
    norm = _normaliser()
    together = norm.predict(feats, groups)
    one_by_one = _normaliser(max_pairs=1).predict(feats, groups)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    for g in "abcd":
        sel = groups == g
        np.testing.assert_allclose(together[sel], norm.predict(feats[sel], groups[sel]),
                                   atol=1e-5)
    perm = rng.permutation(12)
    np.testing.assert_allclose(norm.predict(feats[perm], groups[perm]), together[perm],
                               atol=1e-5)


@pytest.mark.parametrize("max_pairs", [1 << 18, 1])
def test_normalise_and_predict_equals_the_two_calls(max_pairs):
    feats = np.random.default_rng(4).normal(size=(9, 6)) + 1.0
    groups = np.array(list("aabbbcccc"))
    norm = _normaliser(max_pairs=max_pairs)
    z_hat, pred = norm.normalise_and_predict(feats, groups)
    assert z_hat.shape == (9, 6) and pred.shape == (9, 2)
    np.testing.assert_array_equal(z_hat, norm.normalise(feats, groups))
    np.testing.assert_array_equal(pred, norm.predict(feats, groups))
    z0, p0 = norm.normalise_and_predict(feats[:0], groups[:0])
    assert z0.shape == (0, 6) and p0.shape == (0, 2)


def test_vector_shift_normalisation_removes_a_track_offset():
    """With ``shift="vector"`` a person-wide offset c (orthogonal to the features, so the
    masses of Eq. 8 are unchanged) disappears: δ^e absorbs it, Ẑ and ŷ stay the same."""
    norm = _normaliser(shift="vector")
    norm.bank.features[..., -1] = 0.0
    track = np.random.default_rng(4).normal(size=(6, 6)) + 1.0
    track[:, -1] = 0.0
    offset = np.zeros(6)
    offset[-1] = 2.5
    base, moved = (norm.normalise(t, np.zeros(6)) for t in (track, track + offset))
    np.testing.assert_allclose(moved, base, atol=1e-4)
    scalar = _normaliser()  # the paper's scalar μ cannot remove it
    scalar.bank.features[..., -1] = 0.0
    gap = np.abs(scalar.normalise(track + offset, np.zeros(6)) - scalar.normalise(track,
                                                                                  np.zeros(6)))
    assert gap.max() > 0.1
    with pytest.raises(ElimError, match="d = 6"):
        norm.predict(np.zeros((2, 5)), np.zeros(2))


def test_predict_table_replaces_va_per_source_and_track():
    norm = _normaliser()
    rng = np.random.default_rng(5)
    feats = rng.normal(size=(6, 6)) + 1.0
    table = pd.DataFrame({"source": ["v.mp4"] * 4 + ["w.mp4"] * 2, "face": [0, 0, 1, 1, 0, 0],
                          "valence": 0.1, "arousal": 0.2,
                          **{f"f{i}": feats[:, i] for i in range(6)}})
    table.loc[5, [f"f{i}" for i in range(6)]] = np.nan  # a row without a face
    out = norm.predict_table(table, by="track")
    assert (out["valence_plain"] == 0.1).all() and (out["arousal_plain"] == 0.2).all()
    expect = norm.predict(feats[:5], np.array(["v0", "v0", "v1", "v1", "w0"]))
    np.testing.assert_allclose(out[["valence", "arousal"]].to_numpy()[:5], expect, atol=1e-6)
    assert out.loc[5, "valence"] == 0.1
    with pytest.raises(ElimError, match="no column"):
        norm.predict_table(table.drop(columns="f0"), by="track")


def test_person_keys_of_every_grouping_and_of_a_column():
    table = pd.DataFrame({"source": ["a/1.jpg", "a/2.jpg", "b/3.jpg", "v.mp4", "v.mp4"],
                          "face": [0, 0, 0, 0, 1], "person": ["x", "y", "x", "y", "y"]})
    same = {by: [len(set(person_keys(table, by)[list(rows)])) == 1 for rows in
                 ((0, 1), (0, 2), (3, 4))] for by in (*GROUPINGS, "person")}
    assert same == {"track": [False, False, False], "input": [False, False, True],
                    "folder": [True, False, True], "person": [False, True, True]}
    with pytest.raises(ElimError, match="no column 'who'"):
        person_keys(table, "who")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_values):
    from elim.config import config_from_dict
    from elim.training.fit import fit

    out = tmp_path_factory.mktemp("ttn") / "run"
    result = fit(config_from_dict({**tiny_values, "train": {**tiny_values["train"],
                                                            "epochs": 1}}),
                 out, checkpoints=False, quiet=True)
    return out, result


def test_fit_saves_a_reference_bank_of_the_training_identities(trained_run):
    from elim.runs.layout import REFERENCE_BANK
    from elim.runs.store import read_json

    run_dir, result = trained_run
    bank = ReferenceBank.load(run_dir / REFERENCE_BANK)
    assert bank.identities == sorted(read_json(run_dir / "splits.json")["train"])
    assert bank.k == result.config["matching"]["k"] and bank.mask.sum(1).max() <= bank.k
    assert bank.features.shape[2] == result.config["model"]["feature_dim"]
    norm = IdentityNormaliser.from_run(run_dir)
    feats = np.random.default_rng(0).normal(size=(4, bank.features.shape[2]))
    assert np.isfinite(norm.predict(feats, np.array([0, 0, 1, 1]))).all()


def test_a_run_without_a_bank_is_refused(trained_run, tmp_path):
    import shutil

    from elim.runs.layout import REFERENCE_BANK

    copy = tmp_path / "old-run"
    shutil.copytree(trained_run[0], copy)
    (copy / REFERENCE_BANK).unlink()
    with pytest.raises(CheckpointError, match="retrain"):
        IdentityNormaliser.from_run(copy)


@pytest.fixture(scope="module")
def people_folders(tmp_path_factory):
    """Two folders (two people) of three face-sized noise images each."""
    from elim.deps import cv2

    root = tmp_path_factory.mktemp("people")
    rng = np.random.default_rng(3)
    for person in ("ann", "bob"):
        (root / person).mkdir()
        for k in range(3):
            cv2.imwrite(str(root / person / f"{k}.png"),
                        rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return root


def test_predict_identity_norm_by_folder_changes_only_through_eqs_3_4(trained_run,
                                                                      people_folders):
    """`elim predict --identity-norm folder`: each folder is one person, normalised against
    the run's bank; the plain predictions are kept beside; f_φ and f_θ are untouched."""
    from elim.inference.pipeline import Job, Options, run_job

    run_dir, _ = trained_run
    inputs = [people_folders / "ann", people_folders / "bob"]
    plain = run_job(Job(run_dir, inputs, Options(detector="none", features=True))).table
    normed = run_job(Job(run_dir, inputs, Options(detector="none"),
                         identity_norm="folder")).table
    assert not any(c.startswith("f") and c[1:].isdigit() for c in normed.columns)
    np.testing.assert_allclose(normed["valence_plain"], plain["valence"], atol=1e-6)
    feats = plain[[c for c in plain.columns if c.startswith("f") and c[1:].isdigit()]]
    people = np.array([str(p) for p in plain["source"].map(lambda s: Path(s).parent)])
    expect = IdentityNormaliser.from_run(run_dir).predict(feats.to_numpy(), people)
    np.testing.assert_allclose(normed[["valence", "arousal"]].to_numpy(), expect, atol=1e-6)
    assert not np.allclose(expect, plain[["valence", "arousal"]].to_numpy(), atol=1e-3)


def test_predict_identity_norm_refusals_are_one_line(trained_run, people_folders, tmp_path,
                                                     capsys):
    import shutil

    from elim.cli import main
    from elim.runs.layout import REFERENCE_BANK

    run_dir, _ = trained_run
    folder = str(people_folders / "ann")
    assert main(["predict", folder, "-m", str(run_dir), "--no-detect", "--identity-norm",
                 "track", "--smooth", "ema:0.3"]) == 2
    err = capsys.readouterr().err
    assert "--smooth" in err and "Traceback" not in err
    copy = tmp_path / "old-run"
    shutil.copytree(run_dir, copy)
    (copy / REFERENCE_BANK).unlink()
    assert main(["predict", folder, "-m", str(copy), "--no-detect", "--identity-norm",
                 "input"]) == 2
    err = capsys.readouterr().err
    assert "retrain" in err and "Traceback" not in err
