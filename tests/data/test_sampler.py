"""IdentityBatchSampler: P identities × up to K samples, coverage, ranks, resume."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elim.data.sampler import IdentityBatchSampler


def _codes(sizes) -> np.ndarray:
    codes = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    return np.random.default_rng(0).permutation(codes)  # identities interleaved in the dataset


def _epoch(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_balanced_data_gives_exact_p_by_k_batches_covering_once():
    codes = _codes([20] * 12)  # 12 identities × 20 samples, P=4, K=5
    sampler = IdentityBatchSampler(codes, n_identities=4, samples_per_identity=5, seed=3)
    batches = _epoch(sampler)
    assert len(batches) == len(sampler) == 12
    for b in batches:
        per_id = Counter(codes[b].tolist())
        assert len(per_id) == 4 and set(per_id.values()) == {5}
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(codes)))  # every sample exactly once


def test_small_identities_and_remainders():
    codes = _codes([1, 2, 3, 7, 11, 4, 9, 2, 6])
    sampler = IdentityBatchSampler(codes, n_identities=3, samples_per_identity=4, seed=0)
    batches = _epoch(sampler)
    seen = Counter(np.concatenate(batches).tolist())
    assert set(seen) == set(range(len(codes)))  # all covered
    for b in batches:
        ids = codes[b]
        per_id = Counter(ids.tolist())
        assert len(per_id) == 3 and max(per_id.values()) <= 4
    # repeats only come from filler chunks, which complete the last batches
    assert sum(seen.values()) - len(codes) <= 2 * 4


def test_fewer_identities_than_p():
    codes = _codes([5, 5])
    batches = _epoch(IdentityBatchSampler(codes, n_identities=10, samples_per_identity=5))
    assert len(batches) == 1 and sorted(batches[0]) == list(range(10))


def test_dominant_identity_is_spread_and_batches_stay_full():
    codes = _codes([60, 3, 3, 3])  # one identity has 12 chunks of 5, the others 1 each
    sampler = IdentityBatchSampler(codes, n_identities=2, samples_per_identity=5, seed=1)
    batches = _epoch(sampler)
    assert len(batches) == 12
    assert all(len(set(codes[b].tolist())) == 2 for b in batches)
    assert set(np.concatenate(batches).tolist()) == set(range(len(codes)))
    dropped = _epoch(IdentityBatchSampler(codes, 2, 5, seed=1, drop_last=True))
    flat = np.concatenate(dropped)
    assert len(flat) == len(set(flat.tolist()))  # drop_last: no sample twice
    assert all(len(set(codes[b].tolist())) == 2 for b in dropped)


def test_deterministic_per_seed_and_epoch():
    codes = _codes([7, 9, 4, 12, 5, 8])
    a = IdentityBatchSampler(codes, 3, 4, seed=11)
    b = IdentityBatchSampler(codes, 3, 4, seed=11)
    assert _epoch(a, 2) == _epoch(b, 2)
    assert _epoch(a, 0) != _epoch(a, 1)
    assert _epoch(IdentityBatchSampler(codes, 3, 4, seed=12), 2) != _epoch(b, 2)


def test_advances_epoch_after_a_full_pass():
    sampler = IdentityBatchSampler(_codes([6, 6, 6]), 2, 3, seed=0)
    first, second = list(sampler), list(sampler)
    assert sampler.epoch == 2 and first != second
    assert first == _epoch(IdentityBatchSampler(_codes([6, 6, 6]), 2, 3, seed=0), 0)


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_get_disjoint_identities_and_equal_lengths(drop_last):
    codes = _codes([3, 17, 8, 8, 25, 4, 9, 12, 6, 1, 14])
    world = 3
    for epoch in (0, 1):
        per_rank = []
        for r in range(world):
            s = IdentityBatchSampler(codes, 3, 4, seed=5, rank=r, world_size=world,
                                     drop_last=drop_last)
            s.set_epoch(epoch)
            per_rank.append((len(s), list(s)))
        lengths = {n for n, _ in per_rank} | {len(b) for _, b in per_rank}
        assert len(lengths) == 1  # same number of batches on every rank
        id_sets = [set(codes[np.concatenate(b)].tolist()) for _, b in per_rank]
        for i in range(world):
            for j in range(i + 1, world):
                assert not id_sets[i] & id_sets[j]
        if not drop_last:
            covered = set(np.concatenate([np.concatenate(b) for _, b in per_rank]).tolist())
            assert covered == set(range(len(codes)))


def test_mid_epoch_resume_continues_where_it_stopped():
    codes = _codes([8, 8, 8, 8, 8, 8])
    full = _epoch(IdentityBatchSampler(codes, 2, 4, seed=9), 3)
    s = IdentityBatchSampler(codes, 2, 4, seed=9)
    s.set_epoch(3)
    it = iter(s)
    head = [next(it) for _ in range(2)]
    state = s.state_dict()
    assert state["epoch"] == 3 and state["position"] == 2
    fresh = IdentityBatchSampler(codes, 2, 4, seed=0)
    fresh.load_state_dict(state)
    fresh.set_epoch(3)  # what a training loop calls at the start of the epoch: keeps the position
    assert head + list(fresh) == full
    assert fresh.state_dict()["epoch"] == 4 and fresh.state_dict()["position"] == 0
    with pytest.raises(ValueError):
        IdentityBatchSampler(codes[:10], 2, 4).load_state_dict(state)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        IdentityBatchSampler([], 2, 2)
    with pytest.raises(ValueError):
        IdentityBatchSampler([0, 1], 2, 2, rank=2, world_size=2)
    with pytest.raises(ValueError):
        IdentityBatchSampler([0, 0, 0], 2, 2, world_size=2)  # one identity, two ranks


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 15), min_size=1, max_size=12),
    p=st.integers(1, 6),
    k=st.integers(1, 6),
    seed=st.integers(0, 3),
)
def test_properties(sizes, p, k, seed):
    codes = _codes(sizes)
    batches = _epoch(IdentityBatchSampler(codes, p, k, seed=seed))
    flat = np.concatenate(batches)
    assert set(flat.tolist()) == set(range(len(codes)))
    want = min(p, len(sizes))
    for b in batches:
        per_id = Counter(codes[b].tolist())
        assert len(per_id) == want and max(per_id.values()) <= k
        assert len(b) == len(set(b))  # no sample twice within a batch
    chunks = sum(-(-n // k) for n in sizes)
    if chunks % want == 0 and max(-(-n // k) for n in sizes) <= chunks // want:
        assert len(flat) == len(codes)  # exactly once when the chunks fit
