"""A `model` config -> the builders its family injects into ResNet3d, and its head.

The one place where the family keys (`arch=x3d`, `conv_type`, `bottleneck_mode`, `norm_eps`, the
X3D keys) become modules: `build_backbone` and `build_model` call these, as torchvision's
`r2plus1d_18()` hands `Conv2Plus1D` to `VideoResNet`. The plain ResNet3d arguments come from
`action3d.config.backbone_args`.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Dict

from torch import nn

from action3d.config.model import ModelConfig
from action3d.models.conv2plus1d import conv2plus1d
from action3d.models.csn import CSNBottleneck3d, IpCSNBottleneck3d
from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.x3d import X3D_STEM_CONV, X3DBlock, X3DHead

DEFAULT_EPS = 1e-5


def norm_layer(cfg: ModelConfig) -> Any:
    """BatchNorm3d with the config's epsilon (None: ResNet3d's own default, PyTorch's 1e-5)."""
    return None if cfg.norm_eps == DEFAULT_EPS else partial(nn.BatchNorm3d, eps=cfg.norm_eps)


def family_options(cfg: ModelConfig) -> Dict[str, Any]:
    """ResNet3d's injected builders for the config: `block=`, `conv_layer=`, `stem_conv_layer=`,
    `norm_layer=` (only those that differ from ResNet3d's defaults)."""
    options: Dict[str, Any] = {}
    norm = norm_layer(cfg)
    if norm is not None:
        options["norm_layer"] = norm
    if cfg.arch == "x3d":
        options["block"] = partial(X3DBlock, bottleneck_ratio=cfg.bottleneck_ratio, se_ratio=cfg.se_ratio)
        options["stem_conv_layer"] = X3D_STEM_CONV
        return options
    if cfg.bottleneck_mode != "standard":
        options["block"] = IpCSNBottleneck3d if cfg.bottleneck_mode == "ip" else CSNBottleneck3d
    if cfg.conv_type == "2plus1d":
        factorised = partial(conv2plus1d, rule=cfg.mid_channels_rule, temporal_first=cfg.temporal_first,
                             norm_layer=norm)
        options["conv_layer"] = factorised
        if cfg.conv1_mid_channels is not None:
            options["stem_conv_layer"] = partial(factorised, mid_channels=cfg.conv1_mid_channels)
    return options


def build_head(cfg: ModelConfig, backbone: nn.Module) -> nn.Module:
    """The classifier of the config's arch for `backbone`'s features."""
    if cfg.arch == "slowfast":
        return SlowFastHead(sum(backbone.feat_dims), cfg.num_classes, dropout=cfg.dropout)
    if cfg.arch == "x3d":
        return X3DHead(backbone.feat_dim, cfg.num_classes, inner_channels=int(cfg.bottleneck_ratio * backbone.feat_dim),
                       head_channels=cfg.head_channels, dropout=cfg.dropout, norm_layer=norm_layer(cfg))
    return I3DHead(backbone.feat_dim, cfg.num_classes, dropout=cfg.dropout)
