"""Channel-separated bottlenecks (CSN: Tran, Wang, Torresani and Feiszli, ICCV 2019).

The middle conv of a bottleneck becomes channel-wise (one group per channel). Interaction-reduced
(`CSNBottleneck3d`, ir-CSN) keeps only that conv; interaction-preserved (`IpCSNBottleneck3d`,
ip-CSN) puts a 1x1x1 conv + BN before it. Names follow mmaction2's `CSNBottleneck3d`: the middle
part is `conv2`, a Sequential (`conv2.0.conv`, `conv2.0.bn`, and `conv2.1.*` for ip), so mmaction2's
ircsn/ipcsn checkpoints load. Inject with `ResNet3d(..., block=CSNBottleneck3d)`.
"""
from __future__ import annotations

from typing import Any, Tuple

from torch import nn

from action3d.models.blocks import Bottleneck3d
from action3d.models.conv import ConvBNAct


class CSNBottleneck3d(Bottleneck3d):
    """ir-CSN: 1x1x1 reduce, channel-wise t x 3 x 3 (t from `inflate_style`, 3x3x3 in CSN), 1x1x1 expand."""

    interaction_preserved = False

    @classmethod
    def make_conv2(cls, planes: int, kernel: Tuple[int, int, int], *, stride: Tuple[int, int, int], dilation: int,
                   **layers: Any) -> nn.Module:
        layers.pop("conv_layer", None)           # a channel-wise conv is not factorised
        parts = []
        if cls.interaction_preserved:
            parts.append(ConvBNAct(planes, planes, 1, act=False, **layers))
        parts.append(ConvBNAct(planes, planes, kernel, stride=stride, padding=(kernel[0] // 2, dilation, dilation),
                               dilation=(1, dilation, dilation), groups=planes, **layers))
        return nn.Sequential(*parts)


class IpCSNBottleneck3d(CSNBottleneck3d):
    """ip-CSN: 1x1x1 reduce, 1x1x1 conv + BN, channel-wise t x 3 x 3, 1x1x1 expand."""

    interaction_preserved = True
