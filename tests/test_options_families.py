"""The `model.*` keys of the model families (R(2+1)D, CSN, X3D, PyTorchVideo's SlowFast, Hara's stem
pool, norm epsilon): each, set on the command line, changes the network as its help says.

Configs are composed as the command line composes them (`options_compose.compose`) and built with
`build_model`; base_channels 8 and 8x32x32 clips keep each test well under a second.
"""
from __future__ import annotations

import pytest
import torch
from options_compose import compose
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)
from torch import nn

from action3d.models import Conv2plus1d, SqueezeExcitation, build_model

SLOWFAST = ["model=slowfast_r50", "model.depth=18", "model.base_channels=16", "model.stage_blocks=[1,1,1,1]"]
X3D = ["model=ptv/x3d_xs", "model.base_channels=8", "model.stage_blocks=[3,1,1,1]", "model.head_channels=32"]
CSN = ["model=ptv/csn_r101", "model.base_channels=8", "model.stage_blocks=[1,1,1,1]"]


def build(*overrides: str, num_classes: int = 5) -> nn.Module:
    """`build_model` on the `model` node of `action3d train OVERRIDES` (base_channels 8 unless given)."""
    if not any(o.startswith(("model.base_channels=", "model=")) for o in overrides):
        overrides = ("model.base_channels=8", *overrides)
    node = compose("train", *overrides).model
    node.num_classes = num_classes
    torch.manual_seed(0)
    return build_model(node, log=lambda line: None).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_pool1_kernel_sets_the_stem_max_pool_kernel_and_its_padding():
    hara = build("model.pool1_kernel=[3,3,3]", "model.pool1_stride=[2,2]")
    assert hara.backbone.maxpool.kernel_size == (3, 3, 3) and hara.backbone.maxpool.padding == (1, 1, 1)
    assert build().backbone.maxpool.kernel_size == (1, 3, 3)
    x = torch.randn(1, 8, 8, 16, 16)
    assert hara.backbone.maxpool(x).shape == (1, 8, 4, 8, 8)        # Hara's pool halves the frames too


def test_shortcut_norm_widening_drops_the_norm_of_unwidened_shortcuts():
    args = ("model.spatial_strides=[2,2,2,2]", "model.stage_blocks=[1,1,1,1]")
    always, widening = build(*args), build(*args, "model.shortcut_norm=widening")
    assert always.backbone.layer1[0].downsample.bn is not None       # 8 -> 8 channels, strided
    shortcut = widening.backbone.layer1[0].downsample
    assert shortcut.bn is None and shortcut.conv.bias is None
    assert widening.backbone.layer2[0].downsample.bn is not None     # 8 -> 16: widens
    assert n_params(always) - n_params(widening) == 2 * 8


def test_lateral_norm_adds_bn_and_relu_after_every_lateral_conv():
    plain, normed = build(*SLOWFAST).backbone.slow_path, build(*SLOWFAST, "model.lateral_norm=true").backbone.slow_path
    widths = [getattr(normed, name).conv.out_channels for name in normed.lateral_connections]
    assert all(getattr(plain, name).bn is None for name in plain.lateral_connections)
    assert all(isinstance(getattr(normed, name).bn, nn.BatchNorm3d) and isinstance(getattr(normed, name).act, nn.ReLU)
               for name in normed.lateral_connections)
    assert n_params(normed) - n_params(plain) == 2 * sum(widths)


def test_slow_sampling_linspace_takes_the_slow_frames_at_linspace():
    x = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(1, 3, 16, 2, 2)
    stride = build(*SLOWFAST).backbone                          # resample_rate 8: every 8th frame
    linspace = build(*SLOWFAST, "model.slow_sampling=linspace").backbone
    assert stride.slow_frames(x)[0, 0, :, 0, 0].tolist() == [0, 8]
    assert linspace.slow_frames(x)[0, 0, :, 0, 0].tolist() == [0, 15]   # floor(linspace(0, 15, 2))
    assert build(*SLOWFAST, "model.slow_sampling=linspace")(torch.randn(1, 3, 16, 32, 32)).shape == (1, 5)


def test_conv_type_2plus1d_factorises_the_spatiotemporal_convs():
    model = build("model.conv_type=2plus1d", "model.stage_blocks=[1,1,1,1]")
    block = model.backbone.layer2[0]
    assert isinstance(model.backbone.conv1.conv, Conv2plus1d)
    assert isinstance(block.conv1.conv, Conv2plus1d) and isinstance(block.conv2.conv, Conv2plus1d)
    assert type(block.downsample.conv) is nn.Conv3d                 # 1x1x1: nothing to factorise
    conv = block.conv1.conv                                         # 8 -> 16, stride (1, 2, 2)
    assert conv.conv_s.kernel_size == (1, 3, 3) and conv.conv_s.stride == (1, 2, 2)
    assert conv.conv_t.kernel_size == (3, 1, 1) and conv.conv_t.stride == (1, 1, 1)
    plain = build("model.stage_blocks=[1,1,1,1]")
    assert abs(n_params(model) - n_params(plain)) < 0.1 * n_params(plain)   # the rule keeps the parameter count
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 5)


def test_temporal_first_runs_the_temporal_conv_of_a_2plus1d_conv_first():
    spatial = build("model.conv_type=2plus1d").backbone.layer2[0].conv1.conv
    temporal = build("model.conv_type=2plus1d", "model.temporal_first=true").backbone.layer2[0].conv1.conv
    assert (spatial.conv_s.in_channels, spatial.conv_t.out_channels) == (8, 16)
    assert (temporal.conv_t.in_channels, temporal.conv_s.out_channels) == (8, 16)
    assert spatial.bn_s is not None and temporal.bn_t is not None
    order = []
    for conv in (temporal.conv_s, temporal.conv_t):
        conv.register_forward_hook(lambda module, _i, _o: order.append(module.kernel_size))
    temporal(torch.randn(1, 8, 4, 8, 8))
    assert order == [(3, 1, 1), (1, 3, 3)]


@pytest.mark.parametrize("rule, mids", [("conv", (28, 36)), ("block", (28, 28)), ("out", (16, 16))])
def test_mid_channels_rule_sets_the_mid_channels_of_each_2plus1d_conv(rule, mids):
    """layer2's first block, 8 -> 16 channels: M = 27*8*16 // (9*8 + 3*16) = 28 for its first conv;
    its second (16 -> 16) gets 27*16*16 // (9*16 + 3*16) = 36 by its own widths, 28 by torchvision's
    block rule, 16 (its output) by PyTorchVideo's."""
    block = build("model.conv_type=2plus1d", f"model.mid_channels_rule={rule}").backbone.layer2[0]
    assert (block.conv1.conv.conv_s.out_channels, block.conv2.conv.conv_s.out_channels) == mids


def test_conv1_mid_channels_sets_the_mid_channels_of_a_2plus1d_stem():
    default = build("model.conv_type=2plus1d").backbone.conv1.conv      # 3 -> 8, 3x7x7: 3*49*3*8 // (49*3 + 24)
    assert default.conv_s.out_channels == 20
    stem = build("model.conv_type=2plus1d", "model.conv1_mid_channels=6").backbone.conv1.conv
    assert stem.conv_s.out_channels == 6 and stem.conv_t.in_channels == 6 and stem.bn_s.num_features == 6


@pytest.mark.parametrize("mode, parts", [("ir", 1), ("ip", 2)])
def test_bottleneck_mode_makes_the_middle_conv_channel_wise(mode, parts):
    model = build(*CSN, f"model.bottleneck_mode={mode}")
    standard = build(*CSN, "model.bottleneck_mode=standard")
    middle = model.backbone.layer1[0].conv2
    assert isinstance(middle, nn.Sequential) and len(middle) == parts
    assert middle[-1].conv.groups == middle[-1].conv.in_channels == 8 and middle[-1].conv.kernel_size == (3, 3, 3)
    if mode == "ip":
        assert middle[0].conv.kernel_size == (1, 1, 1) and middle[0].act is None and middle[0].bn is not None
    assert standard.backbone.layer1[0].conv2.conv.groups == 1 and n_params(model) < n_params(standard)
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 5)


def test_norm_eps_sets_the_epsilon_of_every_batch_norm():
    for overrides in ([], X3D, SLOWFAST + ["model.lateral_norm=true"], ["model.conv_type=2plus1d"]):
        norms = [m for m in build(*overrides, "model.norm_eps=0.001").modules() if isinstance(m, nn.BatchNorm3d)]
        assert norms and {m.eps for m in norms} == {1e-3}, overrides
    assert {m.eps for m in build().modules() if isinstance(m, nn.BatchNorm3d)} == {1e-5}


def test_bottleneck_ratio_sets_the_x3d_inner_widths():
    default, wide = build(*X3D), build(*X3D, "model.bottleneck_ratio=3")
    assert default.backbone.layer1[0].conv1.conv.out_channels == 18           # int(2.25 * 8)
    assert wide.backbone.layer1[0].conv2.conv.groups == wide.backbone.layer1[0].conv1.conv.out_channels == 24
    assert default.cls_head.pre_conv.conv.out_channels == 144 and wide.cls_head.pre_conv.conv.out_channels == 192


def test_se_ratio_puts_squeeze_excitation_on_every_other_x3d_block():
    model = build(*X3D)
    stage = model.backbone.layer1                                           # 3 blocks: SE on the 1st and 3rd
    assert [isinstance(block.se, SqueezeExcitation) for block in stage] == [True, False, True]
    assert stage[0].se.fc1.out_channels == 8                               # 18 * 0.0625 rounded up to 8
    assert build(*X3D, "model.se_ratio=0.5").backbone.layer1[0].se.fc1.out_channels == 8 * 2
    assert all(block.se is None for block in build(*X3D, "model.se_ratio=0").backbone.layer1)


def test_head_channels_sets_the_x3d_pre_logit_projection():
    model = build(*X3D, "model.head_channels=48")
    assert model.cls_head.post_conv.conv.out_channels == 48 and model.cls_head.fc_cls.in_features == 48
    feats = model.cls_head.pool(model.backbone(torch.randn(2, 3, 8, 32, 32)))   # what `embed` writes
    assert feats.shape == (2, 48)
