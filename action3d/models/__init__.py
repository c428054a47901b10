"""Video models: 3D ResNet backbones (R3D, MC3, I3D, SlowOnly, SlowFast), heads, recognizer.

Public names: `ResNet3d`, `ResNet3dSlowFast`, `build_model`, `model_summary`, `format_summary`.
"""
from action3d.models.blocks import BasicBlock3d, Bottleneck3d, ShortcutA, make_downsample
from action3d.models.builder import build_backbone, build_model, to_model_config
from action3d.models.config import ModelConfig
from action3d.models.conv import ConvBNAct
from action3d.models.head import I3DHead, SlowFastHead
from action3d.models.nonlocal_block import NonLocal3d
from action3d.models.recognizer import Recognizer
from action3d.models.resnet3d import ResNet3d
from action3d.models.slowfast import ResNet3dPathway, ResNet3dSlowFast
from action3d.models.summary import format_summary, model_summary

__all__ = [
    "BasicBlock3d", "Bottleneck3d", "ConvBNAct", "I3DHead", "ModelConfig", "NonLocal3d",
    "Recognizer", "ResNet3d", "ResNet3dPathway", "ResNet3dSlowFast", "ShortcutA", "SlowFastHead",
    "build_backbone", "build_model", "format_summary", "make_downsample", "model_summary",
    "to_model_config",
]
