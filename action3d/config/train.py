"""Typed schemas of the `optim`, `sched`, `trainer` and `eval` sections, each field with its rules."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

from action3d.config.checks import fail
from action3d.config.option import Context, Rule, all_of, only_when, option
from action3d.config.runtime import DEVICES, PRECISIONS

_SGD = only_when("name", "sgd", reason="it is an SGD setting")
_ADAMW = only_when("name", "adamw", reason="it is an AdamW setting")
_MULTISTEP = only_when("name", "multistep", reason="it is a multistep setting")


@dataclass
class OptimConfig:
    name: str = option("sgd", choices=("sgd", "adamw"), help="the optimiser")
    lr: float = option(0.04, low=0.0, low_open=True,
                       help="learning rate for the global batch (8 clips by default); scale it linearly")
    momentum: float = option(0.9, low=0.0, high=1.0, applies=_SGD, help="SGD momentum")
    nesterov: bool = option(False, applies=_SGD, help="SGD: Nesterov momentum")
    weight_decay: float = option(1e-4, low=0.0, help="decoupled (AdamW) or L2 (SGD) weight decay")
    betas: List[float] = option(factory=lambda: [0.9, 0.999], length=2, items=Rule(low=0.0, high=1.0, high_open=True),
                                applies=_ADAMW, help="AdamW's betas")
    no_decay_norm_bias: bool = option(True, help="no weight decay on norm weights and biases")
    backbone_lr_mult: float = option(1.0, low=0.0,
                                     help="the backbone's learning rate relative to the head's (fine-tuning)")


def _milestones_reached(ctx: Context) -> Optional[str]:
    """A milestone after the last epoch would never fire."""
    late = [m for m in ctx.section.milestones if m >= ctx.root.trainer.max_epochs]
    if late:
        end = ctx.root.trainer.max_epochs
        return f"milestone {late[0]} is not before the end of training (trainer.max_epochs={end})"
    return None


@dataclass
class SchedConfig:
    name: str = option("cosine", choices=("cosine", "multistep", "constant"), help="learning-rate schedule")
    warmup_epochs: float = option(1.0, low=0.0, help="linear warm-up, in epochs (fractions allowed)")
    warmup_start_factor: float = option(0.1, low=0.0, low_open=True, high=1.0,
                                        help="the warm-up starts at this share of optim.lr")
    milestones: List[int] = option(factory=lambda: [30, 40], items=Rule(low=1, integer=True), increasing=True,
                                   applies=all_of(_MULTISTEP, _milestones_reached),
                                   help="multistep: epochs at which the rate is multiplied by gamma")
    gamma: float = option(0.1, low=0.0, high=1.0, applies=_MULTISTEP, help="multistep: the factor at each milestone")
    min_lr: float = option(0.0, low=0.0, applies=only_when("name", "cosine", reason="it is a cosine setting"),
                           help="cosine: the rate at the end")


def _resume_file(value: str, ctx: Context) -> None:
    from action3d.config.paths import existing_file

    if value != "auto":
        existing_file(ctx.key, value, hint="or trainer.resume=auto")


def _device_available(value: str, ctx: Context) -> None:
    """trainer.device=cuda needs CUDA: torch is imported only when it is asked for."""
    if value != "cuda":
        return
    import torch

    from action3d.config.runtime import check_device

    check_device(value, cuda_available=torch.cuda.is_available(), key=ctx.key)


def _sync_bn_on_cuda(value: bool, ctx: Context) -> None:
    if not value:
        return
    import torch

    from action3d.config.runtime import check_sync_bn, resolve_device_type

    device = resolve_device_type(ctx.section.device, cuda_available=torch.cuda.is_available())
    check_sync_bn(value, device_type=device, key=ctx.key)


def _under_torchrun(ctx: Context) -> Optional[str]:
    if not ctx.section.sync_bn or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    return "it synchronises BatchNorm across DDP processes and this is one process (start it with torchrun)"


def _not_with_balanced_sampler(value: str, ctx: Context) -> None:
    data = getattr(ctx.root, "data", None)
    if value == "auto" and data is not None and data.sampler == "balanced":
        fail(ctx.key, value, "data.sampler=balanced already draws every class equally often; weighting the loss "
                             "too would make a rare class count the imbalance ratio times more; use one")


@dataclass
class TrainerConfig:
    max_epochs: int = option(12, low=1, integer=True, help="epochs to train")
    precision: str = option("auto", choices=PRECISIONS,
                            help="auto: bf16 autocast where the CPU/GPU runs bf16 natively, else fp32")
    seed: int = option(0, low=0, integer=True,
                       help="seeds the initial weights, the sampler's order and every sample's augmentation")
    device: str = option("auto", choices=DEVICES, preflight=_device_available, help="auto: CUDA when there is one")
    val_every: int = option(1, low=1, integer=True, help="validate every this many epochs (and after the last)")
    ckpt_every: int = option(0, low=0, integer=True, help="also keep epoch_N.pt every this many epochs (0: off)")
    ckpt_every_minutes: float = option(30.0, low=0.0, help="also write last.pt mid-epoch this often (0: off)")
    resume: Optional[str] = option(None, preflight=_resume_file, help="auto (this run directory's last.pt) or PATH")
    compile: bool = option(False, help="torch.compile the model")
    channels_last: bool = option(True, help="channels_last_3d memory layout")
    sync_bn: bool = option(False, applies=_under_torchrun, preflight=_sync_bn_on_cuda,
                           help="SyncBatchNorm across DDP processes (CUDA, torchrun)")
    precise_bn_batches: int = option(0, low=0, integer=True,
                                     help="recompute BN statistics over this many batches before validating (0: off)")
    grad_clip: float = option(0.0, low=0.0, help="max gradient norm (0: off)")
    accum_steps: int = option(1, low=1, integer=True, help="micro-batches per optimiser step")
    label_smoothing: float = option(0.0, low=0.0, high=1.0, high_open=True, help="cross-entropy label smoothing")
    class_weights: str = option("none", choices=("none", "auto"), check=_not_with_balanced_sampler,
                                help="auto: the loss weighs each class by its inverse training frequency")
    log_every: int = option(10, low=1, integer=True, help="optimiser steps between logged points")
    max_steps: int = option(0, low=0, integer=True, help="stop after this many optimiser steps (0: no limit)")
    data_wait_warn: float = option(0.3, low=0.0, high=1.0,
                                   help="warn when the step waits for data more than this share of the time")


@dataclass
class InferenceConfig:
    """The `trainer` keys that apply when a trained model is only run (eval, predict, ...)."""
    device: str = option("auto", choices=DEVICES, preflight=_device_available, help="auto: CUDA when there is one")
    precision: str = option("32", choices=PRECISIONS, help="autocast while scoring")
    channels_last: bool = option(True, help="channels_last_3d memory layout")


@dataclass
class EvalConfig:
    num_clips: int = option(1, low=1, integer=True, help="clips per video, spread evenly")
    num_crops: int = option(1, choices=(1, 3, 10), help="1 (centre) | 3 (along the long side) | 10")
    average: str = option("prob", choices=("prob", "score"), commands=("eval", "predict", "explain"),
                          help="prob: mean of softmax | score: mean of logits")
    batch_size: int = option(4, low=1, integer=True, commands=("eval",), help="videos scored at once")
