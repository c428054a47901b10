"""The training samplers: DistributedSampler's order (`ResumableSampler`) or class-balanced draws
(`BalancedSampler`), both resumable in the middle of an epoch.

One process and N processes draw from the same seeded permutation (rank r takes every N-th
index), so N processes with batch B see, step by step, the same samples as one process with
batch N*B. Each index is yielded as `(epoch, index)`: the dataset seeds its augmentation from
the pair (`numpy.random.default_rng((seed, epoch, index))`), so a sample's crop and flip do not
depend on which worker or process loads it, and a resumed run draws exactly what the
uninterrupted one drew.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler, Sampler

from action3d.errors import Action3dError


class ResumableSampler(Sampler[tuple[int, int]]):
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

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(self.base)[self.start:]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return len(self.base) - self.start



def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    """Training videos per class (labels `0..num_classes-1`)."""
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    return counts


class BalancedSampler(Sampler[tuple[int, int]]):
    """Class-balanced sampling with replacement (`data.sampler=balanced`), for imbalanced data.

    Each draw picks a class uniformly, then one of its videos uniformly (weights 1/count of the
    video's class), so a rare class is seen as often as a frequent one. An epoch has as many
    draws as the dataset has videos. The epoch's stream is a function of (seed, epoch) alone;
    rank r of N takes draws r, r+N, ... of that one stream (disjoint parts, as
    `ResumableSampler`), and `set_epoch(epoch, start=k)` skips this rank's first k draws (resume).

    Items are `(key, index)` like `ResumableSampler`'s `(epoch, index)`, but the dataset seeds a
    sample's augmentation from that pair and a rare class's video is drawn many times an epoch:
    so that each draw gets its own crop, `key` is the draw's number over the whole run
    (`epoch * draws_per_epoch + position`), unique and a function of (epoch, position) alone.
    """

    def __init__(self, labels: Sequence[int], *, classes: Sequence[str], rank: int = 0, world_size: int = 1,
                 seed: int = 0):
        counts = class_counts(labels, len(classes))
        empty = [name for name, count in zip(classes, counts, strict=True) if count == 0]
        if empty:
            raise Action3dError(f"data.sampler=balanced: {len(empty)} of {len(classes)} classes have no training "
                                f"videos ({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}); a balanced "
                                "sampler cannot draw them: remove them from the class list or use data.sampler=random")
        self.weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.float64)
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.per_rank = len(labels) // world_size  # whole rounds only, as DistributedSampler(drop_last=True)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def stream(self) -> torch.Tensor:
        """The epoch's draws for all ranks together (dataset indices)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.multinomial(self.weights, self.per_rank * self.world_size, replacement=True,
                                 generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        total = self.per_rank * self.world_size
        positions = range(self.rank, total, self.world_size)[self.start:]
        mine = self.stream()[self.rank::self.world_size][self.start:]
        return iter([(self.epoch * total + p, int(i)) for p, i in zip(positions, mine, strict=True)])

    def __len__(self) -> int:
        return self.per_rank - self.start


def inverse_frequency_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Loss weight per class for `trainer.class_weights=auto`: N / (K * count) over the K classes
    that have videos (so the average over the training videos is 1), 0 for a class with none."""
    counts = class_counts(labels, num_classes)
    present = sum(1 for c in counts if c)
    return torch.tensor([len(labels) / (present * c) if c else 0.0 for c in counts], dtype=torch.float32)
