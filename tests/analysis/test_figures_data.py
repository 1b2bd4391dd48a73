"""What the figures are drawn from: the shared-label choice (Fig. 3) and training logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from elim.analysis.figures import read_history, shared_label_rows
from elim.errors import ElimError


def test_shared_label_picks_the_label_seen_in_most_identities():
    labels = np.array([[0.8, 0.5]] * 6 + [[-0.6, -0.3]] * 9 + [[0.4, 0.7]])
    identity = np.array(list("abcdef") + list("gggghhhhh") + ["a"])
    rows, centre = shared_label_rows(labels, identity, tol=0.1, per_identity=2)
    assert np.allclose(centre, [0.8, 0.5])  # 6 identities beat 2 identities with 9 faces
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4, 5]


def test_shared_label_caps_identities_and_faces():
    rng = np.random.default_rng(0)
    labels = np.array([0.4, -0.2]) + 0.01 * rng.normal(size=(40, 2))
    identity = np.repeat([f"p{i}" for i in range(10)], 4)
    rows, _ = shared_label_rows(labels, identity, tol=0.2, max_identities=5, per_identity=3)
    assert len(rows) == 15 and len(set(identity[rows])) == 5


def test_shared_label_needs_two_identities():
    with pytest.raises(ElimError, match="label-tol"):
        shared_label_rows(np.array([[0.1, 0.1], [0.9, 0.9]]), np.array(["a", "b"]), tol=0.1)


def test_history_averages_steps_per_epoch(tmp_path):
    log = tmp_path / "logs" / "csv"
    log.mkdir(parents=True)
    pd.DataFrame({
        "epoch": [0, 0, 0, 1, 1, 1], "step": [1, 2, 2, 3, 4, 4],
        "train/loss": [2.0, 4.0, None, 1.0, 2.0, None],
        "val/ccc_mean": [None, None, 0.2, None, None, 0.4],
    }).to_csv(log / "metrics.csv", index=False)
    hist = read_history(tmp_path)
    assert hist == {"train/loss": [3.0, 1.5], "val/ccc_mean": [0.2, 0.4]}
    with pytest.raises(ElimError, match="no Lightning CSV log"):
        read_history(tmp_path / "elsewhere")
