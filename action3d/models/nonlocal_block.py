"""Non-local block (Wang et al., "Non-local Neural Networks", 2018), mmcv's NonLocal3d layout.

Names match mmcv so mmaction2 I3D-NL checkpoints load: `g`, `theta`, `phi` (1x1x1 conv with
bias, `*.conv.weight`/`*.conv.bias`; with `sub_sample` `g` and `phi` become
Sequential(conv, MaxPool3d) so `g.0.conv.weight`), `conv_out` (`conv_out.conv`, `conv_out.bn`).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from action3d.config.model_checks import check_model_argument
from action3d.models.conv import ConvBNAct


class NonLocal3d(nn.Module):
    """y = x + BN(W_out(softmax-or-normalised(theta(x) phi(x)^T) g(x))) over all T*H*W positions.

    mode 'embedded_gaussian' takes a softmax of the affinities (scaled by 1/sqrt(C') if
    `use_scale`), 'dot_product' divides them by the number of positions. `sub_sample` max-pools
    g and phi spatially by 2 (4x fewer key positions). The output BN starts at zero, so a freshly
    inserted block is the identity and does not disturb pretrained features.
    """

    def __init__(self, in_channels: int, *, reduction: int = 2, mode: str = "embedded_gaussian",
                 sub_sample: bool = False, use_scale: bool = False, init_std: float = 0.01,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None) -> None:
        super().__init__()
        check_model_argument("non_local_mode", mode)
        self.mode = mode
        self.use_scale = use_scale
        self.inter_channels = max(in_channels // reduction, 1)

        def embed() -> ConvBNAct:
            return ConvBNAct(in_channels, self.inter_channels, 1, norm=False, act=False)

        self.g: nn.Module = embed()
        self.theta: nn.Module = embed()
        self.phi: nn.Module = embed()
        self.conv_out = ConvBNAct(self.inter_channels, in_channels, 1, act=False, norm_layer=norm_layer)
        for unit in (self.g, self.theta, self.phi):
            nn.init.normal_(unit.conv.weight, std=init_std)
            nn.init.zeros_(unit.conv.bias)
        nn.init.zeros_(self.conv_out.bn.weight)
        nn.init.zeros_(self.conv_out.bn.bias)
        if sub_sample:
            self.g = nn.Sequential(self.g, nn.MaxPool3d(kernel_size=(1, 2, 2)))
            self.phi = nn.Sequential(self.phi, nn.MaxPool3d(kernel_size=(1, 2, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, H, W)
        n = x.shape[0]
        # flatten/reshape rather than view: the input may be channels_last_3d.
        theta_x = self.theta(x).flatten(2).transpose(1, 2)     # (N, THW, C')
        phi_x = self.phi(x).flatten(2)                          # (N, C', THW')
        g_x = self.g(x).flatten(2).transpose(1, 2)              # (N, THW', C')
        affinity = torch.matmul(theta_x, phi_x)                 # (N, THW, THW')
        if self.mode == "embedded_gaussian":
            if self.use_scale:
                affinity = affinity / theta_x.shape[-1] ** 0.5
            affinity = affinity.softmax(dim=-1)
        else:
            affinity = affinity / affinity.shape[-1]
        y = torch.matmul(affinity, g_x)                         # (N, THW, C')
        y = y.transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.conv_out(y)
