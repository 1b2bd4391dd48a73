"""The cross-identity consistency of predictions (paper Sec. 5 A1 / Fig. 3, as a number)."""

from __future__ import annotations

import numpy as np
import pytest

from elim.analysis.consistency import label_bins, prediction_consistency


def test_zero_when_the_prediction_depends_on_the_label_only():
    rng = np.random.default_rng(0)
    labels = np.repeat(rng.uniform(-1, 1, (6, 2)), 5, axis=0)  # 6 labels × 5 identities
    identity = np.tile(np.arange(5), 6)
    predictions = 0.3 * labels[:, ::-1] + 0.1  # wrong, but the same for every identity
    res = prediction_consistency(predictions, identity, labels)
    assert res.spread == 0.0 and res.spread_v == 0.0 and res.spread_a == 0.0
    assert res.n_labels == 6 and res.mean_identities == 5


def test_spread_is_the_mean_across_identity_std():
    labels = np.array([[0.5, 0.5]] * 4 + [[-0.5, 0.0]] * 2)
    identity = np.array(["a", "a", "b", "c", "a", "b"])
    predictions = np.array([[0.1, 0.0], [0.3, 0.0],  # a: mean (0.2, 0) for the first label
                            [0.6, 0.4], [0.8, 0.2],  # b, c
                            [0.0, 0.0], [0.0, 1.0]])  # second label: a, b
    res = prediction_consistency(predictions, identity, labels)
    std_v1, std_a1 = np.std([0.2, 0.6, 0.8]), np.std([0.0, 0.4, 0.2])
    std_v2, std_a2 = 0.0, 0.5
    assert res.spread_v == pytest.approx((std_v1 + std_v2) / 2)
    assert res.spread_a == pytest.approx((std_a1 + std_a2) / 2)
    assert res.spread == pytest.approx((res.spread_v + res.spread_a) / 2)
    assert res.n_labels == 2 and res.mean_identities == 2.5


def test_labels_of_one_identity_only_are_left_out_and_errors():
    labels = np.array([[0.1, 0.1], [0.1, 0.1], [0.9, 0.9]])
    identity = np.array([0, 1, 0])
    res = prediction_consistency(np.array([[0, 0], [1, 1], [5, 5.0]]), identity, labels)
    assert res.n_labels == 1 and res.spread == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shared by two identities"):
        prediction_consistency(np.zeros((2, 2)), np.array([0, 1]), np.array([[0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="aligned"):
        prediction_consistency(np.zeros((3, 2)), np.array([0, 1]), labels)


def test_label_bins_on_a_grid():
    codes = label_bins(np.array([[0.0, 0.0], [0.02, -0.01], [0.5, 0.5]]), tol=0.1)
    assert codes[0] == codes[1] != codes[2]
    with pytest.raises(ValueError):
        label_bins(np.zeros((1, 2)), tol=0)
