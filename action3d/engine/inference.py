"""Shared by `eval` and `predict`: rebuild a trained model from its checkpoint, score views."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List

import torch
from torch import nn

from action3d.config import TrainConfig
from action3d.engine.checkpoint import load_checkpoint
from action3d.errors import Action3dError, first_line
from action3d.models import build_model


@dataclass
class TrainedModel:
    model: nn.Module
    config: TrainConfig         # the resolved training config stored in the checkpoint (today's schema)
    classes: List[str]
    path: str


def read_trained_checkpoint(path: str) -> Dict[str, Any]:
    """An action3d training checkpoint's contents (weights, config as stored, classes)."""
    state = load_checkpoint(path)
    if "config" not in state or "model" not in state:
        raise Action3dError(f"ckpt={path} is not an action3d training checkpoint (no config/model entries); "
                            "to use foreign weights, train or fine-tune with model.pretrained=PATH")
    return state


def trained_model(state: Dict[str, Any], config: TrainConfig, *, path: str, device: torch.device,
                  channels_last: bool = True) -> TrainedModel:
    """The model of a checkpoint's `state`, rebuilt from `config` (its stored config in today's
    schema: `action3d.commands._checkpoint.upgrade_config`), on `device` in eval mode."""
    model_cfg = dataclasses.replace(config.model, pretrained=None)   # the weights come from this checkpoint
    model = build_model(model_cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise Action3dError(f"ckpt={path}: its weights do not fit the model its config describes "
                            f"({first_line(str(err))})") from None
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    classes = list(state.get("classes") or [str(i) for i in range(model_cfg.num_classes)])
    return TrainedModel(model=model, config=dataclasses.replace(config, model=model_cfg), classes=classes,
                        path=str(path))


def score_views(model: nn.Module, x: torch.Tensor, average: str, *,
                channels_last: bool = True, multi_label: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, T, H, W) or (N, V, C, T, H, W) float -> (video scores (N, K), view logits (N, V, K)).

    average='prob' averages the softmax of the views (the video scores are probabilities), or
    under `multi_label` each class's sigmoid (independent probabilities); 'score' averages the
    logits. channels_last: run the views in channels_last_3d layout.
    """
    if x.dim() == 5:
        x = x.unsqueeze(1)
    n, v = x.shape[:2]
    views = x.flatten(0, 1)                                              # (N*V, C, T, H, W)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    views = views.contiguous(memory_format=layout)
    logits = model(views).float().view(n, v, -1)                          # (N, V, K)
    if average == "prob":
        probs = logits.sigmoid() if multi_label else logits.softmax(dim=-1)
        return probs.mean(dim=1), logits
    return logits.mean(dim=1), logits
