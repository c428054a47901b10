"""Precise BatchNorm statistics (PySlowFast's `BN.USE_PRECISE_STATS`).

During training, BN's running mean/variance is an exponential average over batches computed by
ever-changing weights; with small per-process batches it can be far from the statistics the
current weights produce, and validation (which uses the running statistics) then reports much
worse accuracy than the network has. Before validating, recompute them as a plain average over
a number of training batches with the weights frozen.

`torch.optim.swa_utils.update_bn` does the same but resets every BN layer, frozen ones
(`frozen_stages`, `norm_eval`) included; here only layers that are training are recomputed.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any layer keeps running statistics (a GroupNorm model has none to recompute)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Average the BN statistics of `model` over `batches` (normalised inputs); returns the count."""
    was_training = model.training
    model.train()  # frozen stages / norm_eval keep their BN in eval mode (ResNet3d.train)
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    momenta = {layer: layer.momentum for layer in layers}
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: every batch weighs the same
    count = 0
    # Train-mode forwards draw dropout masks; on a forked generator they leave training's random
    # stream as it was, so when (and whether) validation runs does not change the trained weights.
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        for x in batches:
            model(x)
            count += 1
    for layer, momentum in momenta.items():
        layer.momentum = momentum
    if dist.is_initialized() and count:
        for layer in layers:  # the same statistics on every rank: the mean over ranks
            for stat in (layer.running_mean, layer.running_var):
                dist.all_reduce(stat)
                stat /= dist.get_world_size()
    model.train(was_training)
    return count
