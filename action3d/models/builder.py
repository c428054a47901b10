"""build_model: the `model` config node -> a Recognizer (plain calls, no registry)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from omegaconf import DictConfig, OmegaConf
from torch import nn

from action3d.config.backbone_args import derive_slowfast_pathways, resnet3d_kwargs
from action3d.config.model import ModelConfig
from action3d.config.model_checks import check_recognizer
from action3d.errors import Action3dError
from action3d.models.families import build_head, family_options
from action3d.models.recognizer import Recognizer
from action3d.models.resnet3d import ResNet3d
from action3d.models.slowfast import ResNet3dSlowFast


def to_model_config(cfg: Union[DictConfig, ModelConfig, Mapping[str, Any]]) -> ModelConfig:
    """Accept the Hydra node, the dataclass or a plain dict; unset keys take the defaults."""
    if isinstance(cfg, ModelConfig):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    values = dict(cfg)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise Action3dError(f"unknown model key(s) {', '.join('model.' + k for k in unknown)}; "
                            f"known keys: {', '.join(sorted(known))}")
    return ModelConfig(**values)


def build_backbone(cfg: ModelConfig, backbone_options: Optional[Mapping[str, Any]] = None) -> nn.Module:
    """The backbone the config describes (arguments derived by `action3d.config.backbone_args`).

    `backbone_options`: ResNet3d arguments a config cannot hold (`norm_layer=`, `act_layer=`,
    `block=`, `conv_layer=`), given to ResNet3d or to both SlowFast pathways; they replace the
    builders of the config's family (`action3d.models.families`); a config field there is a TypeError.
    """
    options = {**family_options(cfg), **(backbone_options or {})}
    if cfg.arch != "slowfast":
        return ResNet3d(**resnet3d_kwargs(cfg), **options)
    slow, fast = derive_slowfast_pathways(cfg)
    return ResNet3dSlowFast(resample_rate=cfg.resample_rate, speed_ratio=cfg.speed_ratio,
                            channel_ratio=cfg.channel_ratio, fusion_kernel=cfg.fusion_kernel,
                            lateral_norm=cfg.lateral_norm, slow_sampling=cfg.slow_sampling,
                            slow_pathway=dict(**slow, **options), fast_pathway=dict(**fast, **options))


def build_model(cfg: Union[DictConfig, ModelConfig, Mapping[str, Any]], *,
                log: Callable[[str], None] = print,
                backbone_options: Optional[Mapping[str, Any]] = None,
                classes: Optional[Sequence[str]] = None) -> Recognizer:
    """Build the recognizer described by the `model` config node.

    `cfg.num_classes` must be set by now (the CLI fills it from the dataset). With
    `cfg.pretrained` set, weights are loaded by `action3d.models.weights.load_pretrained`, which
    reports what it loaded through `log`. Invalid values raise `Action3dError`.
    `backbone_options` go to the backbone as in `build_backbone` (the named builders pass theirs).
    `classes`: the dataset's class names, matched by name against a checkpoint that names its own.
    """
    cfg = to_model_config(cfg)
    check_recognizer(arch=cfg.arch, num_classes=cfg.num_classes, dropout=cfg.dropout)
    if cfg.num_classes is None:
        raise Action3dError("model.num_classes is not set: give it, or let `action3d train` take it "
                            "from the dataset's class list")
    backbone = build_backbone(cfg, backbone_options)
    model = Recognizer(backbone, build_head(cfg, backbone))
    if cfg.pretrained:
        try:
            from action3d.models.weights import load_pretrained
        except ImportError as err:
            raise Action3dError(f"model.pretrained={cfg.pretrained} cannot be loaded: weight "
                                f"loading (action3d.models.weights) is unavailable: {err}"
                                ) from err
        load_pretrained(model, cfg.pretrained, log=log, allow_2d=cfg.pretrained2d, target=cfg.name, classes=classes)
    return model
