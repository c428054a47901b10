"""Pretrained weights of every kind: torchvision video parity, 2D inflation, mmaction2, fine-tuning."""
from __future__ import annotations

from typing import Any, Dict

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import video as tv_video

from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.errors import Action3dError
from action3d.models import ResNet3d, build_model
from action3d.models.weights import load_pretrained, load_torchvision_video

quiet = dict(log=lambda line: None)


def preset(name: str, **overrides: Any) -> nn.Module:
    return build_model(MODEL_PRESETS[name].model_config(**overrides), **quiet)


def small(**overrides: Any) -> nn.Module:
    cfg = dict(depth=18, base_channels=8, stage_blocks=[1, 1, 1, 1], num_classes=400)
    cfg.update(overrides)
    return build_model(cfg, **quiet)


def randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that copying them matters."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
    return model


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- torchvision video ResNets -------------------------------------------------------------------

@pytest.mark.parametrize("name, builder, count", [
    ("r3d_18", tv_video.r3d_18, 33_371_472),
    ("mc3_18", tv_video.mc3_18, 11_695_440),
])
def test_torchvision_video_parity(tmp_path, name, builder, count):
    torch.manual_seed(0)
    reference = randomise_bn(builder(num_classes=400)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    model = preset(name, num_classes=400).eval()
    assert num_params(model) == num_params(reference) == count

    report = load_torchvision_video(model, path, **quiet)
    assert report.kind == "torchvision-video"
    assert not (report.missing or report.unused or report.mismatched or report.head_reset)
    x = torch.randn(1, 3, 8, 56, 56)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max().item() < 1e-4


def test_torchvision_video_into_other_layout_is_refused():
    state = tv_video.r3d_18(num_classes=400).state_dict()
    model = preset("mc3_18", num_classes=400)
    with pytest.raises(Action3dError, match="does not fit this model exactly"):
        load_torchvision_video(model, state, **quiet)
    report = load_pretrained(model, state, **quiet)       # the lenient loader reports instead
    assert report.mismatched and all("3x3x3" in m or "x3x3" in m for m in report.mismatched)


def test_torchvision_r2plus1d_loads_into_its_preset_and_is_refused_elsewhere_naming_it():
    state = tv_video.r2plus1d_18(num_classes=10).state_dict()
    with pytest.raises(Action3dError, match=r"does not fit .* it is a file for model=r2plus1d_18"):
        load_pretrained(preset("r3d_18", num_classes=10), state, **quiet)
    report = load_pretrained(preset("r2plus1d_18", num_classes=10), state, **quiet)
    assert report.kind == "torchvision-video" and not (report.missing or report.unused or report.mismatched)


def test_torchvision_video_aligns_to_advanced_shortcut():
    torch.manual_seed(0)
    state = tv_video.r3d_18(num_classes=400).state_dict()
    model = preset("r3d_18", num_classes=400, advanced=True)
    report = load_pretrained(model, state, **quiet)
    assert not (report.missing or report.unused or report.mismatched)
    loaded = model.state_dict()["backbone.layer2.0.downsample.1.conv.weight"]
    assert torch.equal(loaded, state["layer2.0.downsample.0.weight"])


# --- 2D ImageNet ResNets, inflated -------------------------------------------------------------

def temporal_reach(module: nn.Module) -> int:
    """Frames at each end whose features see temporal zero padding (all temporal strides 1).

    SlowFast laterals are left out: after 2D inflation their inputs get zero weights.
    """
    return sum(m.padding[0] * m.dilation[0] for name, m in module.named_modules()
               if isinstance(m, nn.Conv3d) and "lateral" not in name)


def features_2d(resnet: nn.Module, image: torch.Tensor) -> torch.Tensor:
    trunk = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                          resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
    return trunk(image)                                     # (1, C, h, w)


def assert_still_video_features_match(features_3d: torch.Tensor, expected: torch.Tensor,
                                      reach: int) -> None:
    t = features_3d.shape[2]
    assert t > 2 * reach, "clip too short to have frames away from the borders"
    inner = features_3d[:, :, reach:t - reach]              # frames that see no padding
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(inner, expected.unsqueeze(2).expand_as(inner),
                               rtol=1e-4, atol=1e-5 * scale)
    # the border frames do see the padding: the comparison above is not vacuous
    assert (features_3d[:, :, 0] - expected).abs().max().item() > 1e-3 * scale


@pytest.mark.parametrize("depth, resnet, backbone_args", [
    (18, torchvision.models.resnet18, dict(conv1_kernel=(3, 7, 7), inflate=(0, 1, 0, 1))),
    pytest.param(50, torchvision.models.resnet50, dict(   # i3d_r50's inflation, no temporal strides
        conv1_kernel=(5, 7, 7), inflate_style="3x1x1",
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))),
        marks=pytest.mark.slow),                          # full-width R50 on 24 frames
])
def test_inflated_2d_resnet_gives_2d_features_on_a_still_video(tmp_path, depth, resnet,
                                                                backbone_args):
    torch.manual_seed(0)
    net_2d = randomise_bn(resnet()).eval()
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(net_2d.state_dict(), path)
    backbone = ResNet3d(depth, with_pool2=False, **backbone_args).eval()

    report = load_pretrained(backbone, path, **quiet)
    assert report.kind == "torchvision-2d"
    assert not (report.missing or report.mismatched)
    assert report.unused == ["fc.weight", "fc.bias"]        # the 2D classifier is never loaded
    kernel = backbone.conv1.conv.weight
    assert torch.allclose(kernel.sum(2), net_2d.conv1.weight)   # repeated in time, divided by T

    reach = temporal_reach(backbone)
    image = torch.randn(1, 3, 32, 32)
    clip = image.unsqueeze(2).expand(-1, -1, 2 * reach + 2, -1, -1)   # (1, 3, T, 32, 32)
    with torch.no_grad():
        assert_still_video_features_match(backbone(clip), features_2d(net_2d, image), reach)


def test_2d_resnet_into_recognizer_resets_head_and_can_be_refused():
    state = torchvision.models.resnet18().state_dict()
    model = small(base_channels=64, stage_blocks=None)
    report = load_pretrained(model, state, **quiet)
    assert report.head_reset and not report.missing
    assert "head re-initialised" in report.summary()
    with pytest.raises(Action3dError, match="pretrained2d"):
        load_pretrained(model, state, allow_2d=False, **quiet)
    # mmpretrain / mmcls save the same ResNet as `backbone.*` inside `state_dict`
    mmpretrain = {"state_dict": {("head." if k.startswith("fc.") else "backbone.") + k: v
                                 for k, v in state.items()}, "meta": {}}
    again = load_pretrained(model, mmpretrain, **quiet)
    assert again.kind == "torchvision-2d" and again.loaded == report.loaded
    assert again.unused == ["head.fc.weight", "head.fc.bias"]


def test_2d_resnet_inflated_into_slowfast(tmp_path):
    torch.manual_seed(0)
    net_2d = randomise_bn(torchvision.models.resnet50()).eval()
    model = build_model(dict(arch="slowfast", depth=50, num_classes=10, resample_rate=4,
                             speed_ratio=4, channel_ratio=8, inflate=[0, 0, 0, 1],
                             with_pool2=False), **quiet).eval()
    report = load_pretrained(model, net_2d.state_dict(), **quiet)

    slow = model.backbone.slow_path
    extra = slow.layer1_lateral.conv.out_channels          # channels added by the lateral
    weight = slow.layer2[0].conv1.conv.weight              # (O, I + extra, 1, 1, 1)
    assert torch.equal(weight[:, -extra:], torch.zeros_like(weight[:, -extra:]))
    assert torch.equal(weight[:, :-extra, 0, 0, 0], net_2d.layer2[0].conv1.weight[..., 0, 0])
    assert report.missing and all(".fast_path." in "." + k or "_lateral." in k
                                  for k in report.missing)
    assert "fast pathway left at its initialisation" in report.summary()
    assert not report.mismatched and report.head_reset

    # laterals add only zero-weighted inputs, so the slow pathway computes the 2D features
    reach = temporal_reach(slow)
    image = torch.randn(1, 3, 32, 32)
    clip = image.unsqueeze(2).expand(-1, -1, (2 * reach + 2) * 4, -1, -1)  # slow sees every 4th
    with torch.no_grad():
        slow_features, _ = model.backbone(clip)
        assert_still_video_features_match(slow_features, features_2d(net_2d, image), reach)


# --- mmaction2 checkpoints and action3d fine-tuning ---------------------------------------------

def mmaction2_checkpoint(model: nn.Module) -> Dict[str, Any]:
    """What mmaction2 1.x saves: recognizer keys under `state_dict`, data-preprocessor buffers."""
    state = dict(model.state_dict())
    state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1, 1)
    return {"state_dict": state, "meta": {"epoch": 12, "iter": 3000, "mmengine_version": "0.10.4",
                                          "dataset_meta": {"classes": None}}}


@pytest.mark.parametrize("overrides", [
    dict(advanced=True, non_local=[0, [1], [1], 0], non_local_sub_sample=True, inflate=[0, 0, 1, 1],
         depth=50, stage_blocks=[1, 1, 1, 1]),
    dict(arch="slowfast", depth=50, base_channels=16, stage_blocks=[1, 1, 1, 1],
         resample_rate=4, speed_ratio=4, inflate=[0, 0, 1, 1]),
])
def test_mmaction2_checkpoint_round_trips(tmp_path, overrides):
    torch.manual_seed(0)
    source = randomise_bn(small(**overrides)).eval()
    path = tmp_path / "mmaction2.pth"
    torch.save(mmaction2_checkpoint(source), path)
    torch.manual_seed(1)
    model = small(**overrides).eval()
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x), source(x))

    report = load_pretrained(model, path, **quiet)
    assert report.kind == "mmaction2"
    assert not (report.missing or report.mismatched or report.head_reset)
    assert report.unused == ["data_preprocessor.mean"]
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_fine_tuning_from_400_classes_into_10(tmp_path):
    torch.manual_seed(0)
    pretrained = randomise_bn(small(num_classes=400))
    path = tmp_path / "kinetics400.ckpt"
    torch.save({"model": pretrained.state_dict(), "config": {"model": {"num_classes": 400}},
                "optimizer": {"state": {}, "param_groups": []}, "epoch": 30}, path)
    model = small(num_classes=10)
    with torch.no_grad():
        model.cls_head.fc_cls.weight.fill_(1.0)             # so the re-initialisation shows
    lines = []
    report = load_pretrained(model, path, log=lines.append)

    assert report.kind == "action3d" and report.head_reset
    assert not (report.missing or report.unused or report.mismatched)
    assert len(lines) == 1 and "head re-initialised (400 -> 10 classes)" in lines[0]
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, pretrained.backbone.state_dict()[key]), key
    head = model.cls_head.fc_cls
    assert head.weight.shape == (10, head.in_features) and head.weight.abs().max() < 0.1
    assert torch.equal(head.bias, torch.zeros(10))
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 10)


def test_backbone_state_dict_loads_into_recognizer_and_back():
    torch.manual_seed(0)
    source = small()
    model = small()
    report = load_pretrained(model, source.backbone.state_dict(), **quiet)
    assert report.head_reset and report.head_note == "checkpoint has no video head"
    assert torch.equal(model.backbone.conv1.conv.weight, source.backbone.conv1.conv.weight)

    bare = small().backbone
    report = load_pretrained(bare, source.state_dict(), **quiet)
    assert report.unused == ["cls_head.fc_cls.weight", "cls_head.fc_cls.bias"]
    assert not report.head_reset and not report.missing


def test_shape_mismatch_is_reported_not_loaded():
    torch.manual_seed(0)
    state = small(stage_blocks=[1, 1, 1, 2]).state_dict()
    state["backbone.layer1.0.conv1.conv.weight"] = torch.randn(8, 8, 1, 3, 3)
    model = small()
    before = model.backbone.layer1[0].conv1.conv.weight.clone()
    report = load_pretrained(model, state, **quiet)
    assert report.mismatched == ["backbone.layer1.0.conv1.conv.weight: 8x8x1x3x3 vs 8x8x3x3x3"]
    assert torch.equal(model.backbone.layer1[0].conv1.conv.weight, before)
    assert report.unused and all(k.startswith("backbone.layer4.1.") for k in report.unused)
    assert "shape mismatch 1" in report.summary()


def _action3d_checkpoint(path, classes):
    import torch as _torch

    from action3d.models import build_model

    model = build_model({"depth": 18, "base_channels": 8, "stage_blocks": [1, 1, 1, 1], "num_classes": len(classes)})
    _torch.save({"model": model.state_dict(), "classes": list(classes), "config": {}}, path)
    return model


def test_a_head_of_other_classes_is_re_initialised_and_the_same_classes_are_reordered_by_name(tmp_path):
    """Fine-tuning from an action3d checkpoint: its head is loaded only for the same classes, with
    its rows in the dataset's order; other classes of the same count get a new head."""
    from action3d.models import build_model

    source = _action3d_checkpoint(tmp_path / "src.pt", ["walk", "run", "jump"])
    common = {"depth": 18, "base_channels": 8, "stage_blocks": [1, 1, 1, 1], "num_classes": 3,
              "pretrained": str(tmp_path / "src.pt")}
    lines = []
    same = build_model(common, log=lines.append, classes=["jump", "walk", "run"])
    assert torch.equal(same.cls_head.fc_cls.weight, source.cls_head.fc_cls.weight[[2, 0, 1]])
    assert "rows in the dataset's class order" in lines[-1]
    other = build_model(common, log=lines.append, classes=["swim", "run", "jump"])
    assert not torch.equal(other.cls_head.fc_cls.weight, source.cls_head.fc_cls.weight)
    assert "head re-initialised (the checkpoint's classes are not the dataset's)" in lines[-1]
    assert torch.equal(other.backbone.conv1.conv.weight, source.backbone.conv1.conv.weight)   # backbone kept
