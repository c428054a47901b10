"""Residual blocks of the 3D ResNets and their shortcuts.

Module names follow mmaction2/mmcv (`conv1.conv`, `conv1.bn`, `downsample.conv`, ...) so that
mmaction2 checkpoints load by name and 2D ImageNet weights map one-to-one (see models/weights*.py).
Blocks take the same keyword arguments so a stage builder can use either kind.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from action3d.config.checks import fail
from action3d.models.conv import ConvBNAct, ConvLayer, default_act
from action3d.models.nonlocal_block import NonLocal3d

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


class ShortcutA(nn.Module):
    """Hara et al.'s parameter-free shortcut: strided identity, new channels zero-filled."""

    def __init__(self, in_channels: int, out_channels: int, stride: Tuple[int, int, int]) -> None:
        super().__init__()
        if out_channels < in_channels:
            fail("shortcut_type", "A", f"a parameter-free shortcut cannot reduce channels ({in_channels} -> "
                                       f"{out_channels}); use B")
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st, sh, sw = self.stride
        x = x[:, :, ::st, ::sh, ::sw]  # same sizes as a kernel-1 conv with this stride
        # F.pad's pairs run from the last dim backwards: (W, H, T, C).
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def make_downsample(in_channels: int, out_channels: int, stride: Tuple[int, int, int], *,
                    shortcut_type: str = "B", advanced: bool = False, shortcut_norm: str = "always",
                    norm_layer: Optional[NormLayer] = None) -> nn.Module:
    """The shortcut of a block whose output differs from its input in size or channels.

    'B': 1x1x1 conv (strided) + norm (`shortcut_norm="widening"`: the norm only where the conv
    widens, PyTorchVideo's X3D). `advanced` (mmdet's avg_down, ResNet-D): average-pool first,
    then an unstrided 1x1x1 conv, so no input position is skipped. 'A': see `ShortcutA`.
    """
    if shortcut_type == "A":
        return ShortcutA(in_channels, out_channels, stride)
    norm = shortcut_norm == "always" or out_channels != in_channels
    if advanced:
        # Identity in place of a stride-1 pool keeps the names (`downsample.1.conv`) uniform.
        pool = (nn.AvgPool3d(kernel_size=stride, stride=stride, ceil_mode=True,
                             count_include_pad=False) if stride != (1, 1, 1) else nn.Identity())
        return nn.Sequential(pool, ConvBNAct(in_channels, out_channels, 1, act=False, norm=norm, bias=False,
                                             norm_layer=norm_layer))
    return ConvBNAct(in_channels, out_channels, 1, stride=stride, act=False, norm=norm, bias=False,
                     norm_layer=norm_layer)


class _ResidualBlock(nn.Module, ABC):
    """Shared forward: residual branch (+ optional checkpointing), add, activation, non-local."""

    expansion = 1

    def __init__(self, act_layer: Optional[ActLayer] = None) -> None:
        super().__init__()
        self.with_cp = False
        self.downsample: Optional[nn.Module] = None
        self.non_local_block: Optional[nn.Module] = None
        self.relu = (act_layer or default_act)()  # named relu for any activation: state-dict names

    @abstractmethod
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch: convs of the block, without the shortcut."""

    @abstractmethod
    def last_bn(self) -> nn.Module:
        """The norm that `zero_init_residual` zeroes, so the block starts as the identity."""

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.residual(x) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, H, W)
        if self.with_cp and torch.is_grad_enabled():
            # Recomputed in backward: saves activations of the whole block. Note that BN running
            # statistics get a second update during recomputation (as in mmaction2/mmdet).
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        out = self.relu(out)
        if self.non_local_block is not None:
            out = self.non_local_block(out)
        return out


class BasicBlock3d(_ResidualBlock):
    """Two 3x3 convs; inflated: 3x3x3 + 3x3x3, not inflated: 1x3x3 + 1x3x3.

    The stride sits on the first conv whatever the style (a basic block has no 1x1 conv).
    The constructor's signature is Bottleneck3d's on purpose: a stage builder (and an injected
    `block=`) passes the same keywords to either kind: `conv_layer` builds the convs (R(2+1)D
    injects a factorised one), `index` is the block's position in its stage.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, *, spatial_stride: int = 1,
                 temporal_stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = "pytorch",
                 inflate: bool = True, inflate_style: str = "3x1x1",
                 non_local: bool = False, non_local_cfg: Optional[dict] = None,
                 with_cp: bool = False, norm_layer: Optional[NormLayer] = None,
                 act_layer: Optional[ActLayer] = None, conv_layer: Optional[ConvLayer] = None,
                 index: int = 0) -> None:
        super().__init__(act_layer)
        kt = 3 if inflate else 1
        layers = dict(norm_layer=norm_layer, act_layer=act_layer, conv_layer=conv_layer, block_in_channels=inplanes)
        self.conv1 = ConvBNAct(inplanes, planes, (kt, 3, 3),
                               stride=(temporal_stride, spatial_stride, spatial_stride),
                               padding=(kt // 2, dilation, dilation),
                               dilation=(1, dilation, dilation), **layers)
        self.conv2 = ConvBNAct(planes, planes * self.expansion, (kt, 3, 3),
                               padding=(kt // 2, 1, 1), act=False, **layers)
        self.downsample = downsample
        self.with_cp = with_cp
        if non_local:
            self.non_local_block = NonLocal3d(planes * self.expansion, **(non_local_cfg or {}))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))

    def last_bn(self) -> nn.Module:
        return self.conv2.bn


class Bottleneck3d(_ResidualBlock):
    """1x1x1 reduce, 3x3 spatial, 1x1x1 expand (x4), inflated per `inflate_style`.

    not inflated: 1x1x1 + 1x3x3 + 1x1x1; '3x1x1': 3x1x1 + 1x3x3 + 1x1x1;
    '3x3x3': 1x1x1 + 3x3x3 + 1x1x1. style 'pytorch' strides the 3x3 conv, 'caffe' the first 1x1.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, spatial_stride: int = 1,
                 temporal_stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = "pytorch",
                 inflate: bool = True, inflate_style: str = "3x1x1",
                 non_local: bool = False, non_local_cfg: Optional[dict] = None,
                 with_cp: bool = False, norm_layer: Optional[NormLayer] = None,
                 act_layer: Optional[ActLayer] = None, conv_layer: Optional[ConvLayer] = None,
                 index: int = 0) -> None:
        super().__init__(act_layer)
        layers = dict(norm_layer=norm_layer, act_layer=act_layer, conv_layer=conv_layer)
        stride = (temporal_stride, spatial_stride, spatial_stride)
        unstrided = (1, 1, 1)
        conv1_stride, conv2_stride = (unstrided, stride) if style == "pytorch" else (stride, unstrided)
        kt1 = 3 if inflate and inflate_style == "3x1x1" else 1
        kt2 = 3 if inflate and inflate_style == "3x3x3" else 1
        self.conv1 = ConvBNAct(inplanes, planes, (kt1, 1, 1), stride=conv1_stride,
                               padding=(kt1 // 2, 0, 0), block_in_channels=inplanes, **layers)
        self.conv2 = self.make_conv2(planes, (kt2, 3, 3), stride=conv2_stride, dilation=dilation, **layers)
        self.conv3 = ConvBNAct(planes, planes * self.expansion, 1, act=False, **layers)
        self.downsample = downsample
        self.with_cp = with_cp
        if non_local:
            self.non_local_block = NonLocal3d(planes * self.expansion, **(non_local_cfg or {}))

    @classmethod
    def make_conv2(cls, planes: int, kernel: Tuple[int, int, int], *, stride: Tuple[int, int, int], dilation: int,
                   **layers: Any) -> nn.Module:
        """The middle conv (`kernel` t x 3 x 3); CSN's bottlenecks replace it."""
        return ConvBNAct(planes, planes, kernel, stride=stride, padding=(kernel[0] // 2, dilation, dilation),
                         dilation=(1, dilation, dilation), block_in_channels=planes, **layers)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))

    def last_bn(self) -> nn.Module:
        return self.conv3.bn


BlockType = Callable[..., _ResidualBlock]


def block_expansion(block: BlockType) -> int:
    """The output-width factor of a block class, or of a `functools.partial` of one."""
    while not hasattr(block, "expansion") and hasattr(block, "func"):
        block = block.func
    return block.expansion
