"""Typed schemas of the `optim`, `sched`, `trainer` and `eval` config sections."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class OptimConfig:
    name: str = "sgd"                     # sgd | adamw
    lr: float = 0.04                      # for the global batch (8 clips by default); scale linearly
    momentum: float = 0.9                 # sgd
    nesterov: bool = False                # sgd
    weight_decay: float = 1e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # adamw
    no_decay_norm_bias: bool = True       # no weight decay on norm weights and biases
    backbone_lr_mult: float = 1.0         # backbone (backbone.*) rate relative to the head's (cls_head.*)


@dataclass
class SchedConfig:
    name: str = "cosine"                  # cosine | multistep | constant
    warmup_epochs: float = 1.0
    warmup_start_factor: float = 0.1
    milestones: List[int] = field(default_factory=lambda: [30, 40])  # multistep, in epochs
    gamma: float = 0.1                    # multistep
    min_lr: float = 0.0                   # cosine


@dataclass
class TrainerConfig:
    max_epochs: int = 12
    precision: str = "auto"               # auto (bf16 where native, else fp32) | 32 | bf16 | 16
    seed: int = 0
    device: str = "auto"                  # auto | cpu | cuda
    val_every: int = 1
    ckpt_every: int = 0                   # also keep epoch_N.pt every k epochs (0: off)
    ckpt_every_minutes: float = 30.0      # also write last.pt mid-epoch this often (0: off)
    resume: Optional[str] = None          # auto | PATH
    compile: bool = False
    channels_last: bool = True
    sync_bn: bool = False
    precise_bn_batches: int = 0           # recompute BN statistics over this many batches (0: off)
    grad_clip: float = 0.0                # max gradient norm (0: off)
    accum_steps: int = 1
    label_smoothing: float = 0.0
    class_weights: str = "none"           # none | auto: inverse-frequency weighted loss (imbalanced data)
    log_every: int = 10                   # steps between metrics.jsonl / TensorBoard points
    max_steps: int = 0                    # stop after this many optimiser steps (0: no limit)
    data_wait_warn: float = 0.3


@dataclass
class InferenceConfig:
    """The `trainer` keys that apply when a trained model is only run (eval, predict, ...)."""
    device: str = "auto"                  # auto | cpu | cuda
    precision: str = "32"                 # auto | 32 | bf16 | 16 (autocast while scoring)
    channels_last: bool = True


@dataclass
class EvalConfig:
    num_clips: int = 1
    num_crops: int = 1                    # 1 (centre) | 3 (along the long side) | 10
    average: str = "prob"                 # prob: mean of softmax | score: mean of logits
    batch_size: int = 4
