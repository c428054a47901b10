"""The zoos' presets (`r2plus1d_18`, `ptv/NAME`, `hara/resnetD`): their architectures as the zoos define
them (parameter counts equal to the zoos' own models, built on the meta device: instant), mmaction2's
CSN R152 shapes, and what `action3d info` prints for them."""
from __future__ import annotations

import warnings

import pytest
import torch

from action3d.commands import info
from action3d.commands._hydra import compose_config
from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.models import PRESETS

PTV = sorted(name for name in MODEL_PRESETS if name.startswith("ptv/"))
HARA = sorted(name for name in MODEL_PRESETS if name.startswith("hara/"))


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(name: str, num_classes: int = 400, **overrides):
    with torch.device("meta"):
        return PRESETS[name](num_classes=num_classes, **overrides)


def test_the_zoo_presets_exist_with_their_builders():
    names = {"ptv/slow_r50", "ptv/slowfast_r50", "ptv/slowfast_r101", "ptv/i3d_r50", "ptv/c2d_r50", "ptv/csn_r101",
             "ptv/r2plus1d_r50", "ptv/x3d_xs", "ptv/x3d_s", "ptv/x3d_m", "ptv/x3d_l"}
    assert set(PTV) == names and "r2plus1d_18" in MODEL_PRESETS
    assert HARA == sorted(f"hara/resnet{d}" for d in (10, 18, 34, 50, 101, 152, 200))
    for name in [*PTV, *HARA, "r2plus1d_18"]:
        preset = MODEL_PRESETS[name]
        assert preset.native_input and preset.clip_len and preset.frame_interval, name
        assert ("PyTorchVideo" in preset.source) == name.startswith("ptv/") and ("Hara" in preset.source) == (
            name.startswith("hara/"))


@pytest.mark.parametrize("name", PTV)
def test_each_ptv_preset_has_the_hub_models_parameter_count(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)       # pytorchvideo 0.1.5 calls torch.jit.script on import
        from pytorchvideo.models import hub

    with torch.device("meta"):
        reference = getattr(hub, name[len("ptv/"):])(pretrained=False)
    assert n_params(meta(name)) == n_params(reference)


def test_r2plus1d_18_has_torchvisions_parameter_count():
    from torchvision.models.video import R2Plus1D_18_Weights

    assert n_params(meta("r2plus1d_18")) == R2Plus1D_18_Weights.KINETICS400_V1.meta["num_params"] == 31_505_325


def test_ptv_slowfast_laterals_have_928_more_parameters_than_slowfast_r50_8x8():
    """BN on the four laterals (16 + 64 + 128 + 256 channels, weight and bias)."""
    assert n_params(meta("ptv/slowfast_r50")) - n_params(meta("slowfast_r50_8x8")) == 928


@pytest.mark.parametrize("mode, published", [("ir", 29.70e6), ("ip", 33.02e6)])
def test_mmaction2_csn_r152_shapes(mode, published):
    """mmaction2's ircsn/ipcsn R152 (configs/recognition/csn/metafile.yml: 29.70M, 33.02M) is
    ptv/csn_r101's layout at depth 152 with BN epsilon 1e-3; its names (`conv2.0.conv`, ...) are ours."""
    model = meta("ptv/csn_r101", depth=152, norm_eps=1e-3, bottleneck_mode=mode)
    assert round(n_params(model) / 1e4) == round(published / 1e4)
    keys = set(model.state_dict())
    assert "backbone.layer3.35.conv2.0.conv.weight" in keys and ("backbone.layer1.0.conv2.1.conv.weight" in keys) == (
        mode == "ip")


def test_x3d_widths_and_depths_follow_pyslowfast():
    xs, large = meta("ptv/x3d_xs").backbone, meta("ptv/x3d_l").backbone
    assert xs.stage_blocks == [3, 5, 11, 7] and large.stage_blocks == [5, 10, 25, 15]
    assert xs.stage_channels == [24, 48, 96, 192] and xs.conv1.conv.conv_t.groups == 24
    assert [xs.layer1[0].se is not None, xs.layer1[1].se is not None] == [True, False]
    assert xs.layer1[0].downsample.bn is None and xs.layer2[0].downsample.bn is not None   # PTV's shortcut norms


def test_hara_presets_build_his_stem_pool_and_depths_10_and_200():
    ten, two_hundred = meta("hara/resnet10").backbone, meta("hara/resnet200").backbone
    assert ten.stage_blocks == [1, 1, 1, 1] and two_hundred.stage_blocks == [3, 24, 36, 3]
    assert ten.maxpool.kernel_size == (3, 3, 3) and ten.maxpool.stride == (2, 2, 2)
    assert ten.conv1.conv.kernel_size == (7, 7, 7)


def _info(*overrides):
    return info.run(compose_config("info", list(overrides)))


def test_info_prints_the_zoo_parameter_counts(capsys):
    _info("model=ptv/x3d_m")
    assert "parameters     3.79M (3,794,274)" in capsys.readouterr().out
    _info("model=r2plus1d_18")
    assert "parameters     31.5M (31,505,325)" in capsys.readouterr().out


def test_info_prints_the_zoos_gmacs_at_the_native_input_only(capsys):
    summary = _info("model=r2plus1d_18", "input=[3,16,112,112]")
    out = capsys.readouterr().out
    assert summary["zoo_gmacs"] == 40.52 and "zoo GMACs      40.52" in out and "action3d counts 40.52" in out
    assert _info("model=r2plus1d_18", "input=[3,8,112,112]")["zoo_gmacs"] is None
    assert _info("model=r2plus1d_18", "input=[3,16,112,112]", "model.depth=34")["zoo_gmacs"] is None
    assert "zoo GMACs" not in capsys.readouterr().out
