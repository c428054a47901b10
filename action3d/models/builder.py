"""build_model: the `model` config node -> a Recognizer (plain calls, no registry)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Union

from omegaconf import DictConfig, OmegaConf
from torch import nn

from action3d.config.model import ModelConfig
from action3d.errors import Action3dError
from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.recognizer import Recognizer
from action3d.models.resnet3d import ResNet3d
from action3d.models.slowfast import ResNet3dSlowFast

# ModelConfig fields passed unchanged to ResNet3d (and to the slow pathway of SlowFast).
_BACKBONE_KEYS = (
    "stage_blocks", "pretrained2d", "in_channels", "base_channels", "num_stages",
    "spatial_strides", "temporal_strides", "dilations", "conv1_kernel", "conv1_stride",
    "pool1_stride", "with_pool1", "with_pool2", "style", "advanced", "shortcut_type",
    "frozen_stages", "inflate", "inflate_style", "non_local", "non_local_mode",
    "non_local_sub_sample", "non_local_use_scale", "norm_eval", "with_cp", "zero_init_residual",
)


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


def _backbone_kwargs(cfg: ModelConfig) -> Dict[str, Any]:
    return {key: getattr(cfg, key) for key in _BACKBONE_KEYS}


def build_backbone(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "resnet3d":
        out_indices = (cfg.num_stages - 1,) if cfg.out_indices is None else tuple(cfg.out_indices)
        return ResNet3d(cfg.depth, out_indices=out_indices, **_backbone_kwargs(cfg))
    # SlowFast: the top-level fields describe the slow pathway; the fast one shares depth,
    # strides and options, with 1/channel_ratio of the channels and its own stem and inflation.
    slow = dict(depth=cfg.depth, lateral=True, **_backbone_kwargs(cfg))
    fast = dict(slow, lateral=False, base_channels=cfg.base_channels // cfg.channel_ratio,
                conv1_kernel=cfg.fast_conv1_kernel, inflate=cfg.fast_inflate, non_local=0)
    for pathway in (slow, fast):
        pathway["out_indices"] = (cfg.num_stages - 1,)
    return ResNet3dSlowFast(resample_rate=cfg.resample_rate, speed_ratio=cfg.speed_ratio,
                            channel_ratio=cfg.channel_ratio, fusion_kernel=cfg.fusion_kernel,
                            slow_pathway=slow, fast_pathway=fast)


def build_model(cfg: Union[DictConfig, ModelConfig, Mapping[str, Any]], *,
                log: Callable[[str], None] = print) -> Recognizer:
    """Build the recognizer described by the `model` config node.

    `cfg.num_classes` must be set by now (the CLI fills it from the dataset). With
    `cfg.pretrained` set, weights are loaded by `action3d.models.weights.load_pretrained`, which
    reports what it loaded through `log`. Invalid values raise `Action3dError`.
    """
    cfg = to_model_config(cfg)
    if cfg.num_classes is None:
        raise Action3dError("model.num_classes is not set: give it, or let `action3d train` take it "
                            "from the dataset's class list")
    backbone = build_backbone(cfg)
    if cfg.arch == "slowfast":
        head: nn.Module = SlowFastHead(sum(backbone.feat_dims), cfg.num_classes, dropout=cfg.dropout)
    else:
        head = I3DHead(backbone.feat_dim, cfg.num_classes, dropout=cfg.dropout)
    model = Recognizer(backbone, head)
    if cfg.pretrained:
        try:
            from action3d.models.weights import load_pretrained
        except ImportError as err:
            raise Action3dError(f"model.pretrained={cfg.pretrained} cannot be loaded: weight "
                                f"loading (action3d.models.weights) is unavailable: {err}"
                                ) from err
        load_pretrained(model, cfg.pretrained, log=log, allow_2d=cfg.pretrained2d)
    return model
