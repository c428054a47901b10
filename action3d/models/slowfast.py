"""SlowFast (Feichtenhofer et al., 2019): two ResNet3d pathways joined by lateral connections.

Layout and names follow mmaction2's ResNet3dSlowFast/ResNet3dPathway: `slow_path` and
`fast_path`, the slow path holding `conv1_lateral` and `layer1_lateral`..`layer3_lateral`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from action3d.config.model import check_slowfast
from action3d.config.model_checks import check_resnet3d
from action3d.models.blocks import block_expansion
from action3d.models.conv import ConvBNAct
from action3d.models.resnet3d import ResNet3d


class ResNet3dPathway(ResNet3d):
    """A ResNet3d that, with `lateral=True`, also holds the fast-to-slow lateral convs.

    Each lateral takes fast features with C/`channel_ratio` channels (C: the slow features at the
    same point) and gives 2C/`channel_ratio` channels, kernel (`fusion_kernel`,1,1) and temporal
    stride `speed_ratio` (with `lateral_norm`, followed by BN and ReLU as in PySlowFast and
    PyTorchVideo: `*_lateral.bn`); they are concatenated after the slow stem and after every stage but the
    last, so each slow stage gets that many more input channels (`lateral_inplanes`).
    """

    def __init__(self, depth: int, *, lateral: bool = False, speed_ratio: int = 8,
                 channel_ratio: int = 8, fusion_kernel: int = 5, lateral_norm: bool = False,
                 **kwargs: Any) -> None:
        if lateral:
            kwargs["lateral_inplanes"] = self._lateral_inplanes(depth, channel_ratio, kwargs)
        super().__init__(depth, **kwargs)
        self.lateral = lateral
        self.speed_ratio = speed_ratio
        self.channel_ratio = channel_ratio
        self.fusion_kernel = fusion_kernel
        self.lateral_connections: List[str] = []
        if not lateral:
            return
        fused_channels = [self.base_channels] + self.stage_channels[:-1]  # slow C at each fusion
        for i, slow_c in enumerate(fused_channels):
            name = "conv1_lateral" if i == 0 else f"layer{i}_lateral"
            self.add_module(name, ConvBNAct(
                slow_c // channel_ratio, slow_c * 2 // channel_ratio, (fusion_kernel, 1, 1),
                stride=(speed_ratio, 1, 1), padding=((fusion_kernel - 1) // 2, 0, 0),
                norm=lateral_norm, act=lateral_norm, bias=False, norm_layer=self.norm_layer,
                act_layer=self.act_layer))
            nn.init.kaiming_normal_(getattr(self, name).conv.weight, mode="fan_out",
                                    nonlinearity="relu")
            self.lateral_connections.append(name)
        self._freeze_stages()  # the laterals did not exist when ResNet3d froze its stages

    @classmethod
    def _lateral_inplanes(cls, depth: int, channel_ratio: int, kwargs: Dict[str, Any]) -> List[int]:
        """Extra input channels of each slow stage: 2C/channel_ratio, C the slow input channels."""
        check_resnet3d(depth=depth)
        expansion = block_expansion(kwargs.get("block") or cls.arch_settings[depth][0])
        base = kwargs.get("base_channels", 64)
        num_stages = kwargs.get("num_stages", 4)
        stage_inputs = [base] + [base * 2 ** i * expansion for i in range(num_stages - 1)]
        return [c * 2 // channel_ratio for c in stage_inputs]

    def frozen_modules(self) -> List[nn.Module]:
        """As ResNet3d, plus the laterals whose source (stem or stage) is frozen."""
        modules = super().frozen_modules()
        if getattr(self, "lateral_connections", None):
            # lateral_connections[k] carries the output of the stem (k=0) or of stage k.
            modules += [getattr(self, name) for k, name in enumerate(self.lateral_connections)
                        if k <= self.frozen_stages]
        return modules


class ResNet3dSlowFast(nn.Module):
    """SlowFast backbone: one clip `(N, C, T, H, W)` in, `(slow_feat, fast_feat)` out.

    The slow pathway sees every `resample_rate`-th frame (tau), the fast pathway every
    `resample_rate // speed_ratio`-th (alpha = `speed_ratio` times more frames) with
    `1/channel_ratio` of the channels (beta). `slow_pathway` / `fast_pathway` are ResNet3d
    keyword arguments; the defaults are mmaction2's SlowFast R50 (4x16, alpha 8, beta 1/8).
    `lateral_norm`: BN + ReLU after each lateral conv. `slow_sampling="linspace"`: the slow pathway
    takes T // resample_rate frames at `linspace(0, T-1)` rounded down (PySlowFast's and
    PyTorchVideo's PackPathway) instead of every `resample_rate`-th.
    """

    def __init__(self, *, pretrained: Optional[str] = None, resample_rate: int = 8,
                 speed_ratio: int = 8, channel_ratio: int = 8, fusion_kernel: int = 5,
                 lateral_norm: bool = False, slow_sampling: str = "stride",
                 slow_pathway: Optional[Dict[str, Any]] = None,
                 fast_pathway: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        slow_cfg = dict(depth=50, conv1_kernel=(1, 7, 7), inflate=(0, 0, 1, 1), with_pool2=False)
        slow_cfg.update(slow_pathway or {})
        fast_cfg = dict(depth=50, base_channels=8, conv1_kernel=(5, 7, 7), with_pool2=False)
        fast_cfg.update(fast_pathway or {})
        slow_base = slow_cfg.get("base_channels", 64)
        check_slowfast(resample_rate=resample_rate, speed_ratio=speed_ratio,
                             channel_ratio=channel_ratio, fusion_kernel=fusion_kernel,
                             base_channels=slow_base, fast_conv1_kernel=fast_cfg["conv1_kernel"],
                             slow_sampling=slow_sampling)
        if fast_cfg["base_channels"] * channel_ratio != slow_base:
            raise ValueError(f"fast pathway base_channels ({fast_cfg['base_channels']}) must be "
                             f"slow base_channels ({slow_base}) / channel_ratio ({channel_ratio})")
        self.resample_rate = resample_rate
        self.speed_ratio = speed_ratio
        self.channel_ratio = channel_ratio
        self.slow_sampling = slow_sampling
        self.slow_path = ResNet3dPathway(
            lateral=slow_cfg.pop("lateral", True), speed_ratio=speed_ratio,
            channel_ratio=channel_ratio, fusion_kernel=fusion_kernel, lateral_norm=lateral_norm, **slow_cfg)
        self.fast_path = ResNet3dPathway(lateral=fast_cfg.pop("lateral", False), **fast_cfg)
        if self.slow_path.num_stages != self.fast_path.num_stages:
            raise ValueError("slow and fast pathways need the same num_stages")
        self.feat_dims = (self.slow_path.stage_channels[-1], self.fast_path.stage_channels[-1])
        if pretrained is not None:
            from action3d.models.weights import load_pretrained  # lazy: optional dependency path
            load_pretrained(self, pretrained, allow_2d=self.slow_path.pretrained2d)

    def _fuse(self, x_slow: torch.Tensor, x_fast: torch.Tensor, lateral: str) -> torch.Tensor:
        fused = getattr(self.slow_path, lateral)(x_fast)    # (N, 2C/beta, Ts, H, W)
        if fused.shape[2:] != x_slow.shape[2:]:
            raise ValueError(f"SlowFast lateral {lateral}: fast features {tuple(fused.shape)} do "
                             f"not match slow features {tuple(x_slow.shape)}; use the same "
                             f"temporal/spatial strides in both pathways")
        return torch.cat((x_slow, fused), dim=1)

    def slow_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The slow pathway's frames of a clip (N, C, T, H, W)."""
        if self.slow_sampling == "stride":
            return x[:, :, ::self.resample_rate]
        frames = x.shape[2]
        index = torch.linspace(0, frames - 1, max(1, frames // self.resample_rate), device=x.device).long()
        return x.index_select(2, index)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        slow, fast = self.slow_path, self.fast_path
        x_slow = slow.forward_stem(self.slow_frames(x))                                 # T/tau
        x_fast = fast.forward_stem(x[:, :, ::self.resample_rate // self.speed_ratio])  # alpha*T/tau
        laterals = slow.lateral_connections
        if laterals:
            x_slow = self._fuse(x_slow, x_fast, laterals[0])
        for i, name in enumerate(slow.res_layers):
            x_slow = getattr(slow, name)(x_slow)
            x_fast = getattr(fast, name)(x_fast)
            if i == 0:
                x_slow, x_fast = slow.pool2(x_slow), fast.pool2(x_fast)
            if i + 1 < len(laterals):                      # no fusion after the last stage
                x_slow = self._fuse(x_slow, x_fast, laterals[i + 1])
        return x_slow, x_fast                              # (N, Cs, Ts, h, w), (N, Cf, Tf, h, w)
