"""Identity-aware batches for identity matching: P identities × up to K samples each.

ELIM matches the features of one identity against those of others *within a batch*
(Sec. 3, Eqs. 3–4), so a batch needs several identities with several samples each. A plain
shuffle gives batches where most identities appear once; this sampler builds each batch
from ``n_identities`` (P) distinct identities and a *chunk* of up to
``samples_per_identity`` (K) samples of each.

Per epoch (all randomness from ``(seed, epoch)``, so every rank computes the same plan):

1. each identity's samples are shuffled and split into ``ceil(n / K)`` near-equal chunks,
   so every sample lies in exactly one chunk;
2. identities are dealt to ranks, balancing their chunk counts (disjoint identity sets);
3. each rank fills batches with P chunks of distinct identities, drawn with probability
   proportional to the identity's remaining chunks; an identity with as many chunks left
   as there are batches left is always taken, so no identity is left over at the end.

Every sample is then used **exactly once** per epoch, except when the chunks cannot all be
placed in batches of P distinct identities — the last batch when the number of chunks is
not a multiple of P, or an identity with more chunks than ``total / P``. Such batches are
completed with *filler* chunks (random samples of other identities of the rank, used a
second time), so every batch has ``min(P, identities)`` identities. With
``drop_last=True`` those batches are dropped instead (no repeats; a few samples unseen).
All ranks yield the same number of batches (filler batches extend the shorter ranks; with
``drop_last`` the longer ones are cut), so DDP never waits for a missing batch.

The sampler advances to the next epoch by itself after a complete pass; ``set_epoch``
selects one explicitly. ``state_dict`` captures the epoch and the number of batches already
yielded for a mid-epoch resume (with prefetching DataLoader workers, store the number of
batches the training loop *consumed* instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class IdentityBatchSampler(Sampler[list[int]]):
    """Batch sampler over positions ``0..len(identity_codes)-1`` (see module docstring)."""

    def __init__(
        self,
        identity_codes: Sequence[int] | np.ndarray,
        n_identities: int = 10,
        samples_per_identity: int = 10,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        codes = np.asarray(identity_codes)
        if codes.ndim != 1 or len(codes) == 0:
            raise ValueError("identity_codes must be a non-empty 1-D array")
        if n_identities < 1 or samples_per_identity < 1:
            raise ValueError("n_identities and samples_per_identity must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        _, inverse = np.unique(codes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        self._members = np.split(order.astype(np.int64), bounds)
        if world_size > len(self._members):
            raise ValueError(
                f"{len(self._members)} identities cannot be shared by {world_size} ranks"
            )
        self.n_samples = len(codes)
        self.n_identities = int(n_identities)
        self.samples_per_identity = int(samples_per_identity)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._position = 0
        self._plan: tuple[int, list[np.ndarray]] | None = None

    # ------------------------------------------------------------------ planning
    def _chunks(self, rng: np.random.Generator) -> list[list[np.ndarray]]:
        k = self.samples_per_identity
        return [np.array_split(rng.permutation(m), math.ceil(len(m) / k)) for m in self._members]

    def _deal(self, counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Identities per rank: largest chunk counts first, each to the least loaded rank."""
        if self.world_size == 1:
            return [np.arange(len(counts))]
        shuffled = rng.permutation(len(counts))
        order = shuffled[np.argsort(-counts[shuffled], kind="stable")]
        load = np.zeros(self.world_size, dtype=np.int64)
        owner = np.empty(len(counts), dtype=np.int64)
        for i in order:
            r = int(np.argmin(load))
            owner[i] = r
            load[r] += counts[i]
        return [np.sort(np.flatnonzero(owner == r)) for r in range(self.world_size)]

    def _filler(self, ids: np.ndarray, exclude: set[int], n: int, rng) -> list[np.ndarray]:
        """``n`` chunks of random samples from identities of ``ids`` not in ``exclude``."""
        pool = np.array([i for i in ids if int(i) not in exclude], dtype=np.int64)
        out = []
        for i in rng.permutation(pool)[:n]:
            m = self._members[i]
            out.append(rng.choice(m, size=min(self.samples_per_identity, len(m)), replace=False))
        return out

    def _schedule(self, ids: np.ndarray, chunks, rng) -> tuple[list[np.ndarray], int]:
        """Batches of one rank and how many of them needed no filler (a prefix)."""
        p = min(self.n_identities, len(ids))
        rem = np.array([len(chunks[i]) for i in ids], dtype=np.int64)
        taken = np.zeros(len(ids), dtype=np.int64)
        total = int(rem.sum())
        batches: list[np.ndarray] = []
        complete = None
        while total > 0:
            left = max(math.ceil(total / p), int(rem.max()))  # batches still needed
            alive = rem > 0
            if int(alive.sum()) >= p:
                forced = np.flatnonzero(rem >= left)
                others = np.flatnonzero(alive & (rem < left))
                keys = np.log(rng.random(len(others))) / rem[others]  # weighted, no replacement
                pick = others[np.argsort(-keys, kind="stable")[: p - len(forced)]]
                chosen = rng.permutation(np.concatenate([forced, pick]))
            else:
                chosen = rng.permutation(np.flatnonzero(alive))
                complete = len(batches) if complete is None else complete
            parts = [chunks[ids[j]][taken[j]] for j in chosen]
            taken[chosen] += 1
            rem[chosen] -= 1
            total -= len(chosen)
            if len(chosen) < p:
                parts += self._filler(ids, {int(ids[j]) for j in chosen}, p - len(chosen), rng)
            batches.append(np.concatenate(parts))
        return batches, len(batches) if complete is None else complete

    def _build_plan(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        chunks = self._chunks(rng)
        shares = self._deal(np.array([len(c) for c in chunks]), rng)
        plans = []
        for r, ids in enumerate(shares):
            rank_rng = np.random.default_rng([self.seed, epoch, 1 + r])
            batches, complete = self._schedule(ids, chunks, rank_rng)
            plans.append((ids, batches, complete, rank_rng))
        if self.drop_last:
            n = min(c for _, _, c, _ in plans)
            return plans[self.rank][1][:n]
        n = max(len(b) for _, b, _, _ in plans)
        ids, batches, _, rank_rng = plans[self.rank]
        p = min(self.n_identities, len(ids))
        while len(batches) < n:
            batches.append(np.concatenate(self._filler(ids, set(), p, rank_rng)))
        return batches

    def _current_plan(self) -> list[np.ndarray]:
        if self._plan is None or self._plan[0] != self.epoch:
            self._plan = (self.epoch, self._build_plan(self.epoch))
        return self._plan[1]

    # ------------------------------------------------------------------ sampler API
    def __iter__(self) -> Iterator[list[int]]:
        plan = self._current_plan()
        while self._position < len(plan):
            batch = plan[self._position]
            self._position += 1
            yield batch.tolist()
        self.epoch += 1
        self._position = 0

    def __len__(self) -> int:
        """Batches in the current epoch (all of them, also when resuming mid-epoch)."""
        return len(self._current_plan())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (a different one restarts at its first batch)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._position = 0

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self._position,
            "seed": self.seed,
            "n_samples": self.n_samples,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume at ``state['epoch']``, after its first ``state['position']`` batches."""
        if int(state.get("n_samples", self.n_samples)) != self.n_samples:
            raise ValueError(
                f"sampler state is for {state['n_samples']} samples, this dataset has "
                f"{self.n_samples}"
            )
        self.seed = int(state.get("seed", self.seed))
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
