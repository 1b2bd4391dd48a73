"""Identity-invariance measures behave at their two extremes."""

from __future__ import annotations

import numpy as np
import pytest

from elim.analysis.invariance import distance_ratio, identity_probe


def _dataset(n_ids=8, per_id=12, seed=0):
    rng = np.random.default_rng(seed)
    identity = np.repeat(np.arange(n_ids), per_id)
    labels = rng.choice([-0.5, 0.5], size=(len(identity), 1)).repeat(2, axis=1)
    return rng, identity, labels


def test_probe_near_chance_without_identity_information():
    rng, identity, _ = _dataset()
    features = rng.normal(size=(len(identity), 16))
    res = identity_probe(features, identity, n_folds=4)
    assert res.chance == pytest.approx(1 / 8)
    assert res.accuracy < 0.35


def test_probe_near_perfect_on_identity_one_hot():
    rng, identity, _ = _dataset()
    features = np.eye(8)[identity] + 0.01 * rng.normal(size=(len(identity), 8))
    assert identity_probe(features, identity, n_folds=4).accuracy > 0.98


def test_probe_drops_identities_too_small_for_the_folds():
    rng = np.random.default_rng(1)
    identity = np.array([0] * 10 + [1] * 10 + [2] * 2)
    res = identity_probe(rng.normal(size=(22, 4)), identity, n_folds=5)
    assert res.n_identities == 2 and res.n_samples == 20


def test_distance_ratio_separates_expression_from_identity_features():
    rng, identity, labels = _dataset()
    expression = np.c_[labels[:, :1], -labels[:, :1]]
    noise = 0.01 * rng.normal(size=(len(identity), 8))
    id_code = np.eye(8)[identity]
    expr_feat = np.c_[expression * 5, np.zeros((len(identity), 6))] + noise
    id_feat = id_code * 5 + noise
    assert distance_ratio(expr_feat, identity, labels).ratio < 0.1
    assert distance_ratio(id_feat, identity, labels).ratio > 5


def test_distance_ratio_requires_both_kinds_of_pairs():
    with pytest.raises(ValueError, match="needs pairs"):
        distance_ratio(np.ones((3, 2)), np.array([0, 1, 2]), np.array([[0.1], [0.2], [0.3]]))


def test_grouped_probe_keeps_groups_on_one_side():
    # Each (identity, clip) is a tight cluster far from the identity's other clip: a
    # per-sample split finds the clip's twins, a grouped split must generalise across clips.
    rng = np.random.default_rng(2)
    identity = np.repeat(np.arange(6), 10)
    clip = np.tile(np.repeat([0, 1], 5), 6)
    centres = rng.normal(size=(12, 32)) * 5  # 12 points in 32-D: linearly separable anyhow
    features = centres[identity * 2 + clip] + 0.01 * rng.normal(size=(60, 32))
    assert identity_probe(features, identity, n_folds=5).accuracy > 0.95
    grouped = identity_probe(features, identity, n_folds=2, groups=clip)
    assert grouped.accuracy < 0.5 and grouped.n_identities == 6


def test_grouped_probe_drops_identities_with_one_group():
    rng = np.random.default_rng(3)
    identity = np.array([0] * 6 + [1] * 6 + [2] * 6)
    groups = np.array([0, 0, 0, 1, 1, 1] * 2 + [0] * 6)
    res = identity_probe(rng.normal(size=(18, 4)), identity, n_folds=2, groups=groups)
    assert res.n_identities == 2 and res.n_samples == 12
