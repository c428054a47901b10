"""The conv + BN + ReLU unit every model here is made of (mmcv's `ConvModule` naming)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

IntOr3 = Union[int, Sequence[int]]


def triple(value: IntOr3) -> Tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    return tuple(int(v) for v in value)  # type: ignore[return-value]


class ConvBNAct(nn.Module):
    """Conv3d, optional BatchNorm3d, optional ReLU: mmcv's `ConvModule` with the same names.

    `bias=None` means "only when no norm follows", as mmcv's `bias='auto'`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOr3, *,
                 stride: IntOr3 = 1, padding: IntOr3 = 0, dilation: IntOr3 = 1,
                 norm: bool = True, act: bool = True, bias: Optional[bool] = None) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, triple(kernel_size),
                              stride=triple(stride), padding=triple(padding),
                              dilation=triple(dilation),
                              bias=(not norm) if bias is None else bias)
        self.bn = nn.BatchNorm3d(out_channels) if norm else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x
