"""The conv + norm + activation unit every model here is made of (mmcv's `ConvModule` naming).

Norm, activation and the convolution itself are injected as in torchvision and timm:
`norm_layer(channels)` and `act_layer()` build one module each (BatchNorm3d and an in-place ReLU
are the defaults); `conv_layer(in, out, kernel, stride=, padding=, dilation=, groups=, bias=,
block_in_channels=)` builds the convolution (`conv3d`, a plain Conv3d, by default; R(2+1)D injects
a factorised one, `action3d.models.conv2plus1d`). `block_in_channels` is the input width of the
residual block the conv belongs to, for a mid-channel rule that reads it; plain convs ignore it.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

IntOr3 = Union[int, Sequence[int]]

default_norm: Callable[[int], nn.Module] = nn.BatchNorm3d
default_act: Callable[[], nn.Module] = partial(nn.ReLU, inplace=True)
# Norm layers of any kind (initialised to weight 1, bias 0; no weight decay).
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


ConvLayer = Callable[..., nn.Module]


def triple(value: IntOr3) -> Tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def conv3d(in_channels: int, out_channels: int, kernel_size: IntOr3, *, stride: IntOr3 = 1, padding: IntOr3 = 0,
           dilation: IntOr3 = 1, groups: int = 1, bias: bool = False,
           block_in_channels: Optional[int] = None) -> nn.Conv3d:
    """The default `conv_layer`: a plain Conv3d (`block_in_channels` is not read)."""
    return nn.Conv3d(in_channels, out_channels, triple(kernel_size), stride=triple(stride), padding=triple(padding),
                     dilation=triple(dilation), groups=groups, bias=bias)


class ConvBNAct(nn.Module):
    """Conv3d (or the injected `conv_layer`), optional norm (`bn`, whatever its kind, so checkpoints
    keep their names), optional activation. `bias=None` means "only when no norm follows", as mmcv's
    `bias='auto'`; `groups=out_channels` makes a channel-wise conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOr3, *,
                 stride: IntOr3 = 1, padding: IntOr3 = 0, dilation: IntOr3 = 1, groups: int = 1,
                 norm: bool = True, act: bool = True, bias: Optional[bool] = None,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None,
                 act_layer: Optional[Callable[[], nn.Module]] = None,
                 conv_layer: Optional[ConvLayer] = None, block_in_channels: Optional[int] = None) -> None:
        super().__init__()
        self.conv = (conv_layer or conv3d)(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                           dilation=dilation, groups=groups,
                                           bias=(not norm) if bias is None else bias,
                                           block_in_channels=block_in_channels)
        self.bn = (norm_layer or default_norm)(out_channels) if norm else None
        self.act = (act_layer or default_act)() if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x
