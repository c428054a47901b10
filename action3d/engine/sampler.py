"""The training sampler: DistributedSampler's order, resumable in the middle of an epoch.

One process and N processes draw from the same seeded permutation (rank r takes every N-th
index), so N processes with batch B see, step by step, the same samples as one process with
batch N*B. Each index is yielded as `(epoch, index)`: the dataset seeds its augmentation from
the pair (`numpy.random.default_rng((seed, epoch, index))`), so a sample's crop and flip do not depend on which worker or process loads it, and a
resumed run draws exactly what the uninterrupted one drew.
"""
from __future__ import annotations

from typing import Iterator, Tuple

from torch.utils.data import DistributedSampler, Sampler


class ResumableSampler(Sampler[Tuple[int, int]]):
    def __init__(self, length: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True):
        # DistributedSampler only needs __len__ of the dataset; a range stands in for it.
        self.base = DistributedSampler(range(length), num_replicas=world_size, rank=rank,
                                       shuffle=shuffle, seed=seed, drop_last=True)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        """Select the epoch's permutation; `start` skips this rank's first samples (resume)."""
        self.epoch = epoch
        self.start = start
        self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        indices = list(self.base)[self.start:]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return len(self.base) - self.start

