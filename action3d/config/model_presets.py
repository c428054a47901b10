"""The model presets (`model=NAME`), each one Python value: its `ModelConfig` and its sampling.

A preset is the single source of what `action3d train model=NAME` composes (registered in Hydra's
ConfigStore by `register_model_presets`) and of what the named builder `action3d.models.NAME()`
builds. Torch-free: the command line composes and checks presets before any heavy import.

Users can still add YAML presets: a `model/mine.yaml` (`# @package _global_`, a `model:` section)
in a config tree Hydra searches is one more option of the same group (pick a new name: a file named
like a preset here is merged over it, by Hydra's deprecated automatic schema matching).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from action3d.config.model import ModelConfig

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

# The config group the presets fill: `model=NAME` selects `model/NAME`.
PRESET_GROUP = "model"


@dataclass(frozen=True)
class ModelPreset:
    """One preset: the model config, the clip sampling it was designed for and where its
    architecture and figures come from.

    `clip_len` / `frame_interval` set `data.clip_len` / `data.frame_interval` (None: the dataset's
    own). In `conf/train.yaml` the model group comes after the data group, so a preset's sampling
    wins over the dataset default; command-line overrides win over both.
    A zoo's preset also records its `native_input` (C, T, H, W), the clip its zoo measured, and
    `zoo_gmacs`, the multiply-adds per clip the zoo publishes (None: it publishes none);
    `action3d info` prints them next to its own count at that input.
    """
    model: ModelConfig
    clip_len: Optional[int]
    frame_interval: Optional[int]
    source: str
    native_input: Optional[Tuple[int, int, int, int]] = None
    zoo_gmacs: Optional[float] = None

    @property
    def name(self) -> str:
        return self.model.name

    def model_config(self, **fields: Any) -> ModelConfig:
        """A fresh copy of the preset's config (the preset's own lists stay untouched), with
        `fields` in place of the preset's values; a name that is no field raises TypeError."""
        return dataclasses.replace(copy.deepcopy(self.model), **fields)

    def sampling(self) -> Dict[str, int]:
        """The `data.*` keys the preset sets."""
        values = {"clip_len": self.clip_len, "frame_interval": self.frame_interval}
        return {key: value for key, value in values.items() if value is not None}

    def hydra_node(self) -> Dict[str, Any]:
        """What `model=NAME` merges at the top of the config (package `_global_`): the whole
        `model` node and, where the preset has one, its sampling under `data`."""
        node: Dict[str, Any] = {"model": self.model_config()}
        if self.sampling():
            node["data"] = self.sampling()
        return node


def builder_name(preset_name: str) -> str:
    """The name of the Python builder of a preset: `r3d_18` -> `r3d_18`, `ptv/x3d_m` -> `ptv_x3d_m`
    (`action3d.models.ptv_x3d_m()` builds what `model=ptv/x3d_m` selects)."""
    name = preset_name.replace("/", "_")
    if not name.isidentifier():
        raise ValueError(f"model preset {preset_name!r}: its builder name {name!r} is no Python identifier")
    return name


# --------------------------------------------------------------------------- shared layouts
# Functions, not constants: each preset gets its own lists.

def _i3d_r50_fields() -> Dict[str, Any]:
    """I3D R50's stem and inflation (mmaction2 i3d_r50): 5x7x7 stem, temporal stride 2 in the
    stem conv and pool, 3x1x1 inflation of every other bottleneck."""
    return dict(arch="resnet3d", depth=50, conv1_kernel=[5, 7, 7], conv1_stride=[2, 2], pool1_stride=[2, 2],
                inflate=[[1, 1, 1], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0]], inflate_style="3x1x1",
                zero_init_residual=False)


def _slow_pathway_fields() -> Dict[str, Any]:
    """SlowFast's slow pathway (and SlowOnly): 1x7x7 stem, no temporal stride, 3x1x1 inflation in
    stages 3 and 4 only, no pool2."""
    return dict(depth=50, conv1_kernel=[1, 7, 7], with_pool2=False, inflate=[0, 0, 1, 1], inflate_style="3x1x1")


# --------------------------------------------------------------------------- the presets

TINY = ModelPreset(
    source="Small ResNet3d-18 for CPUs (the default): 16 base channels, one block per stage, 3x3x3 convs. "
           "About 0.9M parameters and 0.3 GFLOPs per 8x64x64 clip; a training step on a batch of 8 such "
           "clips takes tens of milliseconds on a 2-core CPU (channels_last_3d).",
    model=ModelConfig(name="tiny", arch="resnet3d", depth=18, base_channels=16, stage_blocks=[1, 1, 1, 1],
                      conv1_kernel=[3, 7, 7], with_pool2=False, dropout=0.2),
    clip_len=None, frame_interval=None)

R3D_18 = ModelPreset(
    source="torchvision's R3D-18 (Tran et al., CVPR 2018): 3x7x7 stem with stride (1,2,2) and no max-pool, "
           "3x3x3 convs everywhere, temporal and spatial stride 2 in stages 2-4. 33,371,472 parameters with "
           "400 classes (same as torchvision.models.video.r3d_18); torchvision's r3d_18 weights load into it "
           "(model.pretrained=PATH). 16 frames at 15 fps, as torchvision trains it.",
    model=ModelConfig(name="r3d_18", arch="resnet3d", depth=18, conv1_kernel=[3, 7, 7], with_pool1=False,
                      with_pool2=False, temporal_strides=[1, 2, 2, 2], inflate=[1, 1, 1, 1]),
    clip_len=16, frame_interval=2)

R3D_34 = ModelPreset(
    source="R3D-34: the r3d_18 layout (3x3x3 convs, no max-pool, temporal+spatial stride 2 in stages 2-4) "
           "with ResNet-34's (3, 4, 6, 3) basic blocks. 63.7M parameters with 400 classes.",
    model=ModelConfig(name="r3d_34", arch="resnet3d", depth=34, conv1_kernel=[3, 7, 7], with_pool1=False,
                      with_pool2=False, temporal_strides=[1, 2, 2, 2], inflate=[1, 1, 1, 1]),
    clip_len=16, frame_interval=2)

MC3_18 = ModelPreset(
    source="torchvision's MC3-18 (mixed convolutions): 3x3x3 convs in stage 1 only, 1x3x3 in stages 2-4, "
           "spatial stride 2 in stages 2-4 and no temporal stride. 11,695,440 parameters with 400 classes "
           "(same as torchvision.models.video.mc3_18, whose weights load into it).",
    model=ModelConfig(name="mc3_18", arch="resnet3d", depth=18, conv1_kernel=[3, 7, 7], with_pool1=False,
                      with_pool2=False, inflate=[1, 0, 0, 0]),
    clip_len=16, frame_interval=2)

I3D_R50 = ModelPreset(
    source="I3D ResNet-50 as in mmaction2 (i3d_r50 32x2x1): 5x7x7 stem with temporal stride 2, stem pool "
           "temporal stride 2, 3x1x1 inflation of every other bottleneck, a (2,1,1) pool after stage 1. "
           "inflate lists one 0/1 per block, so a depth override needs a matching inflate, e.g. "
           "model.depth=101 'model.inflate=[1,1,1,1]'.",
    model=ModelConfig(name="i3d_r50", **_i3d_r50_fields()),
    clip_len=32, frame_interval=2)

I3D_NL_R50 = ModelPreset(
    source="I3D ResNet-50 with 5 non-local blocks (mmaction2's i3d_nl_embedded_gaussian_r50 32x2x1): after "
           "every other block of stages 2 and 3, sub-sampled keys, output BN starting at zero. "
           "model.non_local_mode=dot_product gives mmaction2's dot-product variant.",
    model=ModelConfig(name="i3d_nl_r50", **_i3d_r50_fields(),
                      non_local=[[0, 0, 0], [0, 1, 0, 1], [0, 1, 0, 1, 0, 1], [0, 0, 0]],
                      non_local_mode="embedded_gaussian", non_local_sub_sample=True, non_local_use_scale=False),
    clip_len=32, frame_interval=2)

SLOWONLY_R50 = ModelPreset(
    source="SlowOnly ResNet-50 4x16 (the slow pathway of SlowFast alone): 1x7x7 stem, no temporal stride "
           "anywhere, 3x1x1 inflation only in stages 3 and 4, no pool2; 4 frames taken every 16. "
           "Deeper: model.depth=101.",
    model=ModelConfig(name="slowonly_r50", arch="resnet3d", **_slow_pathway_fields()),
    clip_len=4, frame_interval=16)

SLOWONLY_R50_8X8 = ModelPreset(
    source="SlowOnly ResNet-50 8x8 (the slow pathway of SlowFast alone): 1x7x7 stem, no temporal stride "
           "anywhere, 3x1x1 inflation only in stages 3 and 4, no pool2; 8 frames taken every 8. "
           "Deeper: model.depth=101.",
    model=ModelConfig(name="slowonly_r50_8x8", arch="resnet3d", **_slow_pathway_fields()),
    clip_len=8, frame_interval=8)

SLOWFAST_R50 = ModelPreset(
    source="SlowFast ResNet-50 4x16 (mmaction2 slowfast_r50 4x16): from a 32-frame clip (every 2nd frame) "
           "the slow pathway takes every 8th frame, the fast pathway 8x as many (alpha=8) with 1/8 of the "
           "channels; lateral convs (5x1x1, stride alpha) after the stem and stages 1-3. "
           "Deeper: model.depth=101.",
    model=ModelConfig(name="slowfast_r50", arch="slowfast", **_slow_pathway_fields(), resample_rate=8,
                      speed_ratio=8, channel_ratio=8, fusion_kernel=5, fast_conv1_kernel=[5, 7, 7],
                      fast_inflate=[1, 1, 1, 1]),
    clip_len=32, frame_interval=2)

SLOWFAST_R50_8X8 = ModelPreset(
    source="SlowFast ResNet-50 8x8 (mmaction2 slowfast_r50 8x8): from a 32-frame clip (every 2nd frame) "
           "the slow pathway takes every 4th frame, the fast pathway 4x as many (alpha=4) with 1/8 of the "
           "channels; lateral convs (7x1x1, stride alpha) after the stem and stages 1-3. "
           "Deeper: model.depth=101.",
    model=ModelConfig(name="slowfast_r50_8x8", arch="slowfast", **_slow_pathway_fields(), resample_rate=4,
                      speed_ratio=4, channel_ratio=8, fusion_kernel=7, fast_conv1_kernel=[5, 7, 7],
                      fast_inflate=[1, 1, 1, 1]),
    clip_len=32, frame_interval=2)


# --------------------------------------------------------------------------- the zoos' presets

R2PLUS1D_18 = ModelPreset(
    source="torchvision's R(2+1)D-18 (Tran et al., CVPR 2018; torchvision.models.video.r2plus1d_18): every 3x3x3 "
           "conv factorised into 1x3x3 (to M mid channels) + BN + ReLU + 3x1x1, M by torchvision's rule (both convs "
           "of a block take its first conv's M), a (2+1)D stem with 45 mid channels, no max-pool, temporal and "
           "spatial stride 2 in stages 2-4. 31,505,325 parameters with 400 classes; torchvision's weights load "
           "(model.pretrained=PATH) and give its logits. 40.52 GMACs per 16x112x112 clip (torchvision's "
           "R2Plus1D_18_Weights.KINETICS400_V1.meta['_ops']); 67.46% top-1 on Kinetics-400.",
    model=ModelConfig(name="r2plus1d_18", arch="resnet3d", depth=18, conv1_kernel=[3, 7, 7], with_pool1=False,
                      with_pool2=False, temporal_strides=[1, 2, 2, 2], inflate=[1, 1, 1, 1], conv_type="2plus1d",
                      mid_channels_rule="block", conv1_mid_channels=45),
    clip_len=16, frame_interval=2, native_input=(3, 16, 112, 112), zoo_gmacs=40.52)

_PTV = "PyTorchVideo 0.1.5's hub model {0} (pytorchvideo.models.hub.{0}; model zoo: docs/source/model_zoo.md, " \
       "{1} GFLOPs per view (fvcore's count of multiply-adds, at the zoo's test crop: the native input here) and " \
       "{2}M parameters, {3}% top-1 on Kinetics-400 at {4})"


def _ptv(name: str, gmacs: float, params: str, top1: str, sampling: str) -> str:
    return _PTV.format(name, gmacs, params, top1, sampling)


def _slow_r50_fields(depth: int = 50) -> Dict[str, Any]:
    return dict(_slow_pathway_fields(), depth=depth)


PTV_SLOW_R50 = ModelPreset(
    source=_ptv("slow_r50", 54.52, "32.45", "74.58", "8x8") + ": SlowOnly R50, 1x7x7 stem, 3x1x1 inflation in "
           "stages 3-4, no pool2 (the layout of slowonly_r50_8x8).",
    model=ModelConfig(name="ptv/slow_r50", arch="resnet3d", **_slow_r50_fields()),
    clip_len=8, frame_interval=8, native_input=(3, 8, 256, 256), zoo_gmacs=54.52)

PTV_C2D_R50 = ModelPreset(
    source=_ptv("c2d_r50", 25.89, "24.33", "71.46", "8x8") + ": no temporal kernel anywhere, 1x7x7 stem, a "
           "(2,1,1) max-pool after stage 1.",
    model=ModelConfig(name="ptv/c2d_r50", arch="resnet3d", depth=50, conv1_kernel=[1, 7, 7], with_pool2=True,
                      inflate=[0, 0, 0, 0]),
    clip_len=8, frame_interval=8, native_input=(3, 8, 256, 256), zoo_gmacs=25.89)

PTV_I3D_R50 = ModelPreset(
    source=_ptv("i3d_r50", 37.53, "28.04", "73.27", "8x8") + ": 5x7x7 stem without temporal stride (mmaction2's "
           "i3d_r50 strides it: the same tensors, other strides), 3x1x1 inflation of every other bottleneck, a "
           "(2,1,1) max-pool after stage 1.",
    model=ModelConfig(name="ptv/i3d_r50", **dict(_i3d_r50_fields(), conv1_stride=[1, 2], pool1_stride=[1, 2])),
    clip_len=8, frame_interval=8, native_input=(3, 8, 256, 256), zoo_gmacs=37.53)


def _ptv_slowfast(name: str, depth: int, fusion_kernel: int) -> ModelConfig:
    """PyTorchVideo's SlowFast 8x8 (alpha 4): laterals with BN and ReLU, the slow frames at linspace."""
    return ModelConfig(name=name, arch="slowfast", **_slow_r50_fields(depth), resample_rate=4, speed_ratio=4,
                       channel_ratio=8, fusion_kernel=fusion_kernel, fast_conv1_kernel=[5, 7, 7],
                       fast_inflate=[1, 1, 1, 1], lateral_norm=True, slow_sampling="linspace")


PTV_SLOWFAST_R50 = ModelPreset(
    source=_ptv("slowfast_r50", 65.71, "34.57", "76.94", "8x8") + ": from 32 frames the slow pathway takes 8 at "
           "linspace(0, 31), the fast one all 32 (alpha 4, beta 1/8); lateral 7x1x1 convs with BN and ReLU (928 "
           "parameters more than slowfast_r50_8x8); the head concatenates slow then fast (columns reordered on "
           "loading).",
    model=_ptv_slowfast("ptv/slowfast_r50", 50, 7),
    clip_len=32, frame_interval=2, native_input=(3, 32, 256, 256), zoo_gmacs=65.71)

PTV_SLOWFAST_R101 = ModelPreset(
    source=_ptv("slowfast_r101", 127.20, "62.83", "77.90", "8x8") + ": ptv/slowfast_r50's layout at depth 101 "
           "with 5x1x1 laterals.",
    model=_ptv_slowfast("ptv/slowfast_r101", 101, 5),
    clip_len=32, frame_interval=2, native_input=(3, 32, 256, 256), zoo_gmacs=127.20)

PTV_CSN_R101 = ModelPreset(
    source=_ptv("csn_r101", 75.62, "22.21", "77.00", "32x2") + ": ir-CSN R101 (Tran et al., ICCV 2019), "
           "channel-wise 3x3x3 middle convs, 3x7x7 stem, temporal and spatial stride 2 in stages 2-4. mmaction2's "
           "ircsn/ipcsn R152: model.depth=152 model.norm_eps=0.001 (model.bottleneck_mode=ip).",
    model=ModelConfig(name="ptv/csn_r101", arch="resnet3d", depth=101, conv1_kernel=[3, 7, 7], with_pool2=False,
                      temporal_strides=[1, 2, 2, 2], inflate=[1, 1, 1, 1], inflate_style="3x3x3",
                      bottleneck_mode="ir"),
    clip_len=32, frame_interval=2, native_input=(3, 32, 256, 256), zoo_gmacs=75.62)

PTV_R2PLUS1D_R50 = ModelPreset(
    source=_ptv("r2plus1d_r50", 76.45, "28.11", "76.01", "16x4") + ": bottlenecks whose 3x3x3 conv is factorised "
           "temporal first (3x1x1 + BN + ReLU + 1x3x3, as many mid channels as its output), a 1x7x7 stem without "
           "max-pool, spatial stride 2 in every stage, temporal stride 2 in stages 3-4. The hub model ends in a "
           "softmax in eval mode; action3d's gives logits.",
    model=ModelConfig(name="ptv/r2plus1d_r50", arch="resnet3d", depth=50, conv1_kernel=[1, 7, 7], with_pool1=False,
                      with_pool2=False, spatial_strides=[2, 2, 2, 2], temporal_strides=[1, 1, 2, 2],
                      inflate=[1, 1, 1, 1], inflate_style="3x3x3", conv_type="2plus1d", temporal_first=True,
                      mid_channels_rule="out"),
    clip_len=16, frame_interval=4, native_input=(3, 16, 256, 256), zoo_gmacs=76.45)


def x3d_round_width(width: float, multiplier: float, divisor: int = 8) -> int:
    """PySlowFast's `round_width` (video_model_builder / utils): width * multiplier to a multiple of 8."""
    width *= multiplier
    rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * width else rounded)


def x3d_fields(name: str, depth_factor: float, width_factor: float = 2.0) -> ModelConfig:
    """X3D as PySlowFast builds it: stem width round_width(12, width_factor) (24), stage widths 24, 48, 96,
    192 (doubling), blocks ceil(depth_factor * [1, 2, 5, 3]), spatial stride 2 in the stem and every
    stage, a 5x1x1 channel-wise temporal stem conv, bottleneck factor 2.25, SE 1/16, a 2048-wide head."""
    blocks: List[int] = [int(math.ceil(depth_factor * b)) for b in (1, 2, 5, 3)]
    return ModelConfig(name=name, arch="x3d", depth=50, base_channels=x3d_round_width(12, width_factor),
                       stage_blocks=blocks, conv1_kernel=[5, 3, 3], conv1_stride=[1, 2], with_pool1=False,
                       with_pool2=False, spatial_strides=[2, 2, 2, 2], temporal_strides=[1, 1, 1, 1],
                       inflate=[1, 1, 1, 1], shortcut_norm="widening", bottleneck_ratio=2.25, se_ratio=0.0625,
                       head_channels=2048)


_X3D = (": X3D (Feichtenhofer, CVPR 2020) with width factor 2.0 and depth factor {0} ({1} blocks per stage), "
        "SE on every other block, swish; PyTorchVideo's first-stage shortcut has no BN (model.shortcut_norm="
        "widening; PySlowFast's has one: always). Clips of {2}; fvcore's count includes norms and "
        "element-wise ops, action3d's only convolutions and products (about 8% less); the hub model ends in a "
        "softmax in eval mode.")

PTV_X3D_XS = ModelPreset(
    source=_ptv("x3d_xs", 0.91, "3.79", "69.12", "4x12")
           + _X3D.format(2.2, "3, 5, 11, 7", "4 frames, 160 px in training, 182 px in test"),
    model=x3d_fields("ptv/x3d_xs", 2.2), clip_len=4, frame_interval=12, native_input=(3, 4, 182, 182),
    zoo_gmacs=0.91)
PTV_X3D_S = ModelPreset(
    source=_ptv("x3d_s", 2.96, "3.79", "73.33", "13x6")
           + _X3D.format(2.2, "3, 5, 11, 7", "13 frames, 160 px in training, 182 px in test"),
    model=x3d_fields("ptv/x3d_s", 2.2), clip_len=13, frame_interval=6, native_input=(3, 13, 182, 182),
    zoo_gmacs=2.96)
PTV_X3D_M = ModelPreset(
    source=_ptv("x3d_m", 6.72, "3.79", "75.94", "16x5")
           + _X3D.format(2.2, "3, 5, 11, 7", "16 frames, 224 px in training, 256 px in test"),
    model=x3d_fields("ptv/x3d_m", 2.2), clip_len=16, frame_interval=5, native_input=(3, 16, 256, 256),
    zoo_gmacs=6.72)
PTV_X3D_L = ModelPreset(
    source=_ptv("x3d_l", 26.64, "6.15", "77.44", "16x5")
           + _X3D.format(5.0, "5, 10, 25, 15", "16 frames, 312 px in training, 356 px in test"),
    model=x3d_fields("ptv/x3d_l", 5.0), clip_len=16, frame_interval=5, native_input=(3, 16, 356, 356),
    zoo_gmacs=26.64)


def _hara(depth: int) -> ModelPreset:
    """Kensho Hara's 3D ResNet (github.com/kenshohara/3D-ResNets-PyTorch, models/resnet.py)."""
    bottleneck = depth >= 50
    return ModelPreset(
        source=f"Hara et al.'s 3D ResNet-{depth} (CVPR 2018; github.com/kenshohara/3D-ResNets-PyTorch, "
               "models/resnet.py): 7x7x7 stem with stride (1,2,2), a 3x3x3 max-pool with stride 2, 3x3x3 convs "
               "(bottlenecks: 1x1x1 + 3x3x3 + 1x1x1), temporal and spatial stride 2 in stages 2-4, 16x112x112 "
               "clips of consecutive frames. Shortcut B (conv + BN), as in the 2020 release (r3d*_K/KM_200ep.pth: "
               "Kinetics-700, Moments in Time); the 2018 release's ResNet-18/34 (resnet-18/34-kinetics.pth) use "
               "shortcut A: model.shortcut_type=A. The project publishes no multiply-add counts.",
        model=ModelConfig(name=f"hara/resnet{depth}", arch="resnet3d", depth=depth, conv1_kernel=[7, 7, 7],
                          conv1_stride=[1, 2], pool1_kernel=[3, 3, 3], pool1_stride=[2, 2], with_pool2=False,
                          temporal_strides=[1, 2, 2, 2], inflate=[1, 1, 1, 1],
                          **(dict(inflate_style="3x3x3") if bottleneck else {})),
        clip_len=16, frame_interval=1, native_input=(3, 16, 112, 112))


HARA = tuple(_hara(depth) for depth in (10, 18, 34, 50, 101, 152, 200))
ZOO_PRESETS = (R2PLUS1D_18, PTV_SLOW_R50, PTV_SLOWFAST_R50, PTV_SLOWFAST_R101, PTV_I3D_R50, PTV_C2D_R50, PTV_CSN_R101,
               PTV_R2PLUS1D_R50, PTV_X3D_XS, PTV_X3D_S, PTV_X3D_M, PTV_X3D_L, *HARA)


def presets_by_name(*presets: ModelPreset) -> Dict[str, ModelPreset]:
    """name -> preset, the name taken from each preset's config (written once)."""
    by_name = {preset.name: preset for preset in presets}
    if len(by_name) != len(presets):
        raise ValueError(f"two model presets share a name: {[p.name for p in presets]}")
    return by_name


# `model=NAME` -> its preset. Nested names (`ptv/x3d_m`) select `model=ptv/x3d_m`.
PRESETS: Dict[str, ModelPreset] = presets_by_name(
    TINY, R3D_18, R3D_34, MC3_18, I3D_R50, I3D_NL_R50, SLOWONLY_R50, SLOWONLY_R50_8X8, SLOWFAST_R50,
    SLOWFAST_R50_8X8, *ZOO_PRESETS)


def register_model_presets(store: ConfigStore, presets: Mapping[str, ModelPreset] = PRESETS) -> None:
    """Register each preset as the config `model=NAME` selects: `model/NAME` in the store, package
    `_global_` (it sets `model` and `data` keys, as a `# @package _global_` YAML file would)."""
    for name, preset in presets.items():
        group, _, leaf = f"{PRESET_GROUP}/{name}".rpartition("/")
        store.store(group=group, name=leaf, node=preset.hydra_node(), package="_global_")
