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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

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
    """
    model: ModelConfig
    clip_len: Optional[int]
    frame_interval: Optional[int]
    source: str

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


def presets_by_name(*presets: ModelPreset) -> Dict[str, ModelPreset]:
    """name -> preset, the name taken from each preset's config (written once)."""
    by_name = {preset.name: preset for preset in presets}
    if len(by_name) != len(presets):
        raise ValueError(f"two model presets share a name: {[p.name for p in presets]}")
    return by_name


# `model=NAME` -> its preset. Nested names (`ptv/x3d_m`) select `model=ptv/x3d_m`.
PRESETS: Dict[str, ModelPreset] = presets_by_name(
    TINY, R3D_18, R3D_34, MC3_18, I3D_R50, I3D_NL_R50, SLOWONLY_R50, SLOWONLY_R50_8X8, SLOWFAST_R50,
    SLOWFAST_R50_8X8)


def register_model_presets(store: ConfigStore, presets: Mapping[str, ModelPreset] = PRESETS) -> None:
    """Register each preset as the config `model=NAME` selects: `model/NAME` in the store, package
    `_global_` (it sets `model` and `data` keys, as a `# @package _global_` YAML file would)."""
    for name, preset in presets.items():
        group, _, leaf = f"{PRESET_GROUP}/{name}".rpartition("/")
        store.store(group=group, name=leaf, node=preset.hydra_node(), package="_global_")
