"""A `model` config -> the keyword arguments of `ResNet3d`, and of SlowFast's two pathways.

The one place where a config becomes backbone arguments: `action3d.models.build_backbone` builds
from these dicts, and the config check (which runs before torch is imported) can check the very
arguments the fast pathway will get. Torch-free. Each function takes a `ModelConfig` or an
OmegaConf node of that schema and reads it by attribute only; the dicts hold plain Python values.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

# ModelConfig fields passed unchanged to ResNet3d (and to both pathways of SlowFast); the ones
# with rules are `action3d.config.model_checks.RESNET3D_KEYS`.
RESNET3D_FIELDS = (
    "depth", "stage_blocks", "pretrained2d", "in_channels", "base_channels", "num_stages",
    "spatial_strides", "temporal_strides", "dilations", "conv1_kernel", "conv1_stride",
    "pool1_stride", "with_pool1", "with_pool2", "style", "advanced", "shortcut_type",
    "frozen_stages", "inflate", "inflate_style", "non_local", "non_local_mode",
    "non_local_sub_sample", "non_local_use_scale", "norm_eval", "with_cp", "zero_init_residual",
    "pool1_kernel", "shortcut_norm",
)


def _plain(value: Any) -> Any:
    """OmegaConf lists (of lists) as Python lists: the same dict whatever form the config had."""
    if isinstance(value, (ListConfig, DictConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _last_stage(model_cfg: Any) -> Tuple[int]:
    return (model_cfg.num_stages - 1,)


def resnet3d_kwargs(model_cfg: Any) -> Dict[str, Any]:
    """`ResNet3d(**resnet3d_kwargs(cfg))` is the network an `arch=resnet3d` config describes;
    `out_indices` unset means the last stage, whatever `num_stages` is."""
    kwargs = {name: _plain(getattr(model_cfg, name)) for name in RESNET3D_FIELDS}
    out_indices = _plain(model_cfg.out_indices)
    kwargs["out_indices"] = _last_stage(model_cfg) if out_indices is None else tuple(out_indices)
    return kwargs


def derive_slowfast_pathways(model_cfg: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The `slow_pathway` and `fast_pathway` arguments of `ResNet3dSlowFast` for an
    `arch=slowfast` config.

    The top-level fields describe the slow pathway, which holds the laterals. The fast one shares
    its depth, blocks, strides and options, with 1/`channel_ratio` of the channels, its own stem
    kernel (`fast_conv1_kernel`) and inflation (`fast_inflate`), and no non-local blocks. Both
    classify from the last stage. Expects a valid `channel_ratio` (an integer >= 1:
    its field rule says so first).
    """
    slow = dict(resnet3d_kwargs(model_cfg), lateral=True, out_indices=_last_stage(model_cfg))
    fast = dict(slow, lateral=False, base_channels=slow["base_channels"] // model_cfg.channel_ratio,
                conv1_kernel=_plain(model_cfg.fast_conv1_kernel), inflate=_plain(model_cfg.fast_inflate),
                non_local=0)
    return slow, fast
