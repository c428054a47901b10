"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020).

A ResNet3d of X3D blocks (`block=X3DBlock`) after a (2+1)D stem whose temporal conv is channel-wise
(`stem_conv_layer=X3D_STEM_CONV`), and `X3DHead`, as PySlowFast's `X3D` and PyTorchVideo's
`create_x3d` define them:

- block: 1x1x1 conv to `int(bottleneck_ratio * width)` channels, BN, ReLU; channel-wise 3x3x3
  conv (strided), BN; squeeze-excitation on every other block (the first, third, ... of a stage);
  swish; 1x1x1 conv back to the stage width, BN; add; ReLU;
- head: 1x1x1 conv to the blocks' inner width, BN, ReLU, global average pool, 1x1x1 conv (no
  bias) to `head_channels`, ReLU, dropout, linear.

Names: `conv1`/`conv2`/`conv3` (ConvBNAct), `se.fc1`/`se.fc2` (PySlowFast's), head `pre_conv`,
`post_conv`, `fc_cls`. The widths and depths of XS..L are in the presets (`ptv/x3d_*`).
"""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
from torch import nn

from action3d.models.blocks import ActLayer, NormLayer, _ResidualBlock
from action3d.models.conv import ConvBNAct, ConvLayer
from action3d.models.conv2plus1d import conv2plus1d
from action3d.models.head import Features, I3DHead
from action3d.models.nonlocal_block import NonLocal3d

# The stem: a 1x3x3 spatial conv, then a channel-wise 5x1x1 temporal conv, then BN and ReLU.
X3D_STEM_CONV: ConvLayer = partial(conv2plus1d, rule="out", mid_norm=False, channelwise_temporal=True)


def se_channels(channels: int, ratio: float, *, divisor: int = 8) -> int:
    """PySlowFast's `SE._round_width`: ratio * channels rounded to a multiple of `divisor`, at least
    `divisor`, and not below 90% of the exact value."""
    width = channels * ratio
    rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * width else rounded)


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean over T, H, W of x)))), the fcs as 1x1x1 convs with bias."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        reduced = se_channels(channels, ratio)
        self.fc1 = nn.Conv3d(channels, reduced, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.relu(self.fc1(x.mean(dim=(2, 3, 4), keepdim=True))))
        return x * torch.sigmoid(scale)


class X3DBlock(_ResidualBlock):
    """The X3D bottleneck; the stage builder's keywords (as BasicBlock3d's), plus `bottleneck_ratio`
    and `se_ratio`. `planes` is the output width (expansion 1); `inflate` false makes the channel-wise
    conv 1x3x3; `style`, `inflate_style` and `conv_layer` are not read."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, *, spatial_stride: int = 1, temporal_stride: int = 1,
                 dilation: int = 1, downsample: Optional[nn.Module] = None, style: str = "pytorch",
                 inflate: bool = True, inflate_style: str = "3x3x3", non_local: bool = False,
                 non_local_cfg: Optional[dict] = None, with_cp: bool = False,
                 norm_layer: Optional[NormLayer] = None, act_layer: Optional[ActLayer] = None,
                 conv_layer: Optional[ConvLayer] = None, index: int = 0, bottleneck_ratio: float = 2.25,
                 se_ratio: float = 0.0625) -> None:
        super().__init__(act_layer)
        inner = int(bottleneck_ratio * planes)
        kt = 3 if inflate else 1
        self.conv1 = ConvBNAct(inplanes, inner, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvBNAct(inner, inner, (kt, 3, 3), stride=(temporal_stride, spatial_stride, spatial_stride),
                               padding=(kt // 2, dilation, dilation), dilation=(1, dilation, dilation), groups=inner,
                               act=False, norm_layer=norm_layer)
        self.se = SqueezeExcitation(inner, se_ratio) if se_ratio > 0 and index % 2 == 0 else None
        self.swish = nn.SiLU()
        self.conv3 = ConvBNAct(inner, planes, 1, act=False, norm_layer=norm_layer)
        self.downsample = downsample
        self.with_cp = with_cp
        if non_local:
            self.non_local_block = NonLocal3d(planes, **(non_local_cfg or {}))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        if self.se is not None:
            x = self.se(x)
        return self.conv3(self.swish(x))

    def last_bn(self) -> nn.Module:
        return self.conv3.bn


class X3DHead(I3DHead):
    """1x1x1 conv to `inner_channels` + BN + ReLU, global average pool (any input size), 1x1x1 conv
    to `head_channels` + ReLU (the pre-logit projection), dropout, `fc_cls`. `pool` returns the
    projected features (what `action3d embed` writes)."""

    def __init__(self, in_channels: int, num_classes: int, *, inner_channels: int, head_channels: int = 2048,
                 dropout: float = 0.5, init_std: float = 0.01, norm_layer: Optional[NormLayer] = None) -> None:
        super().__init__(head_channels, num_classes, dropout=dropout, init_std=init_std)
        self.pre_conv = ConvBNAct(in_channels, inner_channels, 1, norm_layer=norm_layer)
        self.post_conv = ConvBNAct(inner_channels, head_channels, 1, norm=False, bias=False)
        for conv in (self.pre_conv.conv, self.post_conv.conv):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def pool(self, feats: Features) -> torch.Tensor:
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return self.post_conv(self.avg_pool(self.pre_conv(x))).flatten(1)       # (N, head_channels)
