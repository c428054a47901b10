"""Optimiser and a per-step learning-rate schedule (linear warm-up, then cosine or multi-step).

The schedule is a function of the optimiser step, not the epoch, so that a run resumed from a
mid-epoch checkpoint continues on exactly the same curve.
"""
from __future__ import annotations

import math
from typing import List

import torch
from torch import nn

from action3d.config import OptimConfig, SchedConfig

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float, no_decay_norm_bias: bool) -> List[dict]:
    """Two groups: decayed weights, and (optionally) norm parameters and biases without decay."""
    if not no_decay_norm_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            (no_decay if isinstance(module, _NORM_TYPES) or name == "bias" else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.no_decay_norm_bias)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_factor(step: int, *, cfg: SchedConfig, steps_per_epoch: int, max_epochs: int, base_lr: float) -> float:
    """Multiplier of the base learning rate after `step` optimiser steps."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    total = max(1, max_epochs * steps_per_epoch)
    if step < warmup:
        return cfg.warmup_start_factor + (1.0 - cfg.warmup_start_factor) * step / warmup
    if cfg.name == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        floor = cfg.min_lr / base_lr
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.name == "multistep":
        epoch = step / steps_per_epoch
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedConfig, *, steps_per_epoch: int,
                    max_epochs: int, base_lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, cfg=cfg, steps_per_epoch=steps_per_epoch, max_epochs=max_epochs, base_lr=base_lr),
    )
