"""The model families on ResNet3d (R(2+1)D, ir/ip-CSN, X3D, PyTorchVideo's SlowFast laterals, Hara's
ResNets with shortcut A), each at small width: every parameter learns, and each trains, evaluates,
exports with parity (ONNX and TorchScript), embeds and explains on the CPU, as `tiny` does.

Widths and clips are small (8 base channels, 8x32x32 clips of a 2-class synthetic set), so a whole
chain takes seconds; the zoos' full-size architectures are checked in test_models_zoo_presets.py.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)
from torch import nn

from action3d.commands import info
from action3d.commands._checkpoint import load_trained
from action3d.commands._hydra import compose_config, typed_config
from action3d.data.synthetic import render_video, write_mp4
from action3d.engine.embed import embed_video
from action3d.engine.evaluate import evaluate
from action3d.engine.explain import explain_video
from action3d.engine.export import PARITY_TOLERANCE, export_model
from action3d.models import build_model

# Each new family and block type, at small width (the preset's layout, fewer blocks and channels).
FAMILIES = {
    "r2plus1d": ["model=r2plus1d_18", "model.base_channels=8", "model.conv1_mid_channels=6",
                 "model.stage_blocks=[1,1,1,1]"],
    "r2plus1d_bottleneck": ["model=ptv/r2plus1d_r50", "model.base_channels=8", "model.stage_blocks=[1,1,1,1]"],
    "ir_csn": ["model=ptv/csn_r101", "model.base_channels=8", "model.stage_blocks=[1,1,1,1]"],
    "ip_csn": ["model=ptv/csn_r101", "model.base_channels=8", "model.stage_blocks=[1,1,1,1]",
               "model.bottleneck_mode=ip"],
    "x3d": ["model=ptv/x3d_xs", "model.base_channels=8", "model.stage_blocks=[1,2,1,1]", "model.head_channels=32"],
    "ptv_slowfast": ["model=ptv/slowfast_r50", "model.base_channels=16", "model.stage_blocks=[1,1,1,1]"],
    "hara_shortcut_a": ["model=hara/resnet18", "model.base_channels=8", "model.stage_blocks=[1,1,1,1]",
                        "model.shortcut_type=A"],
}
DATA = ["data.synthetic.num_classes=2", "data.synthetic.train_per_class=2", "data.synthetic.val_per_class=1",
        "data.synthetic.num_frames=8", "data.synthetic.size=32", "data.clip_len=8", "data.frame_interval=1",
        "data.short_side=32", "data.crop_size=32", "data.batch_size=2", "data.num_workers=0"]
TRAIN = [*DATA, "trainer.max_steps=2", "trainer.max_epochs=1", "trainer.precision=32", "trainer.log_every=1",
         "trainer.precise_bn_batches=0", "model.dropout=0.0"]


def small(family: str, num_classes: int = 3) -> nn.Module:
    cfg = compose_config("train", [*FAMILIES[family], f"model.num_classes={num_classes}"])
    torch.manual_seed(0)
    return build_model(cfg.model, log=lambda _: None)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_parameter_of_each_family_gets_a_gradient(family):
    model = small(family).train()
    for module in model.modules():     # zero-initialised last BNs would stop the gradient of a block's convs
        if hasattr(module, "last_bn"):
            nn.init.ones_(module.last_bn().weight)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 8, 32, 32)), torch.tensor([0, 2]))
    loss.backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, silent


def _video(path):
    frames = render_video("move_right", np.random.default_rng([3, 1]), num_frames=10, size=32)
    write_mp4(path, frames)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_evaluates_exports_embeds_and_explains(family, tmp_path, cache_dir):
    from action3d.engine.train import Trainer

    with contextlib.redirect_stderr(io.StringIO()):
        Trainer(typed_config("train", [*TRAIN, *FAMILIES[family]]), run_dir=tmp_path / "run", seed=0).fit()
    summary = info.run(compose_config("info", [*FAMILIES[family], "model.num_classes=2", "input=[3,8,32,32]"]))
    assert summary["params_total"] > 0 and summary["stages"][-1]["shape"] == [2]
    trained = load_trained(str(tmp_path / "run" / "last.pt"), torch.device("cpu"), channels_last=False)
    result = evaluate(trained, trained.config.data, progress=False)
    assert result is not None and len(result.rows) == 2 and result.report
    for format in ("onnx", "torchscript"):
        exported = export_model(trained, format=format, out=tmp_path / f"model.{format}")
        assert exported.max_abs_diff <= PARITY_TOLERANCE
    video = _video(tmp_path / "clip.mp4")
    features, spans = embed_video(trained, video)
    assert features.shape[0] == len(spans) == 1 and np.isfinite(features).all()
    explained = explain_video(trained, video, tmp_path / "cam.mp4", target=0, progress=False)
    assert explained.frames == 10 and explained.layers and (tmp_path / "cam.mp4").stat().st_size > 0
