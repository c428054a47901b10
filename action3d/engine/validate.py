"""Validation during training: top-1/top-5 (or mAP under data.multi_label) and the loss over the
validation videos, exact across ranks.

Each video gives `data.num_clips` evenly spread centre-cropped clips whose probabilities
(softmax, or a sigmoid per class under multi-label) are averaged, as `action3d eval` does with
`eval.num_clips` (one clip by default). The loss is that of the video's averaged probabilities,
without label smoothing or class weights: -log p(label) (single-label), the mean binary
cross-entropy over the classes (multi-label). mAP needs every video's scores: the ranks gather
them, and every rank computes the same value.
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
from action3d.engine.metrics import mean_average_precision, topk_correct
from action3d.engine.precision import autocast

PROB_FLOOR = 1e-7  # log(0) of a confidently wrong video would make the mean loss infinite


@torch.no_grad()
def validate(model: nn.Module, dataset: Dataset, data_cfg: DataConfig, env: dist_utils.DistEnv, *,
             precision: str = "32", channels_last: bool = True) -> Dict[str, float]:
    """{"top1", "top5"} (or {"map"} under multi-label), "loss", "videos", "failed" over the videos
    that decode; unreadable ones (label -1, or a row of -1) are counted apart."""
    was_training = model.training
    model.eval()
    multi_label = data_cfg.multi_label
    loader = shard_loader(dataset, data_cfg, env, batch_size=data_cfg.batch_size)
    totals = torch.zeros(5, dtype=torch.float64)  # top1 hits, top5 hits, videos, failed, loss sum
    gathered = []                                 # multi-label: (scores, targets) of this rank's videos
    for batch in loader:
        clips, labels = device_batch(batch, data_cfg, env.device, channels_last=channels_last)
        ok = (labels >= 0).all(dim=1) if multi_label else labels >= 0
        totals[3] += (~ok).sum().item()
        if not ok.any():
            continue
        with autocast(precision, env.device):
            scores, _ = score_views(model, clips[ok], "prob", channels_last=channels_last,
                                    multi_label=multi_label)                      # (n, classes)
        scores, labels = scores.float(), labels[ok]
        totals[2] += ok.sum().item()
        if multi_label:
            totals[4] += nn.functional.binary_cross_entropy(
                scores.clamp(PROB_FLOOR, 1 - PROB_FLOOR), labels.float(), reduction="none").mean(dim=1).sum().item()
            gathered.append((scores.cpu(), labels.cpu()))
            continue
        totals[4] += -scores.gather(1, labels[:, None]).clamp(min=PROB_FLOOR).log().sum().item()
        hits = topk_correct(scores, labels, ks=(1, min(5, scores.shape[1])))
        totals[0] += hits[1].sum().item()
        totals[1] += hits[min(5, scores.shape[1])].sum().item()
    if dist.is_initialized():
        totals = totals.to(env.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    model.train(was_training)
    videos = max(totals[2].item(), 1.0)
    metrics = {"loss": totals[4].item() / videos, "videos": int(totals[2].item()), "failed": int(totals[3].item())}
    if multi_label:
        parts = [p for rank in dist_utils.all_gather_objects(gathered) for p in rank]
        scores = torch.cat([s for s, _ in parts]) if parts else torch.zeros(0, 1)
        targets = torch.cat([t for _, t in parts]) if parts else torch.zeros(0, 1)
        return {"map": mean_average_precision(scores, targets), **metrics}
    return {"top1": totals[0].item() / videos, "top5": totals[1].item() / videos, **metrics}
