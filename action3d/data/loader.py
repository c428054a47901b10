"""`build_loader`: a DataLoader configured from `data_cfg`, seeded, optionally distributed."""
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from action3d.data.dataset import VideoDataset


def build_loader(dataset: VideoDataset, data_cfg, *, train: bool, distributed: bool = False,
                 seed: int = 0, batch_size: Optional[int] = None,
                 drop_last: Optional[bool] = None) -> DataLoader:
    """Batches `(clips uint8 (N,C,T,H,W) or (N,V,C,T,H,W), labels (N,), indices (N,))`.

    train: shuffle and drop the last partial batch (by default). distributed: each rank reads its
    share through a `DistributedSampler` (the trainer calls `loader.sampler.set_epoch(epoch)`; in
    evaluation it pads with repeated samples, which the evaluator removes by index). seed: fixes
    the shuffling and every worker's augmentation generator (torch's per-worker seed), so the same
    seed gives the same batches.
    """
    rank = dist.get_rank() if distributed and dist.is_initialized() else 0
    generator = torch.Generator().manual_seed(seed + rank)  # per-rank augmentation streams
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=False)
    elif train:
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = SequentialSampler(dataset)
    workers = data_cfg.num_workers
    dataset.set_seed(seed + rank)  # the generator used when there are no workers
    options = {}
    if workers > 0:
        options = {"persistent_workers": bool(data_cfg.persistent_workers),
                   "prefetch_factor": data_cfg.prefetch_factor}
    return DataLoader(
        dataset,
        batch_size=batch_size or data_cfg.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(data_cfg.pin_memory) and torch.cuda.is_available(),
        drop_last=train if drop_last is None else drop_last,
        generator=generator,
        **options,
    )
