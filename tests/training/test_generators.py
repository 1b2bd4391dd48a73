"""NamedGenerators: streams per name and process, saved and continued."""

from __future__ import annotations

import torch

from elim.training.generators import RANK_SEED_STRIDE, NamedGenerators


def test_streams_by_name_and_rank():
    single, first, second = NamedGenerators(7), NamedGenerators(7, rank=0), NamedGenerators(7, 1)
    a = torch.rand(4, generator=single.get("augment", "cpu"))
    assert torch.equal(a, torch.rand(4, generator=first.get("augment", "cpu")))
    assert not torch.equal(a, torch.rand(4, generator=second.get("augment", "cpu")))
    assert not torch.equal(a, torch.rand(4, generator=NamedGenerators(7).get("matching", "cpu")))
    expected = torch.Generator().manual_seed(7 * 1000 + 1 + RANK_SEED_STRIDE)
    assert torch.equal(torch.rand(4, generator=NamedGenerators(7, 1).get("augment", "cpu")),
                       torch.rand(4, generator=expected))
    assert single.get("augment", torch.device("cpu")) is single.get("augment", "cpu")


def test_state_round_trip_continues_the_streams():
    gens = NamedGenerators(3)
    torch.rand(5, generator=gens.get("augment", "cpu"))
    torch.rand(2, generator=gens.get("matching", "cpu"))
    state = gens.state_dict()
    assert set(state) == {"augment@cpu", "matching@cpu"}
    expected = [torch.rand(3, generator=gens.get(n, "cpu")) for n in ("augment", "matching")]
    again = NamedGenerators(3)
    again.load_state_dict(state)
    got = [torch.rand(3, generator=again.get(n, "cpu")) for n in ("augment", "matching")]
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
