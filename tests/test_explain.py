"""`action3d explain`: a Grad-CAM heat map of a class over every frame, on the layer picked per backbone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from deploy_support import small_slowfast, trained_checkpoint

from action3d.commands import explain as explain_command
from action3d.commands._checkpoint import load_trained as load_trained_model
from action3d.commands._hydra import compose_config
from action3d.data.decode import VideoReader, read_all_frames
from action3d.data.synthetic import render_video, write_mp4
from action3d.engine.explain import explain_clips, grad_cam, pick_layers, video_layers
from action3d.errors import Action3dError
from action3d.models import r3d_18, tiny


@pytest.fixture(scope="module")
def trained(cache_dir):
    return load_trained_model(trained_checkpoint(cache_dir), torch.device("cpu"))


# ------------------------------------------------------------------ masks of the synthetic shapes


def test_masks_leave_the_frames_unchanged_and_follow_the_shapes():
    plain = render_video("move_right", np.random.default_rng([5, 1]), num_frames=12, size=64)
    frames, movers, distractors = render_video("move_right", np.random.default_rng([5, 1]), num_frames=12, size=64,
                                               with_masks=True)
    assert np.array_equal(plain, frames)
    assert movers.shape == distractors.shape == (12, 64, 64) and movers.dtype == bool
    assert distractors.any() and not (movers & distractors).any()
    still = distractors.any(axis=0)                                                   # distractors stay put
    assert all(np.array_equal(d, still & ~m) for d, m in zip(distractors, movers, strict=True))
    columns = [np.nonzero(m)[1].mean() for m in movers]                                # they move right
    assert columns[-1] > columns[0] + 10
    changed = np.abs(frames[-1].astype(int) - frames[0].astype(int)).sum(-1) > 60
    assert changed[movers[0] | movers[-1]].mean() > 0.5 > 0.05 > changed[distractors[0] & distractors[-1]].mean()


# ------------------------------------------------------------------ layer choice


def _layer_names(model, shape):
    layers, grid = pick_layers(model.eval(), torch.randn(1, *shape))
    return [name for name, _ in layers], grid


def test_the_layer_is_the_deepest_with_a_fine_enough_grid():
    assert _layer_names(tiny(num_classes=3), (3, 8, 64, 64)) == (["backbone.layer2"], (8, 8))
    assert _layer_names(tiny(num_classes=3), (3, 8, 32, 32)) == (["backbone.layer1"], (8, 8))
    assert _layer_names(tiny(num_classes=3), (3, 8, 224, 224)) == (["backbone.layer4"], (7, 7))
    assert _layer_names(r3d_18(num_classes=3), (3, 4, 112, 112)) == (["backbone.layer4"], (7, 7))


def test_slowfast_uses_both_pathways():
    model = small_slowfast()
    x = torch.randn(1, 3, 8, 64, 64)
    layers, grid = pick_layers(model, x)
    assert [name for name, _ in layers] == ["backbone.slow_path.layer2", "backbone.fast_path.layer2"] and grid == (8, 8)
    heat = grad_cam(model, layers, x, target=1, size=(8, 64, 64))
    assert heat.shape == (8, 64, 64) and 0 <= heat.min() and heat.max() <= 1


# ------------------------------------------------------------------ where the trained model looks


@pytest.mark.slow
def test_the_heat_lies_on_the_moving_shapes_not_on_the_static_distractors(trained, tmp_path):
    """move_right videos with static distractors: mean heat per pixel over the movers vs over the
    distractors (the automatic layer: tiny's stage 2, an 8x8 grid at 64 px)."""
    target = trained.classes.index("move_right")
    movers_heat, distractors_heat = [], []
    seed = 0
    while len(movers_heat) < 4:
        frames, movers, distractors = render_video("move_right", np.random.default_rng([9, seed]), num_frames=16,
                                                   size=64, with_masks=True)
        seed += 1
        if distractors.sum() < 40:                                      # needs a visible distractor
            continue
        path = tmp_path / f"v{seed}.mp4"
        write_mp4(path, frames)
        with VideoReader(path) as reader:
            layers, grid = video_layers(trained, reader, trained.config.data)
            heat = np.concatenate([h for _, h in explain_clips(trained, reader, target=target, layers=layers,
                                                               progress=False)])
        assert heat.shape == (16, 64, 64) and grid == (8, 8)
        movers_heat.append(heat[movers].mean())
        distractors_heat.append(heat[distractors].mean())
    wins = sum(m > d for m, d in zip(movers_heat, distractors_heat, strict=True))
    assert wins >= 3 and np.mean(movers_heat) > 1.5 * np.mean(distractors_heat), (movers_heat, distractors_heat)


@pytest.mark.slow
def test_explain_command_writes_every_frame_and_prints_the_layer(trained, tmp_path, capsys):
    frames = render_video("move_up", np.random.default_rng([3, 3]), num_frames=40, size=64)    # 2.5 clips of 16
    write_mp4(tmp_path / "up.mp4", frames)
    out = tmp_path / "out" / "explained.mp4"
    cfg = compose_config("explain", [f"ckpt={trained.path}", f"video={tmp_path / 'up.mp4'}", f"out={out}",
                                     "class_name=move_down"])
    result = explain_command.run(cfg)
    printed = capsys.readouterr().out
    assert "class        move_down (class_name; probability" in printed
    assert "layer        backbone.layer2 (Grad-CAM; grid 8x8 at short side 64)" in printed
    written = read_all_frames(out)                                       # (C, T, H, W)
    assert written.shape == (3, 40, 64, 64) and result.frames == 40
    assert (written.float() - torch.from_numpy(frames).permute(3, 0, 1, 2).float()).abs().mean() > 2  # coloured


def test_explain_errors_name_the_key(trained, tmp_path):
    write_mp4(tmp_path / "v.mp4", render_video("move_up", np.random.default_rng(0), num_frames=16, size=64))
    with pytest.raises(Action3dError) as err:
        explain_command.run(compose_config("explain", [f"ckpt={trained.path}", f"video={tmp_path / 'v.mp4'}",
                                                       f"out={tmp_path / 'o.mp4'}", "class_name=jump"]))
    assert str(err.value).startswith("class_name=jump: not a class of ckpt=") and "move_right" in str(err.value)
    with pytest.raises(Action3dError) as err:
        explain_command.run(compose_config("explain", [f"ckpt={trained.path}", f"video={tmp_path}",
                                                       f"out={tmp_path / 'o.mp4'}"]))
    assert str(err.value).startswith(f"video={tmp_path}: explain writes one video")
    assert not (tmp_path / "o.mp4").exists()
