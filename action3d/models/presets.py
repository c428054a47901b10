"""Named builders, one per `conf/model/*.yaml` preset, like torchvision's `r3d_18()`.

Each is a plain function over `ResNet3d` / `ResNet3dSlowFast` returning a `Recognizer`
(backbone + head). Keyword overrides go to the backbone (`norm_layer=`, `frozen_stages=`, ...),
except `dropout`, which goes to the head. A test checks that each YAML preset builds exactly the
architecture of its builder here.

    from action3d.models import r3d_18
    model = r3d_18(num_classes=101)          # (N, 3, T, H, W) -> (N, 101)
"""
from __future__ import annotations

from typing import Any, Callable, Dict

from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.recognizer import Recognizer
from action3d.models.resnet3d import ResNet3d
from action3d.models.slowfast import ResNet3dSlowFast

# I3D-R50's inflation (mmaction2 i3d_r50): 3x1x1 in every other bottleneck.
_I3D_INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
_SLOW = dict(conv1_kernel=(1, 7, 7), with_pool2=False, inflate=(0, 0, 1, 1))


def _resnet3d(depth: int, num_classes: int, dropout: float, preset: Dict[str, Any],
              overrides: Dict[str, Any]) -> Recognizer:
    backbone = ResNet3d(depth, **{**preset, **overrides})
    return Recognizer(backbone, I3DHead(backbone.feat_dim, num_classes, dropout=dropout))


def tiny(num_classes: int = 400, *, dropout: float = 0.2, **overrides: Any) -> Recognizer:
    """A small ResNet3d-18 for CPUs: 16 base channels, one block per stage, 3x3x3 convs."""
    return _resnet3d(18, num_classes, dropout, dict(base_channels=16, stage_blocks=(1, 1, 1, 1),
                                                    with_pool2=False), overrides)


def r3d_18(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """torchvision's R3D-18: 3x7x7 stem without max-pool, 3x3x3 convs, stride 2 in time and space
    in stages 2-4. torchvision's weights load into it (`weights.load_torchvision_video`)."""
    return _resnet3d(18, num_classes, dropout, dict(with_pool1=False, with_pool2=False,
                                                    temporal_strides=(1, 2, 2, 2)), overrides)


def r3d_34(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """The r3d_18 layout with ResNet-34's (3, 4, 6, 3) blocks."""
    return _resnet3d(34, num_classes, dropout, dict(with_pool1=False, with_pool2=False,
                                                    temporal_strides=(1, 2, 2, 2)), overrides)


def mc3_18(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """torchvision's MC3-18: 3x3x3 convs in stage 1 only, 1x3x3 in stages 2-4."""
    return _resnet3d(18, num_classes, dropout, dict(with_pool1=False, with_pool2=False,
                                                    inflate=(1, 0, 0, 0)), overrides)


def i3d_r50(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """mmaction2's I3D R50 (32x2x1): 5x7x7 stem with temporal stride 2, stem pool temporal
    stride 2, 3x1x1 inflation of every other bottleneck, a (2,1,1) pool after stage 1."""
    return _resnet3d(50, num_classes, dropout, dict(conv1_kernel=(5, 7, 7), conv1_stride=(2, 2),
                                                    pool1_stride=(2, 2), inflate=_I3D_INFLATE,
                                                    zero_init_residual=False), overrides)


def i3d_nl_r50(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """I3D R50 with 5 embedded-Gaussian non-local blocks (every other block of stages 2 and 3)."""
    non_local = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
    return _resnet3d(50, num_classes, dropout, dict(conv1_kernel=(5, 7, 7), conv1_stride=(2, 2),
                                                    pool1_stride=(2, 2), inflate=_I3D_INFLATE,
                                                    non_local=non_local, non_local_sub_sample=True,
                                                    zero_init_residual=False), overrides)


def slowonly_r50(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """SlowOnly R50 4x16: the slow pathway of SlowFast alone (1x7x7 stem, inflation in stages 3-4)."""
    return _resnet3d(50, num_classes, dropout, dict(_SLOW), overrides)


def slowonly_r50_8x8(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """SlowOnly R50 8x8: the same network as slowonly_r50; only the sampling (8 frames every 8) differs."""
    return _resnet3d(50, num_classes, dropout, dict(_SLOW), overrides)


def _slowfast(num_classes: int, dropout: float, *, resample_rate: int, speed_ratio: int,
              fusion_kernel: int, overrides: Dict[str, Any]) -> Recognizer:
    slow = dict(depth=50, lateral=True, **_SLOW, **overrides)
    fast = dict(depth=50, lateral=False, base_channels=slow.get("base_channels", 64) // 8,
                conv1_kernel=(5, 7, 7), with_pool2=False, inflate=(1, 1, 1, 1),
                **{k: v for k, v in overrides.items() if k not in ("base_channels", "conv1_kernel", "inflate")})
    backbone = ResNet3dSlowFast(resample_rate=resample_rate, speed_ratio=speed_ratio, channel_ratio=8,
                                fusion_kernel=fusion_kernel, slow_pathway=slow, fast_pathway=fast)
    return Recognizer(backbone, SlowFastHead(sum(backbone.feat_dims), num_classes, dropout=dropout))


def slowfast_r50(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """SlowFast R50 4x16 (alpha 8, beta 1/8, 5x1x1 laterals); overrides apply to both pathways."""
    return _slowfast(num_classes, dropout, resample_rate=8, speed_ratio=8, fusion_kernel=5, overrides=overrides)


def slowfast_r50_8x8(num_classes: int = 400, *, dropout: float = 0.5, **overrides: Any) -> Recognizer:
    """SlowFast R50 8x8 (alpha 4, beta 1/8, 7x1x1 laterals); overrides apply to both pathways."""
    return _slowfast(num_classes, dropout, resample_rate=4, speed_ratio=4, fusion_kernel=7, overrides=overrides)


PRESETS: Dict[str, Callable[..., Recognizer]] = {
    fn.__name__: fn for fn in (tiny, r3d_18, r3d_34, mc3_18, i3d_r50, i3d_nl_r50, slowonly_r50,
                               slowonly_r50_8x8, slowfast_r50, slowfast_r50_8x8)}
