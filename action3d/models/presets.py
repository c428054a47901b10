"""Named builders, one per model preset, like torchvision's `r3d_18()`.

Each builds, through `build_model`, the preset value `action3d train model=NAME` composes
(`action3d.config.model_presets.PRESETS`, the one source of every preset), returning a
`Recognizer` (backbone + head). Keyword overrides that are `ModelConfig` fields (`depth=`,
`dropout=`, `frozen_stages=`, ...) replace the preset's values; any other keyword (`norm_layer=`,
`act_layer=`, `block=`) goes to the backbone constructor (to both pathways of SlowFast).
The builder of `model=a/b` is `a_b` (`builder_name`).

    from action3d.models import r3d_18
    model = r3d_18(num_classes=101)          # (N, 3, T, H, W) -> (N, 101)
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Tuple

from action3d.config.model import ModelConfig
from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.config.model_presets import builder_name
from action3d.models.builder import build_model
from action3d.models.recognizer import Recognizer

_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelConfig))


def preset_arguments(preset_name: str, num_classes: int,
                     overrides: Dict[str, Any]) -> Tuple[ModelConfig, Dict[str, Any]]:
    """(the preset's config with the overrides that are config fields, the backbone options)."""
    fields = {key: value for key, value in overrides.items() if key in _CONFIG_FIELDS}
    options = {key: value for key, value in overrides.items() if key not in _CONFIG_FIELDS}
    return MODEL_PRESETS[preset_name].model_config(num_classes=num_classes, **fields), options


def preset_builder(preset_name: str) -> Callable[..., Recognizer]:
    """The builder function of a preset, named by `builder_name`, documented by the preset."""
    def builder(num_classes: int = 400, **overrides: Any) -> Recognizer:
        cfg, backbone_options = preset_arguments(preset_name, num_classes, overrides)
        return build_model(cfg, backbone_options=backbone_options)

    builder.__name__ = builder.__qualname__ = builder_name(preset_name)
    builder.__doc__ = (f"`model={preset_name}`: {MODEL_PRESETS[preset_name].source}\n\n"
                       "Overrides: ModelConfig fields replace the preset's values; other keywords "
                       "(norm_layer=, act_layer=) go to the backbone.")
    builder.preset_name = preset_name  # type: ignore[attr-defined]
    return builder


tiny = preset_builder("tiny")
r3d_18 = preset_builder("r3d_18")
r3d_34 = preset_builder("r3d_34")
mc3_18 = preset_builder("mc3_18")
i3d_r50 = preset_builder("i3d_r50")
i3d_nl_r50 = preset_builder("i3d_nl_r50")
slowonly_r50 = preset_builder("slowonly_r50")
slowonly_r50_8x8 = preset_builder("slowonly_r50_8x8")
slowfast_r50 = preset_builder("slowfast_r50")
slowfast_r50_8x8 = preset_builder("slowfast_r50_8x8")
r2plus1d_18 = preset_builder("r2plus1d_18")
# PyTorchVideo's hub models (`model=ptv/NAME`)
ptv_slow_r50 = preset_builder("ptv/slow_r50")
ptv_slowfast_r50 = preset_builder("ptv/slowfast_r50")
ptv_slowfast_r101 = preset_builder("ptv/slowfast_r101")
ptv_i3d_r50 = preset_builder("ptv/i3d_r50")
ptv_c2d_r50 = preset_builder("ptv/c2d_r50")
ptv_csn_r101 = preset_builder("ptv/csn_r101")
ptv_r2plus1d_r50 = preset_builder("ptv/r2plus1d_r50")
ptv_x3d_xs = preset_builder("ptv/x3d_xs")
ptv_x3d_s = preset_builder("ptv/x3d_s")
ptv_x3d_m = preset_builder("ptv/x3d_m")
ptv_x3d_l = preset_builder("ptv/x3d_l")
# Kensho Hara's 3D ResNets (`model=hara/resnetD`)
hara_resnet10 = preset_builder("hara/resnet10")
hara_resnet18 = preset_builder("hara/resnet18")
hara_resnet34 = preset_builder("hara/resnet34")
hara_resnet50 = preset_builder("hara/resnet50")
hara_resnet101 = preset_builder("hara/resnet101")
hara_resnet152 = preset_builder("hara/resnet152")
hara_resnet200 = preset_builder("hara/resnet200")

# `model=NAME` -> its builder (a test checks that every preset has one, named by `builder_name`).
PRESETS: Dict[str, Callable[..., Recognizer]] = {
    builder.preset_name: builder  # type: ignore[attr-defined]
    for builder in (tiny, r3d_18, r3d_34, mc3_18, i3d_r50, i3d_nl_r50, slowonly_r50, slowonly_r50_8x8,
                    slowfast_r50, slowfast_r50_8x8, r2plus1d_18, ptv_slow_r50, ptv_slowfast_r50, ptv_slowfast_r101,
                    ptv_i3d_r50, ptv_c2d_r50, ptv_csn_r101, ptv_r2plus1d_r50, ptv_x3d_xs, ptv_x3d_s, ptv_x3d_m,
                    ptv_x3d_l, hara_resnet10, hara_resnet18, hara_resnet34, hara_resnet50, hara_resnet101,
                    hara_resnet152, hara_resnet200)}
