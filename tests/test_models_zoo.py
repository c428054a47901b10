"""Presets (action3d.config.model_presets), their builders, build_model, the recognizer and the
model summary."""
import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from action3d.commands._hydra import compose_config
from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.errors import Action3dError
from action3d.models import (
    PRESETS,
    ModelConfig,
    NonLocal3d,
    Recognizer,
    ResNet3dSlowFast,
    build_model,
    format_summary,
    model_summary,
    presets,
)

# Published parameter counts for 400 Kinetics classes. PyTorchVideo model zoo
# (docs/source/model_zoo.md): I3D_R50 28.04M, SLOW_4x16_R50 32.45M, SLOW_8x8_R50 32.45M,
# SLOWFAST_4x16_R50 34.48M, SLOWFAST_8x8_R50 34.57M; mmaction2 lists the same for i3d_r50,
# slowonly_r50 and slowfast_r50 4x16 / 8x8. torchvision.models.video: r3d_18 33,371,472 and
# mc3_18 11,695,440 (its model summary), checked against torchvision itself below.
PUBLISHED_PARAMS = {
    "i3d_r50": 28.04e6,
    "slowonly_r50": 32.45e6,
    "slowonly_r50_8x8": 32.45e6,
    "slowfast_r50": 34.48e6,
    "slowfast_r50_8x8": 34.57e6,
}
# torchvision's documented cost of r3d_18 on a 16x112x112 clip: "GFLOPS 40.70" (multiply-adds).
R3D_18_GMACS = 40.70


def preset(name, **overrides):
    """The `model` node of a preset on the typed schema, as `model=NAME` composes it, with overrides."""
    node = OmegaConf.structured(MODEL_PRESETS[name].model_config())
    for key, value in overrides.items():
        node[key] = value
    return node


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def build_meta(name, **overrides):
    """Build without allocating or initialising weights: counting parameters is instant."""
    with torch.device("meta"):
        return build_model(preset(name, num_classes=400, **overrides))


ALL_PRESETS = sorted(MODEL_PRESETS)


def test_required_presets_exist():
    assert {"tiny", "r3d_18", "mc3_18", "r3d_34", "i3d_r50", "i3d_nl_r50", "slowonly_r50",
            "slowonly_r50_8x8", "slowfast_r50", "slowfast_r50_8x8"} <= set(ALL_PRESETS)


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_each_builder_builds_the_config_that_model_name_composes(name, monkeypatch):
    """What the builder hands to build_model is the `model` node of `action3d train model=NAME`
    (no network built: the configs are compared), and `model=NAME` sets the preset's sampling."""
    composed = compose_config("train", [f"model={name}", "model.num_classes=7"])
    received = []
    monkeypatch.setattr(presets, "build_model", lambda cfg, **kwargs: received.append((cfg, kwargs)))
    PRESETS[name](num_classes=7)
    [(cfg, kwargs)] = received
    assert dataclasses.asdict(cfg) == OmegaConf.to_container(composed.model)
    assert kwargs == {"backbone_options": {}} and cfg.name == name
    default = compose_config("train", ["model.num_classes=7"]).data   # the dataset's own sampling
    preset_sampling = MODEL_PRESETS[name].sampling()
    for key in ("clip_len", "frame_interval"):
        assert composed.data[key] == preset_sampling.get(key, default[key])


@pytest.mark.parametrize("name, overrides", [
    ("tiny", {}),
    ("slowfast_r50_8x8", {"depth": 18, "base_channels": 16, "stage_blocks": [1, 1, 1, 1]}),
])
def test_a_builder_and_model_name_build_the_same_network(name, overrides):
    """Small ones only: the same modules and, from the same seed, the same weights."""
    command_line = [f"model={name}", "model.num_classes=5", *(f"model.{k}={v}" for k, v in overrides.items())]
    torch.manual_seed(0)
    from_config = build_model(compose_config("train", command_line).model)
    torch.manual_seed(0)
    from_builder = PRESETS[name](num_classes=5, **overrides)
    assert repr(from_builder) == repr(from_config)
    for (key, a), b in zip(from_config.state_dict().items(), from_builder.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_each_preset_builds(name):
    model = build_meta(name)
    assert isinstance(model, Recognizer) and model.num_classes == 400


@pytest.mark.parametrize("name, sampling", [
    ("slowonly_r50", (4, 16)), ("slowonly_r50_8x8", (8, 8)), ("slowfast_r50", (32, 2)),
    ("slowfast_r50_8x8", (32, 2)), ("i3d_r50", (32, 2)), ("r3d_18", (16, 2)),
])
def test_preset_sets_its_sampling(name, sampling):
    assert (MODEL_PRESETS[name].clip_len, MODEL_PRESETS[name].frame_interval) == sampling


def test_r3d_18_and_mc3_18_match_torchvision_parameter_counts():
    from torchvision.models.video import mc3_18, r3d_18

    with torch.device("meta"):
        tv_r3d, tv_mc3 = n_params(r3d_18(num_classes=400)), n_params(mc3_18(num_classes=400))
    assert n_params(build_meta("r3d_18")) == tv_r3d == 33_371_472
    assert n_params(build_meta("mc3_18")) == tv_mc3 == 11_695_440


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_within_one_percent_of_published(name):
    count = n_params(build_meta(name))
    assert abs(count - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name] < 0.01, count


def test_i3d_nl_has_five_non_local_blocks_and_depth_override_works():
    model = build_meta("i3d_nl_r50")
    assert sum(isinstance(m, NonLocal3d) for m in model.modules()) == 5
    deep = build_meta("slowfast_r50", depth=101)
    assert isinstance(deep.backbone, ResNet3dSlowFast) and len(deep.backbone.slow_path.layer3) == 23
    assert len(build_meta("slowonly_r50", depth=101).backbone.layer3) == 23


@pytest.mark.parametrize("t, size", [(8, 64), (4, 32), (11, 57), (1, 40)])
def test_tiny_recognizer_gives_logits_for_any_clip_length_and_crop(t, size):
    model = build_model(preset("tiny", num_classes=5)).eval()
    logits = model(torch.randn(2, 3, t, size, size))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()


def test_recognizer_multi_view_batch_gives_per_view_logits():
    model = build_model(preset("tiny", num_classes=5)).eval()
    views = torch.randn(2, 3, 3, 8, 32, 32)  # (N, V, C, T, H, W)
    out = model(views)
    assert out.shape == (2, 3, 5)
    assert torch.allclose(out[1, 2], model(views[1:2, 2])[0], atol=1e-5)
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        model(torch.randn(3, 8, 32, 32))


def test_slowfast_recognizer_end_to_end_small():
    cfg = preset("slowfast_r50_8x8", num_classes=7, depth=18, base_channels=16)
    model = build_model(cfg).eval()
    assert model.cls_head.fc_cls.in_features == 128 + 16
    assert model(torch.randn(1, 3, 16, 32, 32)).shape == (1, 7)


def test_tiny_learns_a_separable_toy_task():
    torch.manual_seed(0)
    model = build_model(preset("tiny", num_classes=2, dropout=0.0))
    model = model.to(memory_format=torch.channels_last_3d)
    x = torch.randn(8, 3, 4, 32, 32)
    x[4:, :, :, :16] += 1.5   # class 1: a bright top half
    y = torch.tensor([0] * 4 + [1] * 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_build_model_accepts_dataclass_dict_and_dictconfig():
    for cfg in (ModelConfig(num_classes=3, base_channels=4),
                {"num_classes": 3, "base_channels": 4},
                OmegaConf.structured(ModelConfig(num_classes=3, base_channels=4))):
        assert build_model(cfg).cls_head.fc_cls.out_features == 3


@pytest.mark.parametrize("cfg, words", [
    ({"base_channels": 4}, ["model.num_classes"]),
    ({"num_classes": 3, "depht": 18}, ["model.depht"]),
    ({"num_classes": 3, "arch": "i3d"}, ["model.arch", "slowfast", "x3d"]),
    ({"num_classes": 3, "depth": 19}, ["depth", "18, 34, 50, 101, 152"]),
    ({"num_classes": 3, "inflate_style": "3x2x1"}, ["inflate_style"]),
])
def test_build_model_user_errors_are_action3d_errors(cfg, words):
    with pytest.raises(Action3dError) as err:
        build_model(cfg)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_build_model_loads_pretrained_weights(tmp_path):
    source = build_model(preset("tiny", num_classes=4))
    path = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), path)
    lines = []
    model = build_model(preset("tiny", num_classes=4, pretrained=str(path)), log=lines.append)
    for (name, a), b in zip(source.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(lines) == 1


def test_summary_of_r3d_18_matches_torchvision_figures():
    model = build_meta("r3d_18")
    summary = model_summary(model, (3, 16, 112, 112))
    assert summary["params_total"] == summary["params_trainable"] == 33_371_472
    shapes = {s["name"]: s["shape"] for s in summary["stages"]}
    assert shapes == {"stem": [64, 16, 56, 56], "layer1": [64, 16, 56, 56],
                      "layer2": [128, 8, 28, 28], "layer3": [256, 4, 14, 14],
                      "layer4": [512, 2, 7, 7], "head": [400]}
    assert abs(summary["gflops"] / 2 - R3D_18_GMACS) < 0.05  # FlopCounterMode: 2 per MAC
    text = format_summary(summary)
    assert "33.4M" in text and "layer4" in text and "512 x 2 x 7 x 7" in text


def test_summary_counts_trainable_and_reports_both_pathways():
    model = build_model(preset("slowfast_r50", num_classes=10, depth=18, base_channels=16,
                               frozen_stages=1))
    was = model.state_dict()["backbone.slow_path.conv1.conv.weight"].clone()
    summary = model_summary(model, (3, 32, 64, 64))
    names = [s["name"] for s in summary["stages"]]
    assert names[:2] == ["slow.stem", "fast.stem"] and "fast.layer4" in names
    shapes = {s["name"]: s["shape"] for s in summary["stages"]}
    assert shapes["slow.layer4"] == [128, 4, 2, 2] and shapes["fast.layer4"] == [16, 32, 2, 2]
    assert summary["params_trainable"] < summary["params_total"] == n_params(model)
    assert model.training  # summary restores the mode and leaves the weights alone
    assert torch.equal(model.state_dict()["backbone.slow_path.conv1.conv.weight"], was)
    assert summary["gflops"] > 0
