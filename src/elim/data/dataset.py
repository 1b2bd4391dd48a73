"""A torch Dataset over a :class:`~elim.data.cache.FaceCache`.

Samples are ``(image uint8 (S, S, 3), label float32 (v, a), identity code)``. Batches are
fetched in one indexing operation on the uint8 array (``__getitems__``, which
``torch.utils.data.DataLoader`` uses with a batch sampler), so loading stays cheap without
worker processes. Model inputs come from :class:`elim.models.Preprocess` applied to
the uint8 batch, preferably on the training device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from elim.data.cache import FaceCache

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class FaceDataset(Dataset):
    """Rows ``indices`` (default: all) of ``cache``.

    ``identity_codes[i]`` is the position of sample ``i``'s identity in ``identities``
    (sorted names of the identities present in this dataset), as int64.
    """

    def __init__(self, cache: FaceCache, indices: Sequence[int] | np.ndarray | None = None):
        self.cache = cache
        n = len(cache)
        idx = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        if idx.ndim != 1 or (len(idx) and (idx.min() < -n or idx.max() >= n)):
            raise IndexError(f"indices out of range for a cache of {n} faces")
        self.indices = np.where(idx < 0, idx + n, idx)
        table = cache.table.iloc[self.indices]
        codes, names = pd.factorize(table["identity"].astype(str), sort=True)
        self.identity_codes = codes.astype(np.int64)
        self.identities: list[str] = [str(v) for v in names]
        self.labels = table[["valence", "arousal"]].to_numpy(dtype=np.float32)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def table(self) -> pd.DataFrame:
        """The records of this dataset, in order."""
        return self.cache.table.iloc[self.indices].reset_index(drop=True)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = np.asarray(self.cache.images[int(self.indices[i])])
        return (
            torch.from_numpy(np.ascontiguousarray(image)),
            torch.from_numpy(self.labels[i].copy()),
            int(self.identity_codes[i]),
        )

    def __getitems__(self, positions: Sequence[int]) -> Batch:
        """A whole batch in one fetch: (uint8 (B, S, S, 3), float32 (B, 2), int64 (B,))."""
        pos = np.asarray(positions, dtype=np.int64)
        images = np.asarray(self.cache.images[self.indices[pos]])
        return (
            torch.from_numpy(np.ascontiguousarray(images)),
            torch.from_numpy(self.labels[pos]),
            torch.from_numpy(self.identity_codes[pos]),
        )

    @staticmethod
    def collate(batch: Batch | Sequence[tuple[torch.Tensor, torch.Tensor, int]]) -> Batch:
        """Pass a fetched batch through, or stack a list of samples into one."""
        if isinstance(batch, tuple) and len(batch) == 3 and isinstance(batch[2], torch.Tensor):
            return batch
        images = torch.stack([b[0] for b in batch])
        labels = torch.stack([b[1] for b in batch])
        codes = torch.tensor([int(b[2]) for b in batch], dtype=torch.int64)
        return images, labels, codes
