"""Optimiser (parameter groups: weight decay, backbone/head learning rates) and a per-step
learning-rate schedule (linear warm-up, then cosine or multi-step).

The schedule is a function of the optimiser step, not the epoch, so that a run resumed from a
mid-epoch checkpoint continues on exactly the same curve.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from action3d.config import OptimConfig, SchedConfig
from action3d.errors import Action3dError

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float, no_decay_norm_bias: bool) -> list[dict]:
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


def split_backbone(groups: list[dict], model: nn.Module, *, lr: float, backbone_lr_mult: float) -> list[dict]:
    """Each group split into the head's parameters (`cls_head.*`, learning rate `lr`) and the
    backbone's (`backbone.*` and anything else, `lr * backbone_lr_mult`), head groups first (the
    logged `train/lr` is group 0's). The schedule multiplies every group's initial rate by the
    same factor, so the ratio holds all run long. A multiplier of 1 keeps the groups as they are
    (the optimiser state of earlier checkpoints still fits)."""
    if backbone_lr_mult == 1.0:
        return groups
    head = getattr(model, "cls_head", None)
    if not isinstance(head, nn.Module):
        raise Action3dError(f"optim.backbone_lr_mult={backbone_lr_mult:g} needs a recognizer with a cls_head "
                            f"(got {type(model).__name__}); leave it at 1.0")
    head_ids = {id(p) for p in head.parameters()}
    heads, backbones = [], []
    for group in groups:
        mine = [p for p in group["params"] if id(p) in head_ids]
        rest = [p for p in group["params"] if id(p) not in head_ids]
        heads.append({**group, "params": mine, "lr": lr})
        backbones.append({**group, "params": rest, "lr": lr * backbone_lr_mult})
    return [g for g in heads + backbones if g["params"]]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.no_decay_norm_bias)
    groups = split_backbone(groups, model, lr=cfg.lr, backbone_lr_mult=cfg.backbone_lr_mult)
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
