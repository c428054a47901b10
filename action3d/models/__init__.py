"""Video models: 3D ResNet backbones (R3D, MC3, I3D, SlowOnly, SlowFast, R(2+1)D, CSN, X3D, Hara's
ResNets), heads, recognizer.

Public names: `ResNet3d`, `ResNet3dSlowFast`, `build_model`, the named builders (`r3d_18`, ...,
`ptv_x3d_m`, `hara_resnet50`: one per model preset of `action3d.config.model_presets`, `model=a/b`
-> `a_b`), the injected building blocks (`Conv2plus1d`, `CSNBottleneck3d`, `X3DBlock`, ...),
`load_zoo_checkpoint`, `model_summary`, `format_summary`.
"""
from action3d.config.model import ModelConfig
from action3d.models.blocks import BasicBlock3d, Bottleneck3d, ShortcutA, make_downsample
from action3d.models.builder import build_backbone, build_model, to_model_config
from action3d.models.conv import ConvBNAct, conv3d
from action3d.models.conv2plus1d import Conv2plus1d, conv2plus1d
from action3d.models.csn import CSNBottleneck3d, IpCSNBottleneck3d
from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.nonlocal_block import NonLocal3d
from action3d.models.presets import (
                                     PRESETS,
                                     hara_resnet10,
                                     hara_resnet18,
                                     hara_resnet34,
                                     hara_resnet50,
                                     hara_resnet101,
                                     hara_resnet152,
                                     hara_resnet200,
                                     i3d_nl_r50,
                                     i3d_r50,
                                     mc3_18,
                                     ptv_c2d_r50,
                                     ptv_csn_r101,
                                     ptv_i3d_r50,
                                     ptv_r2plus1d_r50,
                                     ptv_slow_r50,
                                     ptv_slowfast_r50,
                                     ptv_slowfast_r101,
                                     ptv_x3d_l,
                                     ptv_x3d_m,
                                     ptv_x3d_s,
                                     ptv_x3d_xs,
                                     r2plus1d_18,
                                     r3d_18,
                                     r3d_34,
                                     slowfast_r50,
                                     slowfast_r50_8x8,
                                     slowonly_r50,
                                     slowonly_r50_8x8,
                                     tiny,
)
from action3d.models.recognizer import Recognizer
from action3d.models.resnet3d import ResNet3d
from action3d.models.slowfast import ResNet3dPathway, ResNet3dSlowFast
from action3d.models.summary import format_summary, model_summary
from action3d.models.x3d import SqueezeExcitation, X3DBlock, X3DHead


def load_zoo_checkpoint(*args, **kwargs):
    """`action3d.models.weights_zoo.load_zoo_checkpoint` (imported on first use)."""
    from action3d.models.weights_zoo import load_zoo_checkpoint as load

    return load(*args, **kwargs)


__all__ = [
    "PRESETS", "BasicBlock3d", "Bottleneck3d", "CSNBottleneck3d", "Conv2plus1d", "ConvBNAct", "I3DHead",
    "IpCSNBottleneck3d", "ModelConfig", "NonLocal3d", "Recognizer", "ResNet3d", "ResNet3dPathway", "ResNet3dSlowFast",
    "ShortcutA", "SlowFastHead", "SqueezeExcitation", "X3DBlock", "X3DHead", "build_backbone", "build_model",
    "conv2plus1d", "conv3d", "format_summary", "hara_resnet10", "hara_resnet18", "hara_resnet34", "hara_resnet50",
    "hara_resnet101", "hara_resnet152", "hara_resnet200", "i3d_nl_r50", "i3d_r50", "load_zoo_checkpoint",
    "make_downsample", "mc3_18", "model_summary", "ptv_c2d_r50", "ptv_csn_r101", "ptv_i3d_r50", "ptv_r2plus1d_r50",
    "ptv_slow_r50", "ptv_slowfast_r50", "ptv_slowfast_r101", "ptv_x3d_l", "ptv_x3d_m", "ptv_x3d_s", "ptv_x3d_xs",
    "r2plus1d_18", "r3d_18", "r3d_34", "slowfast_r50", "slowfast_r50_8x8", "slowonly_r50", "slowonly_r50_8x8", "tiny",
    "to_model_config",
]
