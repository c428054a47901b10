"""Building a zoo preset's model and loading a foreign checkpoint into it, in one call.

    model, line = load_zoo_checkpoint("X3D_M.pyth", "ptv/x3d_m")            # 400 classes, from the file
    model, line = load_zoo_checkpoint("r3d18_K_200ep.pth", "hara/resnet18", num_classes=700)
    model, line = load_zoo_checkpoint("resnet-18-kinetics.pth",
                                      PRESETS["hara/resnet18"].model_config(shortcut_type="A"))

`line` is the one-line report `model.pretrained=FILE` prints (kind, tensors loaded, head; a note
when the file was made for another preset). Any file `model.pretrained` reads works.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

from action3d.config.model import ModelConfig
from action3d.config.model_presets import PRESETS
from action3d.errors import Action3dError
from action3d.models.builder import build_model
from action3d.models.recognizer import Recognizer
from action3d.models.weights import load_pretrained
from action3d.models.weights_convert import find_state_dict
from action3d.models.weights_io import read_checkpoint

HEAD_KEYS = ("cls_head.fc_cls.weight", "fc.weight", "head.projection.weight", "pred_w", "fc_cls.weight")


def head_classes(ckpt: object, origin: str) -> Optional[int]:
    """The class count of a checkpoint's classifier (None: no classifier found)."""
    _, state = find_state_dict(ckpt, origin)
    heads = [t for k, t in state.items() if k.endswith(HEAD_KEYS) or k.endswith(".proj.weight")]
    return int(heads[-1].shape[0]) if heads and heads[-1].dim() == 2 else None


def zoo_model_config(model: Union[str, ModelConfig], num_classes: int) -> ModelConfig:
    """A preset's config (by name) or the given config, with `num_classes` and no `pretrained`."""
    if isinstance(model, str):
        if model not in PRESETS:
            raise Action3dError(f"model={model}: no such preset; presets: {', '.join(sorted(PRESETS))}")
        return PRESETS[model].model_config(num_classes=num_classes, pretrained=None)
    return dataclasses.replace(model, num_classes=num_classes, pretrained=None)


def load_zoo_checkpoint(path: Union[str, Path], model: Union[str, ModelConfig], *, num_classes: Optional[int] = None,
                        log: Callable[[str], object] = lambda line: None) -> Tuple[Recognizer, str]:
    """(the model of preset `model` (a name, or a `ModelConfig`) with the weights of `path` loaded,
    the one-line report). `num_classes` unset: the file's classifier's; set and different, the head
    is re-initialised (the report says so). A zoo file whose tensors do not all fit raises
    `Action3dError` in one line; so do unreadable files and unknown layouts. `log` also gets the line."""
    ckpt = read_checkpoint(path)
    classes = num_classes or head_classes(ckpt, str(path))
    if classes is None:
        raise Action3dError(f"{path}: holds no classifier to take the class count from; give num_classes")
    cfg = zoo_model_config(model, classes)
    recognizer = build_model(cfg, log=lambda line: None)
    lines = []
    load_pretrained(recognizer, ckpt, log=lines.append, allow_2d=False, target=cfg.name, origin=str(path))
    log(lines[-1])
    return recognizer, lines[-1]
