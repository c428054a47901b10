"""Validation during training: top-1/top-5 over the validation videos, exact across ranks.

Each video gives `data.num_clips` evenly spread centre-cropped clips whose softmax scores are
averaged, as `action3d eval` does with `eval.num_clips` (one clip by default).
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from action3d.config import DataConfig
from action3d.engine import distributed as dist_utils
from action3d.engine.data import device_batch, shard_loader
from action3d.engine.inference import score_views
from action3d.engine.metrics import topk_correct
from action3d.engine.precision import autocast


@torch.no_grad()
def validate(model: nn.Module, dataset: Dataset, data_cfg: DataConfig, env: dist_utils.DistEnv, *,
             precision: str = "32", channels_last: bool = True) -> Dict[str, float]:
    """Top-1/top-5 over the videos that decode; unreadable ones (label -1) are counted apart."""
    was_training = model.training
    model.eval()
    loader = shard_loader(dataset, data_cfg, env, batch_size=data_cfg.batch_size)
    totals = torch.zeros(4, dtype=torch.float64)  # top1 hits, top5 hits, videos, failed
    for batch in loader:
        clips, labels = device_batch(batch, data_cfg, env.device, channels_last=channels_last)
        ok = labels >= 0
        totals[3] += (~ok).sum().item()
        if not ok.any():
            continue
        with autocast(precision, env.device):
            scores, _ = score_views(model, clips[ok], "prob", channels_last=channels_last)  # (n, classes)
        hits = topk_correct(scores.float(), labels[ok], ks=(1, min(5, scores.shape[1])))
        totals[0] += hits[1].sum().item()
        totals[1] += hits[min(5, scores.shape[1])].sum().item()
        totals[2] += ok.sum().item()
    if dist.is_initialized():
        totals = totals.to(env.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    model.train(was_training)
    videos = max(totals[2].item(), 1.0)
    return {"top1": totals[0].item() / videos, "top5": totals[1].item() / videos,
            "videos": int(totals[2].item()), "failed": int(totals[3].item())}
