"""R(2+1)D's factorised convolution (Tran et al., CVPR 2018) and its mid-channel rules.

A t x k x k convolution becomes a 1 x k x k spatial conv to M mid channels, norm, ReLU, and a
t x 1 x 1 temporal conv: torchvision's `Conv2Plus1D` and mmaction2's `Conv2plus1d`, whose names
(`conv_s`, `bn_s`, `conv_t`) are kept so that mmaction2 checkpoints load. `temporal_first` runs
the temporal conv first, as PyTorchVideo's `Conv2plus1d` (the middle norm is then `bn_t`). X3D's
stem is the same factorisation with a channel-wise temporal conv and nothing between the two
(`mid_norm=False, channelwise_temporal=True`).

`conv2plus1d(...)` is a `conv_layer` (see `action3d.models.conv`): bind its options with
`functools.partial` and inject it into `ResNet3d(conv_layer=...)`.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import nn

from action3d.models.conv import IntOr3, conv3d, default_act, default_norm, triple

Kernel = Tuple[int, int, int]


def mid_channels_for(in_channels: int, out_channels: int, kernel: Kernel) -> int:
    """Tran et al.'s M = floor(t*k*k*N_in*N_out / (k*k*N_in + t*N_out)): as many parameters as the 3D conv."""
    t, h, w = kernel
    return (t * h * w * in_channels * out_channels) // (h * w * in_channels + t * out_channels)


def mid_channels_by_rule(rule: str, in_channels: int, out_channels: int, kernel: Kernel,
                         block_in_channels: Optional[int]) -> int:
    """`conv`: from the conv's own widths (mmaction2); `block`: from the block's input width instead of
    the conv's (torchvision's basic block gives its second conv the first one's M); `out`: the
    output width (PyTorchVideo)."""
    if rule == "out":
        return out_channels
    if rule == "block" and block_in_channels is not None:
        return mid_channels_for(block_in_channels, out_channels, kernel)
    return mid_channels_for(in_channels, out_channels, kernel)


class Conv2plus1d(nn.Module):
    """(N, C_in, T, H, W) -> (N, C_out, T', H', W'): the spatial and the temporal part of a t x k x k
    conv, each with its share of the stride, padding and dilation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOr3, *, mid_channels: int,
                 stride: IntOr3 = 1, padding: IntOr3 = 0, dilation: IntOr3 = 1, bias: bool = False,
                 temporal_first: bool = False, mid_norm: bool = True, channelwise_temporal: bool = False,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None,
                 act_layer: Optional[Callable[[], nn.Module]] = None) -> None:
        super().__init__()
        (t, kh, kw), (st, sh, sw) = triple(kernel_size), triple(stride)
        (pt, ph, pw), (dt, dh, dw) = triple(padding), triple(dilation)
        widths = [(in_channels, mid_channels), (mid_channels, out_channels)]
        s_in, s_out = widths[1] if temporal_first else widths[0]
        t_in, t_out = widths[0] if temporal_first else widths[1]
        self.temporal_first = temporal_first
        self.conv_s = nn.Conv3d(s_in, s_out, (1, kh, kw), stride=(1, sh, sw), padding=(0, ph, pw),
                                dilation=(1, dh, dw), bias=bias)
        self.conv_t = nn.Conv3d(t_in, t_out, (t, 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0), dilation=(dt, 1, 1),
                                groups=t_out if channelwise_temporal else 1, bias=bias)
        norm = (norm_layer or default_norm)(mid_channels) if mid_norm else None
        self.add_module("bn_t" if temporal_first else "bn_s", norm)
        self.relu = (act_layer or default_act)() if mid_norm else None

    @property
    def mid_norm(self) -> Optional[nn.Module]:
        return self.bn_t if self.temporal_first else self.bn_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (self.conv_t, self.conv_s) if self.temporal_first else (self.conv_s, self.conv_t)
        x = first(x)
        if self.relu is not None:
            x = self.relu(self.mid_norm(x))
        return second(x)


def conv2plus1d(in_channels: int, out_channels: int, kernel_size: IntOr3, *, stride: IntOr3 = 1,
                padding: IntOr3 = 0, dilation: IntOr3 = 1, groups: int = 1, bias: bool = False,
                block_in_channels: Optional[int] = None, rule: str = "conv", mid_channels: Optional[int] = None,
                temporal_first: bool = False, mid_norm: bool = True, channelwise_temporal: bool = False,
                norm_layer: Optional[Callable[[int], nn.Module]] = None,
                act_layer: Optional[Callable[[], nn.Module]] = None) -> nn.Module:
    """A `conv_layer` that factorises convs with both a temporal and a spatial kernel; others (1x1x1,
    3x1x1, 1x3x3 and grouped convs) stay plain Conv3d. `mid_channels` fixes M (else `rule`)."""
    kernel = triple(kernel_size)
    if groups != 1 or kernel[0] == 1 or kernel[1:] == (1, 1):
        return conv3d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    mid = mid_channels or mid_channels_by_rule(rule, in_channels, out_channels, kernel, block_in_channels)
    return Conv2plus1d(in_channels, out_channels, kernel, mid_channels=mid, stride=stride, padding=padding,
                       dilation=dilation, bias=bias, temporal_first=temporal_first, mid_norm=mid_norm,
                       channelwise_temporal=channelwise_temporal, norm_layer=norm_layer, act_layer=act_layer)
