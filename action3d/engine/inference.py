"""Shared by `eval` and `predict`: rebuild a trained model from its checkpoint, score views."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from action3d.engine.checkpoint import load_checkpoint
from action3d.errors import Action3dError
from action3d.models import build_model


@dataclass
class TrainedModel:
    model: nn.Module
    config: DictConfig          # the resolved training config stored in the checkpoint
    classes: List[str]
    path: str


def load_trained_model(path: str, device: torch.device, *, channels_last: bool = True) -> TrainedModel:
    """Model, class names and data config (normalisation, sampling) from an action3d checkpoint."""
    state = load_checkpoint(path)
    if "config" not in state or "model" not in state:
        raise Action3dError(f"ckpt={path} is not an action3d training checkpoint (no config/model entries); "
                            "to use foreign weights, train or fine-tune with model.pretrained=PATH")
    config = OmegaConf.create(state["config"])
    model_cfg = config.model.copy()
    model_cfg.pretrained = None              # the weights come from this checkpoint
    model = build_model(model_cfg)
    model.load_state_dict(state["model"])
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    classes = list(state.get("classes") or [str(i) for i in range(model_cfg.num_classes)])
    return TrainedModel(model=model, config=config, classes=classes, path=str(path))


def score_views(model: nn.Module, x: torch.Tensor, average: str, *,
                channels_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, T, H, W) or (N, V, C, T, H, W) float -> (video scores (N, K), view logits (N, V, K)).

    average='prob' averages the softmax of the views (the video scores are probabilities);
    'score' averages the logits. channels_last: run the views in channels_last_3d layout.
    """
    if x.dim() == 5:
        x = x.unsqueeze(1)
    n, v = x.shape[:2]
    views = x.flatten(0, 1)                                              # (N*V, C, T, H, W)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    views = views.contiguous(memory_format=layout)
    logits = model(views).float().view(n, v, -1)                          # (N, V, K)
    if average == "prob":
        return logits.softmax(dim=-1).mean(dim=1), logits
    return logits.mean(dim=1), logits
