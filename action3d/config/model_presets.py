"""TEMPORARY SHIM (lead): replaced by branch h-presets at merge."""
from typing import Any, Dict, Tuple

_KEYS = ("stage_blocks", "pretrained2d", "in_channels", "base_channels", "num_stages", "spatial_strides",
         "temporal_strides", "dilations", "conv1_kernel", "conv1_stride", "pool1_stride", "with_pool1", "with_pool2",
         "style", "advanced", "shortcut_type", "frozen_stages", "inflate", "inflate_style", "non_local",
         "non_local_mode", "non_local_sub_sample", "non_local_use_scale", "norm_eval", "with_cp", "zero_init_residual")


def derive_slowfast_pathways(cfg: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    slow = dict(depth=cfg.depth, lateral=True, **{k: getattr(cfg, k) for k in _KEYS})
    fast = dict(slow, lateral=False, base_channels=cfg.base_channels // cfg.channel_ratio,
                conv1_kernel=cfg.fast_conv1_kernel, inflate=cfg.fast_inflate, non_local=0)
    for pathway in (slow, fast):
        pathway["out_indices"] = (cfg.num_stages - 1,)
    return slow, fast
