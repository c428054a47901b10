"""The `model.*` option matrix: each key, set as a command-line override, changes the network as
documented (shapes `action3d info` prints, modules, kernels, strides, weights, gradients).

Every config here is the one the command line composes (`options_compose.compose`: Hydra groups,
the typed schema, Hydra's override parser, validation) and is built with `build_model` or run
through `action3d.commands.info.run`, so the path from key to effect is the one a user runs. Tiny
widths (base_channels 8) and 8x32x32 clips keep each test well under a second.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from options_compose import compose
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)
from torch import nn

from action3d.commands import info
from action3d.commands._hydra import compose_config
from action3d.errors import Action3dError
from action3d.models import BasicBlock3d, Bottleneck3d, NonLocal3d, ShortcutA, build_model
from action3d.models.conv import ConvBNAct


def composed(command: str, *overrides: str):
    """The validated config of `action3d COMMAND OVERRIDES` (base_channels 8 unless given)."""
    if not any(o.startswith("model.base_channels=") for o in overrides):
        overrides = ("model.base_channels=8", *overrides)
    return compose(command, *overrides)


@pytest.mark.parametrize("command, overrides", [
    ("train", ["model=slowfast_r50", "model.depth=18", "model.stage_blocks=null", "data.clip_len=8"]),
    ("info", ["model.inflate=[0,[1],1,1]", "model.non_local=[0,1,0,0]", "model.non_local_mode=dot_product",
              "input=[3,4,16,16]"]),
])
def test_fast_compose_equals_compose_config(command, overrides):
    assert OmegaConf.to_container(compose(command, *overrides)) == \
        OmegaConf.to_container(compose_config(command, overrides))
    with pytest.raises(Action3dError, match="model.dept"):
        compose("train", "model.dept=50")
    with pytest.raises(Action3dError, match="model.depth=19"):
        compose("train", "model.depth=19")


def build(*overrides: str, num_classes: int = 5) -> nn.Module:
    """`build_model` on the `model` node of `action3d train OVERRIDES` (as the trainer does)."""
    node = composed("train", *overrides).model
    node.num_classes = num_classes
    torch.manual_seed(0)
    return build_model(node, log=lambda line: None)


def run_info(capsys, *overrides: str, input_shape=(3, 8, 32, 32)):
    """`action3d info OVERRIDES input=[...]`: (stage -> shape, printed text, summary)."""
    cfg = composed("info", "model.num_classes=5", f"input=[{','.join(map(str, input_shape))}]", *overrides)
    summary = info.run(cfg)
    out = capsys.readouterr().out
    return {s["name"]: s["shape"] for s in summary["stages"]}, out, summary


def clip(n: int = 2, t: int = 8, size: int = 32, channels: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, channels, t, size, size)


def convs(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.Conv3d)]


def bns(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm3d)]


# --------------------------------------------------------------------------- shapes (action3d info)

# The tiny preset at base_channels 8 on a 3x8x32x32 clip; each case lists the stages it changes.
BASE_SHAPES = {"stem": [8, 8, 8, 8], "layer1": [8, 8, 8, 8], "layer2": [16, 8, 4, 4],
               "layer3": [32, 8, 2, 2], "layer4": [64, 8, 1, 1], "head": [5]}
BASE_PARAMS = 228_445


def test_default_shapes_of_the_tiny_preset(capsys):
    shapes, _, summary = run_info(capsys)
    assert shapes == BASE_SHAPES and summary["params_total"] == BASE_PARAMS


@pytest.mark.parametrize("overrides, changed, params", [
    # I3D's (2,1,1) max-pool after stage 1 halves T from there on
    (["model.with_pool2=true"], {"pool2": [8, 4, 8, 8], "layer2": [16, 4, 4, 4], "layer3": [32, 4, 2, 2],
                                 "layer4": [64, 4, 1, 1]}, BASE_PARAMS),
    # no stem max-pool: twice the spatial size everywhere
    (["model.with_pool1=false"], {"stem": [8, 8, 16, 16], "layer1": [8, 8, 16, 16], "layer2": [16, 8, 8, 8],
                                  "layer3": [32, 8, 4, 4], "layer4": [64, 8, 2, 2]}, BASE_PARAMS),
    # (temporal, spatial) strides of the stem pool and conv
    (["model.pool1_stride=[2,2]"], {"stem": [8, 4, 8, 8], "layer1": [8, 4, 8, 8], "layer2": [16, 4, 4, 4],
                                    "layer3": [32, 4, 2, 2], "layer4": [64, 4, 1, 1]}, BASE_PARAMS),
    (["model.conv1_stride=[2,1]"], {"stem": [8, 4, 16, 16], "layer1": [8, 4, 16, 16], "layer2": [16, 4, 8, 8],
                                    "layer3": [32, 4, 4, 4], "layer4": [64, 4, 2, 2]}, BASE_PARAMS),
    # a 1x3x3 stem kernel: same shapes, 8*3*(3*7*7 - 1*3*3) = 3312 fewer weights
    (["model.conv1_kernel=[1,3,3]"], {}, BASE_PARAMS - 3312),
    (["model.spatial_strides=[1,1,2,1]"], {"layer2": [16, 8, 8, 8], "layer3": [32, 8, 4, 4],
                                           "layer4": [64, 8, 4, 4]}, BASE_PARAMS),
    (["model.temporal_strides=[1,2,1,2]"], {"layer2": [16, 4, 4, 4], "layer3": [32, 4, 2, 2],
                                            "layer4": [64, 2, 1, 1]}, BASE_PARAMS),
    # twice the width: every stage has twice the channels (params ~4x)
    (["model.base_channels=16"], {"stem": [16, 8, 8, 8], "layer1": [16, 8, 8, 8], "layer2": [32, 8, 4, 4],
                                  "layer3": [64, 8, 2, 2], "layer4": [128, 8, 1, 1]}, 904_629),
    # three stages: no layer4, the head classifies layer3
    (["model.num_stages=3", "model.out_indices=[2]"], {"layer4": None}, 59_965),
    # the last returned stage is layer2: later stages are not built
    (["model.out_indices=[1]"], {"layer3": None, "layer4": None}, 17_709),
])
def test_stage_shapes_follow_the_stem_stride_and_stage_keys(capsys, overrides, changed, params):
    shapes, _, summary = run_info(capsys, *overrides)
    want = {**BASE_SHAPES, **changed}
    assert shapes == {k: v for k, v in want.items() if v is not None}
    assert summary["params_total"] == params


def test_num_stages_sets_the_stages_that_per_stage_lists_describe(capsys):
    three = ("model.out_indices=[2]", "model.spatial_strides=[1,2,1]", "model.temporal_strides=[1,1,2]",
             "model.inflate=[1,1,0]", "model.stage_blocks=[1,2,1]")
    shapes, _, _ = run_info(capsys, "model.num_stages=3", *three)
    assert shapes == {"stem": [8, 8, 8, 8], "layer1": [8, 8, 8, 8], "layer2": [16, 8, 4, 4],
                      "layer3": [32, 4, 4, 4], "head": [5]}
    model = build("model.num_stages=3", *three)
    assert len(model.backbone.layer2) == 2 and convs(model.backbone.layer3)[0].kernel_size == (1, 3, 3)
    with pytest.raises(Action3dError, match=r"model.stage_blocks=\[1,2,1\] .*needs one entry per stage: 4"):
        composed("train", *three)  # four stages need four entries


def test_in_channels_sets_the_stem_input_channels(capsys):
    """`action3d info model.in_channels=1 input=[1,...]` summarises a 1-channel network; training
    refuses it (videos decode to RGB)."""
    cfg = composed("info", "model.in_channels=1", "input=[1,8,32,32]", "default_num_classes=5")
    info.run(cfg)
    assert "input [C,T,H,W]=[1, 8, 32, 32]" in capsys.readouterr().out
    one = build_model({**OmegaConf.to_container(cfg.model), "num_classes": 5}, log=lambda line: None)
    assert one.backbone.conv1.conv.weight.shape == (8, 1, 3, 7, 7)
    assert one(clip(channels=1)).shape == (2, 5)
    with pytest.raises(RuntimeError):  # a 3-channel clip no longer fits
        one(clip(channels=3))
    with pytest.raises(Action3dError, match="model.in_channels does not apply here: videos decode to 3 RGB"):
        composed("train", "model.in_channels=1")


def test_out_indices_returns_the_listed_stages_and_the_head_uses_the_last():
    model = build("model.out_indices=[1,3]").eval()
    x = clip()
    with torch.no_grad():
        feats = model.backbone(x)
        assert [tuple(f.shape) for f in feats] == [(2, 16, 8, 4, 4), (2, 64, 8, 1, 1)]
        assert torch.equal(model(x), model.cls_head(feats[-1]))
        single = build("model.out_indices=[2]").eval()
        assert single.backbone(x).shape == (2, 32, 8, 2, 2) and single.cls_head.fc_cls.in_features == 32


def test_conv1_kernel_sets_the_stem_kernel_and_keeps_same_padding():
    model = build("model.conv1_kernel=[5,3,3]")
    assert model.backbone.conv1.conv.kernel_size == (5, 3, 3)
    assert model.backbone.conv1.conv.padding == (2, 1, 1)
    assert build().backbone.conv1.conv.kernel_size == (3, 7, 7)


def test_num_classes_sets_the_logits(capsys):
    shapes, out, _ = run_info(capsys, "model.num_classes=7")
    assert shapes["head"] == [7] and "7 classes" in out
    model = build(num_classes=7)
    assert model(clip()).shape == (2, 7)


def test_name_is_printed_by_info(capsys):
    _, out, _ = run_info(capsys, "model.name=my_net")
    assert out.splitlines()[0].startswith("model my_net (resnet3d, depth 18, 5 classes)")
    _, out, _ = run_info(capsys)
    assert out.splitlines()[0].startswith("model tiny (")


def test_arch_slowfast_builds_two_pathways(capsys):
    shapes, out, _ = run_info(capsys, "model.arch=slowfast")
    assert "(slowfast," in out.splitlines()[0]
    # slow: every 8th frame (T 1), full width; fast: every frame, 1/8 of the channels
    assert shapes["slow.layer4"] == [64, 1, 1, 1] and shapes["fast.layer4"] == [8, 8, 1, 1]
    assert "layer4" not in shapes
    assert build("model.arch=slowfast").backbone.__class__.__name__ == "ResNet3dSlowFast"


# --------------------------------------------------------------------------- blocks and stages

def test_depth_chooses_the_block_kind_and_the_default_blocks_per_stage():
    tiny = build()  # depth 18 with the tiny preset's one block per stage
    assert isinstance(tiny.backbone.layer1[0], BasicBlock3d) and tiny.backbone.feat_dim == 64
    deep = build("model.depth=50")
    assert isinstance(deep.backbone.layer1[0], Bottleneck3d)
    assert deep.backbone.feat_dim == 256 and deep(clip()).shape == (2, 5)  # x4 expansion
    r34 = build("model.depth=34", "model.stage_blocks=null")
    assert [len(getattr(r34.backbone, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    r18 = build("model.depth=18", "model.stage_blocks=null")
    assert [len(getattr(r18.backbone, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]


def test_stage_blocks_sets_the_blocks_of_each_stage():
    model = build("model.stage_blocks=[1,3,1,2]")
    assert [len(getattr(model.backbone, f"layer{i}")) for i in range(1, 5)] == [1, 3, 1, 2]
    assert model(clip()).shape == (2, 5)


def test_dilations_dilate_the_spatial_convs_of_their_stage():
    model = build("model.dilations=[1,1,2,1]")
    assert model.backbone.layer3[0].conv1.conv.dilation == (1, 2, 2)
    assert model.backbone.layer2[0].conv1.conv.dilation == (1, 1, 1)
    assert build().backbone.layer3[0].conv1.conv.dilation == (1, 1, 1)
    assert model(clip()).shape == (2, 5)


def test_style_caffe_moves_the_bottleneck_stride_to_the_first_1x1_conv():
    pytorch = build("model.depth=50").backbone.layer2[0]
    caffe = build("model.depth=50", "model.style=caffe").backbone.layer2[0]
    assert (pytorch.conv1.conv.stride, pytorch.conv2.conv.stride) == ((1, 1, 1), (1, 2, 2))
    assert (caffe.conv1.conv.stride, caffe.conv2.conv.stride) == ((1, 2, 2), (1, 1, 1))


def test_advanced_average_pools_in_the_shortcut_before_an_unstrided_conv():
    plain = build().backbone.layer2[0].downsample
    assert isinstance(plain, ConvBNAct) and plain.conv.stride == (1, 2, 2)
    advanced = build("model.advanced=true")
    shortcut = advanced.backbone.layer2[0].downsample
    assert isinstance(shortcut[0], nn.AvgPool3d) and shortcut[0].stride == (1, 2, 2)
    assert shortcut[1].conv.stride == (1, 1, 1)
    assert advanced(clip()).shape == (2, 5)


def test_shortcut_type_a_is_a_parameter_free_zero_padded_identity():
    model = build("model.shortcut_type=A")
    shortcut = model.backbone.layer2[0].downsample
    assert isinstance(shortcut, ShortcutA) and not list(shortcut.parameters())
    b_params = sum(p.numel() for p in build().backbone.layer2[0].downsample.parameters())
    a_total, b_total = (sum(p.numel() for p in m.parameters()) for m in (model, build()))
    assert b_params > 0 and a_total < b_total
    x = torch.rand(1, 8, 4, 8, 8)
    out = shortcut(x)
    assert out.shape == (1, 16, 4, 4, 4)
    assert torch.equal(out[:, :8], x[:, :, :, ::2, ::2]) and not out[:, 8:].any()


def test_inflate_sets_the_temporal_kernels_per_stage_and_per_block():
    model = build("model.stage_blocks=[1,2,1,1]", "model.inflate=[0,[1,0],1,1]")
    kernels = [[c.kernel_size[0] for c in convs(block) if c.kernel_size[1] == 3]
               for block in (model.backbone.layer1[0], *model.backbone.layer2)]
    assert kernels == [[1, 1], [3, 3], [1, 1]]
    assert all(c.kernel_size[0] == 3 for c in convs(build().backbone.layer1[0]))


@pytest.mark.parametrize("style, conv1, conv2", [("3x1x1", (3, 1, 1), (1, 3, 3)), ("3x3x3", (1, 1, 1), (3, 3, 3))])
def test_inflate_style_chooses_the_temporal_conv_of_bottlenecks(style, conv1, conv2):
    block = build("model.depth=50", f"model.inflate_style={style}").backbone.layer1[0]
    assert (block.conv1.conv.kernel_size, block.conv2.conv.kernel_size) == (conv1, conv2)


# --------------------------------------------------------------------------- non-local blocks

def nl_block(*overrides: str) -> NonLocal3d:
    """The non-local block after layer2's block, with weights that make attention matter."""
    model = build("model.non_local=[0,1,0,0]", *overrides)
    block = model.backbone.layer2[0].non_local_block
    torch.manual_seed(3)
    for unit in (block.theta, block.phi, block.g):
        conv = unit[0].conv if isinstance(unit, nn.Sequential) else unit.conv
        nn.init.normal_(conv.weight, std=1.0)
    nn.init.ones_(block.conv_out.bn.weight)
    return block.eval()


def test_non_local_inserts_blocks_after_the_flagged_blocks():
    model = build("model.stage_blocks=[1,2,1,1]", "model.non_local=[0,[0,1],1,0]")
    placed = [name for name, m in model.backbone.named_modules() if isinstance(m, NonLocal3d)]
    assert placed == ["layer2.1.non_local_block", "layer3.0.non_local_block"]
    assert not any(isinstance(m, NonLocal3d) for m in build().modules())
    assert model(clip()).shape == (2, 5)


def test_non_local_mode_changes_the_attention():
    gaussian, dot = nl_block(), nl_block("model.non_local_mode=dot_product")
    dot.load_state_dict(gaussian.state_dict())  # the same weights: only the mode differs
    assert (gaussian.mode, dot.mode) == ("embedded_gaussian", "dot_product")
    x = torch.randn(1, 16, 2, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(gaussian(x), dot(x), atol=1e-3)


def test_non_local_sub_sample_max_pools_the_keys():
    x = torch.randn(1, 16, 2, 4, 4)
    full, pooled = nl_block(), nl_block("model.non_local_sub_sample=true")
    with torch.no_grad():
        assert full.phi(x).flatten(2).shape[-1] == 2 * 4 * 4
        assert pooled.phi(x).flatten(2).shape[-1] == 2 * 2 * 2  # 4x fewer key positions
        assert pooled.g(x).flatten(2).shape[-1] == 2 * 2 * 2
        assert pooled(x).shape == x.shape


def test_non_local_use_scale_divides_the_affinities():
    plain, scaled = nl_block(), nl_block("model.non_local_use_scale=true")
    scaled.load_state_dict(plain.state_dict())
    x = torch.randn(1, 16, 2, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(plain(x), scaled(x), atol=1e-3)
        # scaling theta by 1/sqrt(C') reproduces it: the softmax's input is divided by sqrt(C')
        theta = plain.theta.conv
        theta.weight.div_(plain.inter_channels ** 0.5)
        theta.bias.div_(plain.inter_channels ** 0.5)
        assert torch.allclose(plain(x), scaled(x), atol=1e-5)


# --------------------------------------------------------------------------- training behaviour

def test_frozen_stages_freeze_the_stem_and_first_stages():
    model = build("model.frozen_stages=1").train()
    frozen, free = [model.backbone.conv1, model.backbone.layer1], [model.backbone.layer2, model.cls_head]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not bn.training for m in frozen for bn in bns(m))  # BN stays in eval mode
    model(clip()).sum().backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for m in free for p in m.parameters())
    assert all(p.requires_grad for p in build().parameters())


@pytest.mark.parametrize("norm_eval", [False, True])
def test_norm_eval_keeps_the_bn_statistics_while_training(norm_eval):
    model = build(f"model.norm_eval={str(norm_eval).lower()}").train()
    before = [bn.running_mean.clone() for bn in bns(model)]
    with torch.no_grad():
        model(clip() * 3 + 1)
    unchanged = [torch.equal(b, bn.running_mean) for b, bn in zip(before, bns(model), strict=True)]
    assert all(unchanged) if norm_eval else not any(unchanged)


def test_with_cp_checkpoints_every_block_with_the_same_gradients(monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", spy)
    grads = {}
    for with_cp in (False, True):
        model = build(f"model.with_cp={str(with_cp).lower()}", "model.zero_init_residual=false",
                      "model.dropout=0").train()
        calls.clear()
        (model(clip()) ** 2).mean().backward()
        assert len(calls) == (4 if with_cp else 0)  # one per block (one block per stage)
        grads[with_cp] = {name: p.grad for name, p in model.named_parameters()}
    for name, grad in grads[False].items():
        assert torch.allclose(grad, grads[True][name], rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("depth", [18, 50])
def test_zero_init_residual_zeroes_the_last_bn_of_each_block(depth):
    zero = build(f"model.depth={depth}")
    blocks = [b for i in range(1, 5) for b in getattr(zero.backbone, f"layer{i}")]
    assert all(not b.last_bn().weight.any() for b in blocks)
    identity = zero.backbone.layer1[0] if depth == 18 else None
    if identity is not None:  # no downsample: the block starts as the identity (x >= 0)
        x = torch.rand(1, 8, 2, 4, 4)
        assert torch.equal(identity.eval()(x), x)
    kept = build(f"model.depth={depth}", "model.zero_init_residual=false")
    assert all(torch.equal(b.last_bn().weight, torch.ones_like(b.last_bn().weight))
               for i in range(1, 5) for b in getattr(kept.backbone, f"layer{i}"))


def test_dropout_drops_features_before_the_classifier():
    feats = torch.rand(4, 64, 1, 1, 1)
    for p, random in ((0.0, False), (0.9, True)):
        head = build(f"model.dropout={p}").cls_head.train()
        assert head.dropout.p == p
        torch.manual_seed(0)
        first, second = head(feats), head(feats)
        assert torch.equal(first, second) != random
        assert torch.allclose(head.eval()(feats), head.fc_cls(feats.flatten(1)))


# --------------------------------------------------------------------------- weights

def test_pretrained_loads_the_checkpoint_weights(tmp_path):
    source = build()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    loaded = build(f"model.pretrained={path}")
    fresh = build()
    for (name, want), got in zip(source.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(want, got), name
    assert not torch.equal(source.backbone.conv1.conv.weight, fresh.backbone.conv1.conv.weight)


def test_pretrained2d_false_refuses_2d_imagenet_weights(tmp_path):
    net_2d = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    path = tmp_path / "resnet2d.pth"
    torch.save(net_2d.state_dict(), path)
    common = ("model.base_channels=64", f"model.pretrained={path}")
    with pytest.raises(Action3dError, match="model.pretrained2d"):
        build(*common, "model.pretrained2d=false")
    model = build(*common)  # pretrained2d=true (default): inflated over the 3 stem frames
    weight_2d = net_2d.conv1.weight
    assert torch.allclose(model.backbone.conv1.conv.weight, weight_2d.unsqueeze(2).expand(-1, -1, 3, -1, -1) / 3)


# --------------------------------------------------------------------------- SlowFast keys

SLOWFAST = ("model=slowfast_r50", "model.depth=18", "model.stage_blocks=[1,1,1,1]", "model.base_channels=16")


@pytest.mark.parametrize("override, slow_t, fast_t, fast_c", [
    (None, 4, 32, 16),                       # tau 8, alpha 8: 32 frames -> 4 slow, 32 fast
    ("model.resample_rate=16", 2, 16, 16),   # tau 16: 2 slow frames, fast every 16/8 = 2nd frame
    ("model.speed_ratio=4", 4, 16, 16),      # alpha 4: fast every 8/4 = 2nd frame
    ("model.channel_ratio=4", 4, 32, 32),    # beta 1/4: fast base 16/4 = 4 channels, layer4 4*8
])
def test_slowfast_rates_set_each_pathway_frames_and_channels(capsys, override, slow_t, fast_t, fast_c):
    shapes, _, _ = run_info(capsys, *SLOWFAST, *([override] if override else []), input_shape=(3, 32, 32, 32))
    assert shapes["slow.layer4"] == [128, slow_t, 1, 1]
    assert shapes["fast.layer4"] == [fast_c, fast_t, 1, 1]


def test_slowfast_fusion_kernel_sets_the_lateral_temporal_kernel():
    default = build(*SLOWFAST).backbone.slow_path
    wide = build(*SLOWFAST, "model.fusion_kernel=3").backbone.slow_path
    assert default.conv1_lateral.conv.kernel_size == (5, 1, 1)
    assert wide.conv1_lateral.conv.kernel_size == (3, 1, 1)
    assert [getattr(wide, n).conv.kernel_size for n in wide.lateral_connections] == [(3, 1, 1)] * 4


def test_slowfast_fast_conv1_kernel_and_fast_inflate_shape_the_fast_pathway():
    default = build(*SLOWFAST).backbone
    changed = build(*SLOWFAST, "model.fast_conv1_kernel=[3,5,5]", "model.fast_inflate=[0,0,1,1]").backbone
    assert default.fast_path.conv1.conv.kernel_size == (5, 7, 7)
    assert changed.fast_path.conv1.conv.kernel_size == (3, 5, 5)
    assert [convs(getattr(default.fast_path, f"layer{i}"))[0].kernel_size[0] for i in range(1, 5)] == [3, 3, 3, 3]
    assert [convs(getattr(changed.fast_path, f"layer{i}"))[0].kernel_size[0] for i in range(1, 5)] == [1, 1, 3, 3]
    # the slow pathway keeps its own stem and inflation (the preset's 1x7x7 and [0,0,1,1])
    assert changed.slow_path.conv1.conv.kernel_size == default.slow_path.conv1.conv.kernel_size == (1, 7, 7)
    x = torch.randn(1, 3, 16, 32, 32)
    assert build(*SLOWFAST, "model.fast_conv1_kernel=[3,5,5]", "model.fast_inflate=[0,0,1,1]")(x).shape == (1, 5)
