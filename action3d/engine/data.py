"""The trainer's and evaluator's side of the data path: datasets from the config, loaders with
the engine's samplers, and moving a uint8 batch to the device as normalised floats."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Sampler

from action3d.data.annotations import has_split
from action3d.data.dataset import build_dataset
from action3d.data.synthetic import ensure_synthetic
from action3d.data.transforms import normalize
from action3d.engine import distributed as dist_utils
from action3d.engine.sampler import ResumableSampler


def resolve_data(data_cfg: DictConfig, env: Optional[dist_utils.DistEnv] = None) -> DictConfig:
    """Fill in the synthetic dataset's generated paths (rank 0 generates, the others wait)."""
    if data_cfg.format != "synthetic":
        return data_cfg
    main = env is None or env.is_main
    if main:
        resolved = ensure_synthetic(data_cfg)
    dist_utils.barrier()
    return resolved if main else ensure_synthetic(data_cfg)  # the others only fill in the paths

def build_train_val(data_cfg: DictConfig, env: dist_utils.DistEnv, *, seed: int = 0
                    ) -> Tuple[Dataset, Optional[Dataset], List[str], DictConfig]:
    data_cfg = resolve_data(data_cfg, env)
    train_set = build_dataset(data_cfg, "train", train=True, seed=seed)
    val_set = build_dataset(data_cfg, "val", train=False) if has_split(data_cfg, "val") else None
    return train_set, val_set, list(train_set.classes), data_cfg


def make_loader(dataset: Dataset, data_cfg: DictConfig, *, sampler: Sampler, batch_size: int,
                drop_last: bool, persistent: bool) -> DataLoader:
    workers = data_cfg.num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=data_cfg.pin_memory and torch.cuda.is_available(),
        persistent_workers=persistent and data_cfg.persistent_workers and workers > 0,
        prefetch_factor=data_cfg.prefetch_factor if workers > 0 else None,
        drop_last=drop_last,
        # Its own generator: creating an iterator must not draw from the global torch RNG (that
        # would shift dropout's random stream whenever a validation loader starts, and a resumed
        # run would diverge). Augmentation is seeded per sample by the dataset, not by workers.
        generator=torch.Generator().manual_seed(0),
    )


def train_loader(dataset: Dataset, data_cfg: DictConfig, env: dist_utils.DistEnv, *, seed: int) -> DataLoader:
    sampler = ResumableSampler(len(dataset), rank=env.rank, world_size=env.world_size, seed=seed)
    return make_loader(dataset, data_cfg, sampler=sampler, batch_size=data_cfg.batch_size, drop_last=True,
                       persistent=True)


def shard_loader(dataset: Dataset, data_cfg: DictConfig, env: dist_utils.DistEnv, *, batch_size: int) -> DataLoader:
    """Each video exactly once over all ranks (evaluation)."""
    sampler = dist_utils.ShardSampler(len(dataset), env.rank, env.world_size)
    return make_loader(dataset, data_cfg, sampler=sampler, batch_size=batch_size, drop_last=False, persistent=False)


def device_batch(batch, data_cfg: DictConfig, device: torch.device, *, channels_last: bool
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips (N, C, T, H, W) or views (N, V, C, T, H, W) -> normalised float on `device`."""
    clips, labels = batch[0], batch[1]
    clips = clips.to(device, non_blocking=True)
    x = normalize(clips, data_cfg.mean, data_cfg.std)
    if channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x, labels.to(device, non_blocking=True)
