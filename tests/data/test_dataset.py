"""FaceDataset over a cache, with the identity batch sampler in a DataLoader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from elim.data.cache import FaceCache
from elim.data.dataset import FaceDataset
from elim.data.sampler import IdentityBatchSampler


def _cache(n=12) -> FaceCache:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    table = pd.DataFrame({
        "path": [f"x{i}.png" for i in range(n)],
        "identity": [["zed", "amy", "bob"][i % 3] for i in range(n)],
        "valence": np.linspace(-1, 1, n), "arousal": np.linspace(1, -1, n)})
    return FaceCache.from_arrays(images, table)


def test_items_and_identity_codes():
    cache = _cache()
    ds = FaceDataset(cache, indices=[0, 1, 3, 4, 7])
    assert len(ds) == 5 and ds.identities == ["amy", "zed"]  # bob is absent from this subset
    assert ds.identity_codes.dtype == np.int64 and ds.identity_codes.tolist() == [1, 0, 1, 0, 0]
    image, label, code = ds[2]
    assert image.dtype == torch.uint8 and image.shape == (8, 8, 3)
    assert torch.equal(image, torch.from_numpy(cache.images[3]))
    assert label.dtype == torch.float32 and torch.allclose(
        label, torch.tensor([cache.table.valence[3], cache.table.arousal[3]]))
    assert code == 1
    assert ds.table.path.tolist() == ["x0.png", "x1.png", "x3.png", "x4.png", "x7.png"]


def test_batched_fetch_matches_single_items():
    ds = FaceDataset(_cache())
    x, y, c = ds.__getitems__([4, 0, 9])
    singles = FaceDataset.collate([ds[i] for i in (4, 0, 9)])
    assert torch.equal(x, singles[0]) and torch.equal(y, singles[1]) and torch.equal(c, singles[2])
    assert x.shape == (3, 8, 8, 3) and c.dtype == torch.int64


def test_dataloader_with_identity_batches():
    ds = FaceDataset(_cache(30))
    sampler = IdentityBatchSampler(ds.identity_codes, n_identities=2, samples_per_identity=3)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=FaceDataset.collate)
    batches = list(loader)
    assert len(batches) == len(sampler)
    for x, y, c in batches:
        assert x.dtype == torch.uint8 and y.shape == (len(c), 2)
        assert len(torch.unique(c)) == 2
