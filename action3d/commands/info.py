"""`action3d info [model overrides] input=[C,T,H,W]`: per-stage shapes, parameters, GFLOPs."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

from action3d.commands import _hydra
from action3d.config import InfoConfig


def run(cfg: InfoConfig) -> Dict[str, Any]:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.models import build_model
    from action3d.models.summary import format_summary, model_summary

    model_cfg = cfg.model
    if model_cfg.num_classes is None:
        model_cfg = dataclasses.replace(model_cfg, num_classes=cfg.default_num_classes)
    model = build_model(model_cfg).eval()
    summary = model_summary(model, input_shape=tuple(cfg.input))
    print(f"model {model_cfg.name} ({model_cfg.arch}, depth {model_cfg.depth}, {model_cfg.num_classes} classes), "
          f"input [C,T,H,W]={list(cfg.input)}")
    print(format_summary(summary), flush=True)
    return summary
