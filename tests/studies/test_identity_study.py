"""Number-of-identities study: fixed held-out identities, nested training subsets, resuming."""

from __future__ import annotations

import numpy as np
import pytest

from elim.config import METHOD_VARIANTS
from elim.errors import ElimError
from elim.studies import identities
from elim.studies.identities import _subset, study_parts


def test_parts_are_disjoint_and_fixed():
    groups = np.repeat([f"p{i:02d}" for i in range(20)], 3)
    pool, val, test = study_parts(groups, [0.6, 0.2, 0.2], split_seed=0)
    again = study_parts(groups, [0.6, 0.2, 0.2], split_seed=0)
    assert np.array_equal(test, again[2]) and np.array_equal(pool, again[0])
    held = set(groups[val]) | set(groups[test])
    assert not held & set(pool) and len(set(groups[val]) & set(groups[test])) == 0
    assert len(pool) + len(held) == 20


def test_subsets_grow_nested_and_keep_two_identities():
    pool = np.array([f"p{i:02d}" for i in range(30)])
    sizes, previous = [], set()
    for f in (0.01, 0.25, 0.5, 1.0):
        chosen = set(_subset(pool, f, seed=1, split_seed=0))
        assert previous <= chosen
        sizes.append(len(chosen))
        previous = chosen
    assert sizes == [2, 8, 15, 30]
    assert set(_subset(pool, 0.5, 2, 0)) != set(_subset(pool, 0.5, 1, 0))


def test_no_va_variants_follow_the_paper():
    assert METHOD_VARIANTS["elim-no-va"].overrides == {"train.method": "elim", "train.w_mse": 0.0}
    assert METHOD_VARIANTS["elim-main-only"].overrides["train.w_ccc"] == 0.0


def test_study_runs_and_resumes(tiny_config, tiny_cache, tmp_path, monkeypatch):
    config = tiny_config(train={"epochs": 1})
    kw = {"fractions": [0.5, 1.0], "methods": ["elim-no-va"], "seeds": [0],
          "cache": tiny_cache, "progress": False}
    result = identities.run_identity_study(config, tmp_path, **kw)
    rows = result["summary"]["elim-no-va"]
    assert [r["n_identities"] for r in rows] == [7, 14]  # pool of 14 (fractions 0.6/0.2/0.2)
    assert result["test_identities"] >= 2 and len(result["runs"]) == 2
    assert all(r["ccc_mean"]["std"] == 0.0 for r in rows)  # one seed
    md = (tmp_path / "study.md").read_text()
    assert "ELIM w/o L_va" in md and "14 ids (100%)" in md
    assert (tmp_path / "identities.png").stat().st_size > 0
    assert (tmp_path / "identities.svg").stat().st_size > 0

    def no_fit(*a, **k):
        raise AssertionError("a finished fit was run again")

    monkeypatch.setattr(identities, "fit", no_fit)
    again = identities.run_identity_study(config, tmp_path, **kw)
    assert again["summary"] == result["summary"]


def test_study_rejects_bad_arguments(tiny_config, tiny_cache, tmp_path):
    config = tiny_config(train={"epochs": 1})
    with pytest.raises(ElimError, match="unknown method"):
        identities.run_identity_study(config, tmp_path, methods=["cae"], cache=tiny_cache)
    with pytest.raises(ElimError, match="fractions"):
        identities.run_identity_study(config, tmp_path, fractions=[0, 1], cache=tiny_cache)
