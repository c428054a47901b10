"""Typed schema of the `model` config group (conf/model/*.yaml fill it in).

Field names and meanings follow mmaction2's ResNet3d (see DESIGN.md); list fields hold one entry
per stage. The rules (`action3d.config.rules.check_model`) are the ones `ResNet3d` applies to its
own arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


@dataclass
class ModelConfig:
    name: str = "tiny"                    # preset name, shown in logs and reports
    arch: str = "resnet3d"                # resnet3d | slowfast
    depth: int = 18                       # 18 | 34 | 50 | 101 | 152
    num_classes: Optional[int] = None     # None: taken from the dataset's class list
    pretrained: Optional[str] = None      # checkpoint path of any supported kind
    pretrained2d: bool = True             # allow inflating 2D ImageNet weights
    stage_blocks: Optional[List[int]] = None
    in_channels: int = 3
    base_channels: int = 64
    out_indices: Optional[List[int]] = None  # stages whose features are returned (None: the last stage)
    num_stages: int = 4
    spatial_strides: List[int] = field(default_factory=lambda: [1, 2, 2, 2])
    temporal_strides: List[int] = field(default_factory=lambda: [1, 1, 1, 1])
    dilations: List[int] = field(default_factory=lambda: [1, 1, 1, 1])
    conv1_kernel: List[int] = field(default_factory=lambda: [3, 7, 7])
    conv1_stride: List[int] = field(default_factory=lambda: [1, 2])   # (temporal, spatial)
    pool1_stride: List[int] = field(default_factory=lambda: [1, 2])   # (temporal, spatial)
    with_pool1: bool = True
    with_pool2: bool = True
    style: str = "pytorch"                # pytorch | caffe
    advanced: bool = False
    shortcut_type: str = "B"              # B: 1x1x1 conv + BN, A: parameter-free (Hara et al.)
    frozen_stages: int = -1
    inflate: List[Any] = field(default_factory=lambda: [1, 1, 1, 1])  # per stage: int or per-block list
    inflate_style: str = "3x1x1"          # 3x1x1 | 3x3x3
    non_local: List[Any] = field(default_factory=lambda: [0, 0, 0, 0])  # like inflate
    non_local_mode: str = "embedded_gaussian"  # embedded_gaussian | dot_product
    non_local_sub_sample: bool = False
    non_local_use_scale: bool = False     # embedded_gaussian: divide affinities by sqrt(C')
    norm_eval: bool = False
    with_cp: bool = False
    zero_init_residual: bool = True
    dropout: float = 0.5
    # SlowFast only: the top-level fields describe the slow pathway.
    resample_rate: int = 8                # tau: the slow pathway takes every tau-th input frame
    speed_ratio: int = 8                  # alpha: fast pathway frame rate / slow pathway frame rate
    channel_ratio: int = 8                # beta inverse: slow channels / fast channels
    fusion_kernel: int = 5                # temporal kernel of the lateral connections
    fast_conv1_kernel: List[int] = field(default_factory=lambda: [5, 7, 7])
    fast_inflate: List[Any] = field(default_factory=lambda: [1, 1, 1, 1])
