"""A zoo's own checkpoint file (torchvision, mmaction2, PyTorchVideo, PySlowFast, Hara) as a
`TrainedModel`, for `action3d eval zoo=SOURCE/NAME ckpt=FILE`.

`load_zoo_checkpoint` is the one place a foreign file becomes a model for evaluation: the preset's
architecture (`zoo=` selects it), a head of the zoo's class count, and every tensor of the file,
head included; anything that does not fit is refused, never re-initialised. It goes through
`action3d.models.weights.load_pretrained`, which knows every layout by its keys (torchvision,
mmaction2, PyTorchVideo hub files, PySlowFast .pyth and Caffe2 .pkl, Hara's checkpoints).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Sequence

import torch

from action3d.config import DataConfig, ModelConfig, TrainConfig
from action3d.engine.inference import TrainedModel
from action3d.errors import Action3dError
from action3d.models import build_model

log = logging.getLogger("action3d")


def load_zoo_checkpoint(model_cfg: ModelConfig, classes: Sequence[str], state: Mapping[str, Any], *, path: str,
                        data_cfg: DataConfig, device: torch.device, channels_last: bool = True) -> TrainedModel:
    """The zoo preset `model_cfg` with `len(classes)` outputs, every tensor loaded from `state`
    (the file at `path`, already read), in eval mode on `device`."""
    from action3d.models.weights import load_pretrained

    model_cfg = dataclasses.replace(model_cfg, num_classes=len(classes), pretrained=None)
    model = build_model(model_cfg, log=log.info)
    try:
        report = load_pretrained(model, state, log=log.info, allow_2d=False, target=model_cfg.name, origin=str(path))
    except Action3dError as err:
        raise Action3dError(f"ckpt={path}: {str(err).replace('<state dict>: ', '')}") from None
    if report.head_reset:
        raise Action3dError(f"ckpt={path}: its classifier does not fit the {len(classes)} classes of the zoo's head "
                            f"({report.head_note}); is it the file of another zoo preset?")
    problems = report.missing + report.mismatched + report.unused
    if problems:
        raise Action3dError(f"ckpt={path}: does not fit model {model_cfg.name} exactly ({len(problems)} tensors, e.g. "
                            f"{problems[0]}); is it the file of another zoo preset?")
    log.info("ckpt=%s [%s]: %d tensors loaded into model %s", path, report.kind, len(report.loaded), model_cfg.name)
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return TrainedModel(model=model, config=TrainConfig(model=model_cfg, data=data_cfg), classes=list(classes),
                        path=str(path))
