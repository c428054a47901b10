"""Video models: 3D ResNet backbones (R3D, MC3, I3D, SlowOnly, SlowFast), heads, recognizer.

Public names: `ResNet3d`, `ResNet3dSlowFast`, `build_model`, the named builders (`r3d_18`, ...,
one per model preset of `action3d.config.model_presets`), `model_summary`, `format_summary`.
"""
from action3d.config.model import ModelConfig
from action3d.models.blocks import BasicBlock3d, Bottleneck3d, ShortcutA, make_downsample
from action3d.models.builder import build_backbone, build_model, to_model_config
from action3d.models.conv import ConvBNAct
from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.nonlocal_block import NonLocal3d
from action3d.models.presets import (
                                     PRESETS,
                                     i3d_nl_r50,
                                     i3d_r50,
                                     mc3_18,
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

__all__ = [
    "PRESETS", "BasicBlock3d", "Bottleneck3d", "ConvBNAct", "I3DHead", "ModelConfig", "NonLocal3d",
    "Recognizer", "ResNet3d", "ResNet3dPathway", "ResNet3dSlowFast", "ShortcutA", "SlowFastHead",
    "build_backbone", "build_model", "format_summary", "i3d_nl_r50", "i3d_r50", "make_downsample",
    "mc3_18", "model_summary", "r3d_18", "r3d_34", "slowfast_r50", "slowfast_r50_8x8", "slowonly_r50",
    "slowonly_r50_8x8", "tiny", "to_model_config",
]
