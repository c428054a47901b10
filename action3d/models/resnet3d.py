"""ResNet3d: the 3D ResNet backbone with mmaction2's options (seed 000) and module names.

One general class covers R3D (torchvision), MC3, I3D, SlowOnly, each SlowFast pathway, Hara's
ResNets, and, with injected builders (torchvision's style), R(2+1)D (`conv_layer=`), CSN
(`block=CSNBottleneck3d`) and X3D (`block=X3DBlock`, `stem_conv_layer=`); the named presets
(action3d.config.model_presets) only choose its arguments (`action3d.models.families` turns a
config into the builders).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from action3d.config.checks import per_stage
from action3d.config.model import ARCH_SETTINGS
from action3d.config.model_checks import check_resnet3d
from action3d.models.blocks import BasicBlock3d, BlockType, Bottleneck3d, block_expansion, make_downsample
from action3d.models.conv import NORM_TYPES, ConvBNAct, ConvLayer, default_act, default_norm
from action3d.models.nonlocal_block import NonLocal3d

PerBlockFlags = Union[int, Sequence[int]]
NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]

BLOCKS: Dict[str, type] = {"basic": BasicBlock3d, "bottleneck": Bottleneck3d}


class ResNet3d(nn.Module):
    """3D ResNet backbone (mmaction2 semantics).

    Input `(N, C, T, H, W)`; `forward` returns the features of the last stage listed in
    `out_indices`, or a tuple of features (in stage order) when several stages are listed.

    Args (all keyword):
        depth: 18/34 (BasicBlock3d) or 50/101/152 (Bottleneck3d), see `arch_settings`.
        pretrained: a checkpoint loaded after init by `action3d.models.weights.load_pretrained`.
        stage_blocks: blocks per stage, replacing the depth's defaults.
        pretrained2d: allow `pretrained` to be a 2D ImageNet ResNet to inflate.
        in_channels / base_channels: input channels / stem output channels (stage i has
            `base_channels * 2**i` planes, times the block expansion at its output).
        out_indices: stages (0-based) whose outputs are returned.
        num_stages: 1..4.
        spatial_strides / temporal_strides / dilations: of each stage's first block.
        conv1_kernel (t, h, w), conv1_stride (temporal, spatial): the stem conv.
        pool1_stride (temporal, spatial), pool1_kernel (t, h, w), with_pool1: the stem's max-pool.
        with_pool2: a (2,1,1) temporal max-pool after the first stage.
        style: 'pytorch' strides the 3x3 conv of a bottleneck, 'caffe' its first 1x1 conv.
        advanced: shortcut average-pools then uses an unstrided 1x1x1 conv (ResNet-D).
        shortcut_type: 'B' 1x1x1 conv + BN, 'A' parameter-free (strided identity, zero channels).
        shortcut_norm: 'always', or 'widening' (no BN in a shortcut that keeps the width: PTV's X3D).
        frozen_stages: stem and stages 1..k get no gradient and keep BN in eval mode (-1: none).
        inflate / non_local: per stage, an int for all blocks or one 0/1 per block.
        inflate_style: '3x1x1' or '3x3x3', which bottleneck conv gets the temporal kernel.
        non_local_mode / non_local_sub_sample / non_local_use_scale: see `NonLocal3d`.
        norm_eval: keep every BN in eval mode (frozen statistics) during training.
        with_cp: gradient checkpointing per block (less memory, ~30% more compute).
        zero_init_residual: last BN of each block starts at zero, so blocks start as identity.
        block: a residual block class (or a partial of one) replacing the depth's default (same
            constructor).
        conv_layer: builds the convs with temporal and spatial kernels of the stem and the blocks
            (`action3d.models.conv.conv3d` by default; `conv2plus1d` for R(2+1)D).
        stem_conv_layer: the stem's conv builder when it differs (X3D's stem), else conv_layer.
        lateral_inplanes: extra input channels per stage, concatenated in front of it by a
            caller (the SlowFast slow pathway's lateral connections).
    """

    arch_settings: Dict[int, Tuple[type, Tuple[int, ...]]] = {
        depth: (BLOCKS[kind], blocks) for depth, (kind, blocks) in ARCH_SETTINGS.items()}

    def __init__(self, depth: int, *, pretrained: Optional[str] = None,
                 stage_blocks: Optional[Sequence[int]] = None, pretrained2d: bool = True,
                 in_channels: int = 3, base_channels: int = 64, out_indices: Sequence[int] = (3,),
                 num_stages: int = 4, spatial_strides: Sequence[int] = (1, 2, 2, 2),
                 temporal_strides: Sequence[int] = (1, 1, 1, 1),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 conv1_kernel: Sequence[int] = (3, 7, 7), conv1_stride: Sequence[int] = (1, 2),
                 pool1_stride: Sequence[int] = (1, 2), pool1_kernel: Sequence[int] = (1, 3, 3),
                 with_pool1: bool = True,
                 with_pool2: bool = True, style: str = "pytorch", advanced: bool = False,
                 shortcut_type: str = "B", shortcut_norm: str = "always", frozen_stages: int = -1,
                 inflate: Sequence[PerBlockFlags] = (1, 1, 1, 1), inflate_style: str = "3x1x1",
                 non_local: Sequence[PerBlockFlags] = (0, 0, 0, 0),
                 non_local_mode: str = "embedded_gaussian", non_local_sub_sample: bool = False,
                 non_local_use_scale: bool = False, norm_eval: bool = False,
                 with_cp: bool = False, zero_init_residual: bool = True,
                 norm_layer: Optional[NormLayer] = None, act_layer: Optional[ActLayer] = None,
                 block: Optional[BlockType] = None,
                 lateral_inplanes: Sequence[int] = (0, 0, 0, 0),
                 conv_layer: Optional[ConvLayer] = None, stem_conv_layer: Optional[ConvLayer] = None) -> None:
        super().__init__()
        # The same rules (and words) as the config check of `action3d train model.*=...`.
        normal = check_resnet3d(
            depth=depth, stage_blocks=stage_blocks, num_stages=num_stages, out_indices=out_indices,
            spatial_strides=spatial_strides, temporal_strides=temporal_strides, dilations=dilations,
            conv1_kernel=conv1_kernel, conv1_stride=conv1_stride, pool1_stride=pool1_stride,
            in_channels=in_channels, base_channels=base_channels, frozen_stages=frozen_stages,
            style=style, inflate=inflate, inflate_style=inflate_style, non_local=non_local,
            non_local_mode=non_local_mode, shortcut_type=shortcut_type, pool1_kernel=pool1_kernel,
            shortcut_norm=shortcut_norm)
        self.block = block or self.arch_settings[depth][0]
        self.depth = depth
        self.pretrained2d = pretrained2d
        self.in_channels = in_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.out_indices = tuple(normal["out_indices"])
        # Stages after the last returned one would get no gradient (DDP fails on unused
        # parameters) and cost memory: they are not built.
        built = self.out_indices[-1] + 1
        self.stage_blocks = normal["stage_blocks"][:built]
        self.spatial_strides = normal["spatial_strides"][:built]
        self.temporal_strides = normal["temporal_strides"][:built]
        self.dilations = normal["dilations"][:built]
        self.with_pool1 = with_pool1
        self.with_pool2 = with_pool2
        self.frozen_stages = min(frozen_stages, built)
        self.norm_eval = norm_eval
        self.norm_layer = norm_layer or default_norm
        self.act_layer = act_layer or default_act
        self.non_local_cfg = dict(mode=non_local_mode, sub_sample=non_local_sub_sample,
                                  use_scale=non_local_use_scale, norm_layer=self.norm_layer)

        self.conv1, self.maxpool = self._make_stem(tuple(conv1_kernel), tuple(conv1_stride),
                                                   tuple(pool1_stride), tuple(pool1_kernel),
                                                   stem_conv_layer or conv_layer)
        # (2,1,1) max-pool after stage 1 (I3D); Identity keeps forward and names uniform.
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1)) if with_pool2 else nn.Identity()

        self._make_stages(style=style, inflate_style=inflate_style, shortcut_type=shortcut_type,
                          shortcut_norm=shortcut_norm, advanced=advanced, conv_layer=conv_layer, with_cp=with_cp,
                          stage_inflate=normal["inflate"], stage_non_local=normal["non_local"],
                          lateral_inplanes=per_stage("lateral_inplanes", lateral_inplanes, num_stages))
        self.feat_dim = self.stage_channels[self.out_indices[-1]]

        self.init_weights(zero_init_residual=zero_init_residual)
        self._freeze_stages()
        if pretrained is not None:
            from action3d.models.weights import load_pretrained  # lazy: optional dependency path
            load_pretrained(self, pretrained, allow_2d=pretrained2d)

    def _make_stages(self, *, style: str, inflate_style: str, shortcut_type: str, shortcut_norm: str,
                     advanced: bool, conv_layer: Optional[ConvLayer], with_cp: bool, stage_inflate: List[List[bool]],
                     stage_non_local: List[List[bool]], lateral_inplanes: List[int]) -> None:
        """layer1..layerN; stage i has base_channels * 2**i planes (times the block expansion)."""
        self.res_layers: List[str] = []
        self.stage_channels: List[int] = []
        inplanes = self.base_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = self.base_channels * 2 ** i
            layer = self.make_res_layer(
                self.block, inplanes + lateral_inplanes[i], planes, num_blocks,
                spatial_stride=self.spatial_strides[i], temporal_stride=self.temporal_strides[i],
                dilation=self.dilations[i], style=style, inflate=stage_inflate[i],
                inflate_style=inflate_style, non_local=stage_non_local[i],
                non_local_cfg=self.non_local_cfg, shortcut_type=shortcut_type, shortcut_norm=shortcut_norm,
                advanced=advanced, with_cp=with_cp, norm_layer=self.norm_layer, act_layer=self.act_layer,
                conv_layer=conv_layer)
            inplanes = planes * block_expansion(self.block)
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
            self.stage_channels.append(inplanes)

    def _make_stem(self, conv1_kernel: Tuple[int, int, int], conv1_stride: Tuple[int, int],
                   pool1_stride: Tuple[int, int], pool1_kernel: Tuple[int, int, int],
                   conv_layer: Optional[ConvLayer]) -> Tuple[nn.Module, nn.Module]:
        """conv1 (ConvBNAct, 'same' padding) and the max-pool, padded by half its kernel (Identity
        when disabled): 1x3x3 for mmaction2's ResNets, 3x3x3 stride 2 for Hara's."""
        conv1 = ConvBNAct(self.in_channels, self.base_channels, conv1_kernel,
                          stride=(conv1_stride[0], conv1_stride[1], conv1_stride[1]),
                          padding=tuple((k - 1) // 2 for k in conv1_kernel),
                          norm_layer=self.norm_layer, act_layer=self.act_layer, conv_layer=conv_layer)
        if not self.with_pool1:
            return conv1, nn.Identity()
        maxpool = nn.MaxPool3d(kernel_size=pool1_kernel,
                               stride=(pool1_stride[0], pool1_stride[1], pool1_stride[1]),
                               padding=tuple((k - 1) // 2 for k in pool1_kernel))
        return conv1, maxpool

    @staticmethod
    def make_res_layer(block: BlockType, inplanes: int, planes: int, num_blocks: int, *,
                       spatial_stride: int = 1, temporal_stride: int = 1, dilation: int = 1,
                       style: str = "pytorch", inflate: Sequence[bool] = (),
                       inflate_style: str = "3x1x1", non_local: Sequence[bool] = (),
                       non_local_cfg: Optional[dict] = None, shortcut_type: str = "B",
                       shortcut_norm: str = "always", advanced: bool = False, with_cp: bool = False,
                       norm_layer: Optional[NormLayer] = None, act_layer: Optional[ActLayer] = None,
                       conv_layer: Optional[ConvLayer] = None,
                       downsample_builder: Callable[..., nn.Module] = make_downsample
                       ) -> nn.Sequential:
        """One stage: the first block strides (and gets a shortcut), the others keep the size."""
        inflate = list(inflate) or [True] * num_blocks
        non_local = list(non_local) or [False] * num_blocks
        out_planes = planes * block_expansion(block)
        stride = (temporal_stride, spatial_stride, spatial_stride)
        downsample = None
        # Any stride (temporal included) or channel change needs a shortcut that matches it.
        if stride != (1, 1, 1) or inplanes != out_planes:
            downsample = downsample_builder(inplanes, out_planes, stride, shortcut_type=shortcut_type,
                                            shortcut_norm=shortcut_norm, advanced=advanced, norm_layer=norm_layer)
        blocks = []
        for i in range(num_blocks):
            blocks.append(block(
                inplanes if i == 0 else out_planes, planes,
                spatial_stride=spatial_stride if i == 0 else 1,
                temporal_stride=temporal_stride if i == 0 else 1,
                dilation=dilation, downsample=downsample if i == 0 else None, style=style,
                inflate=inflate[i], inflate_style=inflate_style, non_local=non_local[i],
                non_local_cfg=non_local_cfg, with_cp=with_cp, norm_layer=norm_layer,
                act_layer=act_layer, conv_layer=conv_layer, index=i))
        return nn.Sequential(*blocks)

    def init_weights(self, *, zero_init_residual: bool = True) -> None:
        """Kaiming (fan_out) convs, unit norms; non-local blocks keep their own identity init."""
        non_local_modules = {id(m) for nl in self.modules() if isinstance(nl, NonLocal3d)
                             for m in nl.modules()}
        for m in self.modules():
            if id(m) in non_local_modules:
                continue
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, NORM_TYPES) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "last_bn"):  # any residual block, injected ones included
                    nn.init.zeros_(m.last_bn().weight)

    def frozen_modules(self) -> List[nn.Module]:
        """The stem and the first `frozen_stages` stages."""
        if self.frozen_stages < 0:
            return []
        return [self.conv1] + [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]

    def _freeze_stages(self) -> None:
        for module in self.frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> ResNet3d:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.conv1(x))

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        x = self.forward_stem(x)                         # (N, base, T', H/4, W/4) by default
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)                   # (N, C_i, T_i, H_i, W_i)
            if i == 0:
                x = self.pool2(x)
            if i in self.out_indices:
                outs.append(x)
            if i == self.out_indices[-1]:
                break  # later stages would not contribute to any output
        return outs[0] if len(outs) == 1 else tuple(outs)
