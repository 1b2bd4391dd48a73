"""Learning-rate decay and L_main warm-up schedules."""

from __future__ import annotations

import pytest

from elim.training.schedule import lr_factor, warmup_weight


def test_paper_decay_points():
    assert lr_factor(0) == 1.0 and lr_factor(4999) == 1.0
    assert lr_factor(5000) == pytest.approx(0.8)
    assert lr_factor(24999) == pytest.approx(0.8)
    assert lr_factor(25000) == pytest.approx(0.64)
    assert lr_factor(45000) == pytest.approx(0.8**3)


def test_decay_can_be_disabled_or_single():
    assert lr_factor(10**6, first=0) == 1.0
    assert lr_factor(10**6, first=10, every=0) == pytest.approx(0.8)


def test_warmup_is_a_linear_ramp():
    assert warmup_weight(0, 10) == 0.0
    assert warmup_weight(5, 10) == pytest.approx(0.5)
    assert warmup_weight(10, 10) == 1.0 and warmup_weight(99, 10) == 1.0
    assert warmup_weight(0, 10, start=0.2) == pytest.approx(0.2)
    assert warmup_weight(0, 0) == 1.0
