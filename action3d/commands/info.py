"""`action3d info [model overrides] input=[C,T,H,W]`: per-stage shapes, parameters, GFLOPs, and a zoo
preset's published multiply-adds at its native input."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from action3d.commands import _hydra
from action3d.config import InfoConfig
from action3d.config.model import ModelConfig
from action3d.config.model_presets import PRESETS

# Keys that leave the network's arithmetic unchanged: a preset with other values is still the zoo's.
NOT_ARCHITECTURE = ("num_classes", "pretrained", "pretrained2d", "dropout", "frozen_stages", "norm_eval", "with_cp",
                    "zero_init_residual")


def zoo_gmacs(model_cfg: ModelConfig, input_shape: Any) -> Optional[float]:
    """The multiply-adds the zoo publishes for this model, when it is a zoo preset's architecture
    and `input_shape` its native input; else None."""
    preset = PRESETS.get(model_cfg.name)
    if preset is None or preset.zoo_gmacs is None or tuple(input_shape) != preset.native_input:
        return None
    ours = {k: v for k, v in dataclasses.asdict(model_cfg).items() if k not in NOT_ARCHITECTURE}
    theirs = {k: v for k, v in dataclasses.asdict(preset.model).items() if k not in NOT_ARCHITECTURE}
    return preset.zoo_gmacs if ours == theirs else None


def run(cfg: InfoConfig) -> Dict[str, Any]:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.models import build_model
    from action3d.models.summary import format_summary, model_summary

    model_cfg = cfg.model
    if model_cfg.num_classes is None:
        model_cfg = dataclasses.replace(model_cfg, num_classes=cfg.default_num_classes)
    model = build_model(model_cfg).eval()
    summary = model_summary(model, input_shape=tuple(cfg.input))
    summary["zoo_gmacs"] = zoo_gmacs(model_cfg, cfg.input)
    print(f"model {model_cfg.name} ({model_cfg.arch}, depth {model_cfg.depth}, {model_cfg.num_classes} classes), "
          f"input [C,T,H,W]={list(cfg.input)}")
    print(format_summary(summary), flush=True)
    return summary
