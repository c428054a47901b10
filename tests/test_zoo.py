"""zoo=SOURCE/NAME presets, their rules and classes, eval of a zoo's own file with its protocol,
eval.dump, `data prepare target_fps=` and scripts/fuse_scores.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from action3d.commands._hydra import compose_config, typed_config
from action3d.config import DataConfig, ModelConfig, TrainConfig
from action3d.config.model_presets import PRESETS
from action3d.config.zoo import PROTOCOL_DATA_KEYS
from action3d.data.video_writer import write_video
from action3d.errors import Action3dError

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "conf" / "zoo"
ZOO_FILES = sorted(ZOO.rglob("*.yaml"))


def zoo_name(path: Path) -> str:
    return str(path.relative_to(ZOO).with_suffix(""))


def preset_of(path: Path):
    node = yaml.safe_load(path.read_text())
    return node, (node.get("zoo") or {}).get("model")


# --------------------------------------------------------------------------- the preset files

@pytest.mark.parametrize("path", ZOO_FILES, ids=zoo_name)
def test_every_zoo_file_says_where_its_figures_come_from_and_sets_the_whole_protocol(path):
    node, model = preset_of(path)
    text = path.read_text()
    assert node["zoo"]["name"] == zoo_name(path)
    if node["zoo"].get("refused"):
        assert "nearest" in node["zoo"]["refused"] and "defaults" not in node
        return
    assert "published:" in text and ("file:" in text), "a zoo file names its checkpoint and its figures"
    assert {"override /model": model} in node["defaults"]
    assert set(PROTOCOL_DATA_KEYS) | {"mean", "std", "clip_len", "frame_interval", "target_fps"} <= set(node["data"])
    assert set(node["eval"]) == {"protocol", "num_clips", "num_crops"}
    if zoo_name(path).startswith("mmaction2/"):
        assert re.search(r"mmaction2 [01]\.x \((1\.2\.0|0\.24\.1)", text), "each mmaction2 file names its version"


def test_every_zoo_file_composes_and_passes_the_rules_for_eval():
    """Every zoo file whose model preset exists composes for eval and passes every rule (one Hydra
    session for all: composing each through compose_config would take seconds apiece); train
    composes in the tests below. Files of presets still to come are listed, not failed."""
    from hydra import compose, initialize_config_dir

    from action3d.commands._hydra import CONF_DIR
    from action3d.config import register_configs
    from action3d.config.validation import validate

    register_configs()
    waiting, checked = [], 0
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name="eval"):
        for path in ZOO_FILES:
            node, model = preset_of(path)
            if node["zoo"].get("refused"):
                continue
            if model not in PRESETS:
                waiting.append(model)
                continue
            cfg = compose(config_name="eval", overrides=[f"zoo={zoo_name(path)}", "ckpt=x.pt"])
            validate(cfg, "eval", user_keys=["zoo", "ckpt"])
            assert cfg.model.name == PRESETS[model].name and cfg.eval.protocol == node["eval"]["protocol"]
            checked += 1
    assert checked >= 14, "the torchvision and mmaction2 files at least"
    if waiting:
        pytest.skip(f"{checked} checked; model presets not in this tree yet: {', '.join(sorted(set(waiting)))}")


@pytest.mark.parametrize("path", [p for p in ZOO_FILES if preset_of(p)[0]["zoo"].get("refused")], ids=zoo_name)
def test_a_zoo_checkpoint_action3d_cannot_build_is_refused_naming_the_nearest(path):
    with pytest.raises(Action3dError) as err:
        compose_config("eval", [f"zoo={zoo_name(path)}", "ckpt=x.pt"])
    message = str(err.value)
    assert "\n" not in message and "nearest" in message
    assert message.startswith(f"zoo={zoo_name(path)} is not available, as its zoo.refused says: ")


def test_the_kinetics_400_list_is_torchvisions_head_order():
    from torchvision.models.video import R3D_18_Weights

    from action3d.data.zoo_classes import KINETICS_400

    assert KINETICS_400 == R3D_18_Weights.KINETICS400_V1.meta["categories"]


# --------------------------------------------------------------------------- rules

def test_fine_tuning_takes_the_zoos_model_normalisation_and_sampling():
    cfg = typed_config("train", ["zoo=tv/r3d_18", "recipe=finetune"])
    assert cfg.model.name == "r3d_18" and cfg.model.frozen_stages == 1            # the recipe's, not an arch key
    assert (cfg.data.clip_len, cfg.data.frame_interval, cfg.data.target_fps) == (16, 1, 15.0)
    assert cfg.data.mean == pytest.approx([110.2008, 100.63983, 95.99475])
    dataset = typed_config("train", []).data                                  # augmentation stays the dataset's
    assert (cfg.data.train_crop, cfg.data.crop_area_range, cfg.data.flip) == (
        dataset.train_crop, dataset.crop_area_range, dataset.flip)


@pytest.mark.parametrize("overrides, words", [
    (["model=i3d_r50"], "model: zoo=tv/r3d_18 selects model r3d_18; give no model= with zoo="),
    (["model.depth=34"], "model.depth: zoo=tv/r3d_18 selects model r3d_18, whose depth is 18"),
    (["model.conv1_kernel=[1,7,7]"], "model.conv1_kernel: zoo=tv/r3d_18"),
])
def test_a_model_choice_or_architecture_key_with_zoo_is_refused_in_one_line(overrides, words):
    with pytest.raises(Action3dError) as err:
        compose_config("train", ["zoo=tv/r3d_18", *overrides])
    assert str(err.value).startswith(words) and "\n" not in str(err.value)


def test_zoo_architecture_keys_are_the_zoos_own(tmp_path):
    """A zoo file may set architecture keys over its preset (Hara's shortcut A) by listing them."""
    (tmp_path / "zoo" / "test").mkdir(parents=True)
    body = "# @package _global_\ndefaults:\n  - override /model: r3d_18\n  - _self_\nzoo:\n  name: test/a\n" \
           "  model: r3d_18\n  num_classes: 400\n  architecture:\n    shortcut_type: A\n"
    (tmp_path / "zoo" / "test" / "a.yaml").write_text(body + "model:\n  shortcut_type: A\n")
    (tmp_path / "zoo" / "test" / "b.yaml").write_text(body.replace("test/a", "test/b"))
    assert compose_config("train", ["zoo=test/a"], config_dirs=[str(tmp_path)]).model.shortcut_type == "A"
    with pytest.raises(Action3dError, match="^model.shortcut_type: zoo=test/b selects model r3d_18, whose "
                                            "shortcut_type is A"):
        compose_config("train", ["zoo=test/b"], config_dirs=[str(tmp_path)])


@pytest.mark.parametrize("line, words", [
    (["eval.protocol=torchvision", "eval.num_crops=3"], "its test code takes 1 crop(s) per clip"),
    (["eval.protocol=pyslowfast", "data.target_fps=30"], "leave data.target_fps unset"),
    (["eval.protocol=hara", "data.frame_interval=2"], "needs data.frame_interval=1"),
])
def test_a_protocol_refuses_views_its_test_code_does_not_define(line, words):
    with pytest.raises(Action3dError) as err:
        compose_config("eval", ["ckpt=x.pt", *line])
    assert str(err.value).startswith("eval.protocol=") and words in str(err.value)


def test_eval_dump_is_evals_only_and_an_npz():
    with pytest.raises(Action3dError, match="^eval.dump does not apply here: predict writes no per-video score"):
        compose_config("predict", ["ckpt=x.pt", "video=v.mp4", "eval.dump=o.npz"])
    with pytest.raises(Action3dError, match="^eval.dump=o.txt is not allowed: expected a file name ending in .npz"):
        compose_config("eval", ["ckpt=x.pt", "eval.dump=o.txt"])


def test_with_an_action3d_checkpoint_zoo_sets_only_the_test_protocol():
    from action3d.commands._checkpoint import with_protocol

    given = typed_config("eval", ["zoo=tv/r3d_18", "ckpt=x.pt"]).data
    stored = DataConfig(clip_len=8, frame_interval=4, mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0])
    data = with_protocol(stored, given)
    assert (data.test_resize, data.short_side, data.crop_size, data.resize_antialias) == ([128, 171], 128, 112, False)
    assert (data.clip_len, data.frame_interval, data.mean, data.target_fps) == (8, 4, [1.0, 2.0, 3.0], None)


def test_classes_map_by_name_and_a_class_the_zoo_lacks_is_refused():
    from action3d.commands.eval import zoo_head_classes
    from action3d.data.zoo_classes import KINETICS_400, map_classes

    assert map_classes(["Air_Drumming", "passing_American_football_(in_game)", "zumba"], KINETICS_400,
                       zoo="tv/r3d_18") == [1, KINETICS_400.index("passing American football (in game)"), 399]
    with pytest.raises(Action3dError, match=r"^data: 1 class\(es\) of the dataset are not among the 400 classes of "
                                            r"zoo=tv/r3d_18: 'moonwalking'"):
        map_classes(["abseiling", "moonwalking"], KINETICS_400, zoo="tv/r3d_18")
    hara = typed_config("eval", ["ckpt=x.pt"])
    hara.zoo.name, hara.zoo.num_classes = "hara/r3d18_K_200ep", 700
    with pytest.raises(Action3dError, match="^data.classes_file: zoo=hara/r3d18_K_200ep has no class list offline; "
                                            "give data.classes_file=FILE naming its 700 classes"):
        zoo_head_classes(hara)


# --------------------------------------------------------------------------- eval of a zoo's own file

def kinetics_folder(root: Path, lengths=(40, 10)) -> Path:
    """val/{abseiling,air_drumming}/vN.mp4 at 30 fps: one long enough for torchvision's window, one not."""
    rng = np.random.default_rng(0)
    for name in ("abseiling", "air_drumming"):
        (root / "val" / name).mkdir(parents=True)
        for i, n in enumerate(lengths):
            frames = rng.integers(0, 256, (n, 36, 48, 3), dtype=np.uint8).repeat(2, 1).repeat(2, 2)   # 72x96
            write_video(root / "val" / name / f"v{i}.mp4", frames, fps=30)
    return root


def tiny_trained(data: DataConfig, classes):
    from action3d.engine.inference import TrainedModel
    from action3d.models import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(name="tiny", base_channels=8, stage_blocks=[1, 1, 1, 1], num_classes=len(classes))
    model = build_model(cfg).eval()
    return TrainedModel(model=model, config=TrainConfig(model=cfg, data=data), classes=list(classes), path="tiny.pt")


def test_a_torchvision_protocol_eval_equals_videoclassification_on_the_same_frames(tmp_path):
    """eval.protocol=torchvision, data.target_fps=15, data.test_resize, data.resize_antialias=false:
    the scores equal torchvision's reference (VideoClips at 15 fps, UniformClipSampler,
    VideoClassification) on the same decoded frames; the short video is excluded and listed;
    eval.dump writes what np.load(allow_pickle=False) reads."""
    from torchvision.datasets.samplers import UniformClipSampler
    from torchvision.datasets.video_utils import VideoClips
    from torchvision.transforms._presets import VideoClassification

    from action3d.data.decode import read_all_frames
    from action3d.engine.evaluate import evaluate
    from action3d.engine.report import write_dump

    root = kinetics_folder(tmp_path / "ds")
    mean, std = [110.2008, 100.63983, 95.99475], [58.14765, 56.46975, 55.332195]
    data = DataConfig(format="folder", root=str(root), clip_len=16, frame_interval=1, target_fps=15,
                      test_resize=[32, 43], short_side=32, crop_size=28, resize_antialias=False, mean=mean, std=std,
                      num_workers=0)
    trained = tiny_trained(data, ["abseiling", "air_drumming"])
    result = evaluate(trained, data, num_clips=5, num_crops=1, average="prob", batch_size=2, progress=False,
                      protocol="torchvision")
    report = result.report
    assert report["num_videos"] == 2 and report["num_excluded"] == 2 and report["num_failed"] == 0
    assert all("fewer than one window of 16" in v["reason"] for v in report["excluded_videos"])
    preset = VideoClassification(crop_size=(28, 28), resize_size=(32, 43), mean=[m / 255 for m in mean],
                                 std=[s / 255 for s in std])
    arrays = result.dump()
    for path, scores in zip(arrays["videos"], arrays["scores"]):
        frames = read_all_frames(root / path)                                       # (C, T, H, W)
        clips, idxs = VideoClips.compute_clips_for_video(torch.arange(frames.shape[1]), 16, 1, 30.0, 15)
        holder = VideoClips.__new__(VideoClips)
        holder.clips = [clips]
        views = torch.stack([preset(frames[:, clips[i]].permute(1, 0, 2, 3)) for i in UniformClipSampler(holder, 5)])
        with torch.no_grad():
            expected = trained.model(views).softmax(-1).mean(0)
        assert np.abs(scores - expected.numpy()).max() < 1e-4, path
    dump = tmp_path / "out" / "scores.npz"
    write_dump(dump, arrays)
    loaded = np.load(dump, allow_pickle=False)
    assert loaded["videos"].tolist() == ["val/abseiling/v0.mp4", "val/air_drumming/v0.mp4"]
    assert loaded["labels"].tolist() == [0, 1] and loaded["scores"].shape == (2, 2)
    assert np.allclose(loaded["scores"].sum(1), 1, atol=1e-5)


def test_hara_protocol_scores_every_window_of_each_video(tmp_path):
    """A varying number of views per video (every 16-frame window) in one batch."""
    from action3d.engine.evaluate import evaluate

    root = kinetics_folder(tmp_path / "ds", lengths=(40, 17))
    data = DataConfig(format="folder", root=str(root), clip_len=16, frame_interval=1, short_side=28, crop_size=28,
                      num_workers=0)
    result = evaluate(tiny_trained(data, ["abseiling", "air_drumming"]), data, batch_size=4, progress=False,
                      protocol="hara", average="score")
    assert sorted(r["views"] for r in result.rows) == [2, 2, 3, 3]     # 40 frames: 3 windows, 17: 2
    assert result.report["metrics"]["clip_top1"] is not None


@pytest.mark.slow
def test_eval_zoo_r3d_18_on_a_kinetics_named_folder_writes_the_documented_arrays(tmp_path, cache_dir):
    """The issue's command: torchvision's r3d_18 state dict (random weights, nothing downloaded),
    evaluated as torchvision does on a folder whose classes carry Kinetics-400 names."""
    from torchvision.models.video import r3d_18

    root = kinetics_folder(tmp_path / "ds", lengths=(40, 10))
    torch.manual_seed(0)
    torch.save(r3d_18().state_dict(), tmp_path / "r3d_18.pth")
    result = run_cli(["eval", "zoo=tv/r3d_18", "ckpt=r3d_18.pth", "data=folder", "data.format=folder",
                      f"data.root={root}", "data.num_workers=0", "eval.num_clips=1", "eval.dump=out.npz",
                      "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir, check=True)
    assert "2 scored" in result.stdout and "eval.protocol=torchvision" in result.stdout
    arrays = np.load(tmp_path / "out.npz", allow_pickle=False)
    assert arrays["videos"].dtype.kind == "U"
    assert arrays["videos"].tolist() == ["val/abseiling/v0.mp4", "val/air_drumming/v0.mp4"]
    assert arrays["labels"].tolist() == [0, 1]                                 # abseiling, air drumming in K400
    assert arrays["scores"].shape == (2, 400) and np.allclose(arrays["scores"].sum(1), 1, atol=1e-4)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["zoo"] == "tv/r3d_18" and report["num_excluded"] == 2 and len(report["classes"]) == 400


def test_a_foreign_checkpoint_without_zoo_and_a_dataset_class_the_zoo_lacks_are_refused(tmp_path):
    """Both in one line, before any model is built (eval's own run, in this process)."""
    from action3d.commands import eval as eval_command

    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "foreign.pth")
    root = kinetics_folder(tmp_path / "ds", lengths=(20,))
    (root / "val" / "moonwalking").mkdir()
    (root / "val" / "abseiling" / "v0.mp4").rename(root / "val" / "moonwalking" / "v0.mp4")
    base = [f"ckpt={tmp_path / 'foreign.pth'}", "data=folder", "data.format=folder", f"data.root={root}",
            "data.num_workers=0", "trainer.device=cpu"]
    for extra, words in (([], "is not an action3d training checkpoint (no config/model entries); for a zoo's own "
                               "file give its preset, zoo=SOURCE/NAME"),
                         (["zoo=tv/r3d_18"], "are not among the 400 classes of zoo=tv/r3d_18 (kinetics400): "
                                             "'moonwalking'")):
        with pytest.raises(Action3dError) as err:
            eval_command.run(typed_config("eval", [*base, *extra]))
        assert words in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- data prepare target_fps=

def test_prepare_at_a_target_rate_stores_the_frames_the_resampling_picks(tmp_path):
    from action3d.data.decode import VideoReader, read_all_frames
    from action3d.data.prepare import prepare_dataset
    from action3d.data.sampling import at_frame_rate

    rng = np.random.default_rng(1)
    (tmp_path / "raw" / "a").mkdir(parents=True)
    source = tmp_path / "raw" / "a" / "v.mp4"
    write_video(source, rng.integers(0, 256, (45, 24, 32, 3), dtype=np.uint8).repeat(4, 1).repeat(4, 2), fps=30,
                gop=10, bframes=2)
    done = prepare_dataset([(str(source), 0)], root=tmp_path / "raw", out=tmp_path / "p", short_side=96, gop=8,
                           workers=1, progress=False, target_fps=15)
    prepared = tmp_path / "p" / done[0][0]
    with VideoReader(prepared) as reader, VideoReader(source) as original:
        assert (reader.num_frames, reader.fps) == (23, 15.0)
        resampled = at_frame_rate(original, 15)
        wanted = resampled.read(np.arange(resampled.num_frames)).float()
        stored = read_all_frames(prepared).float()
        assert (stored - wanted).abs().mean() < (stored[:, 1:] - wanted[:, :-1]).abs().mean() / 2
    cfg = compose_config("data", ["action=prepare", "out=o", "target_fps=15"])
    assert cfg.target_fps == 15.0


# --------------------------------------------------------------------------- scripts/fuse_scores.py

def test_fuse_scores_reports_the_weighted_fusion(tmp_path):
    labels = np.array([0, 1, 2, 1])
    a = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1]], dtype=np.float32)
    b = np.array([[0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]], dtype=np.float32)
    videos = np.array(["a.mp4", "b.mp4", "c.mp4", "d.mp4"])
    for name, scores in (("a", a), ("b", b)):
        np.savez(tmp_path / f"{name}.npz", videos=videos, labels=labels, scores=scores)
    out = tmp_path / "fused.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuse_scores.py"), str(tmp_path / "a.npz"),
                          str(tmp_path / "b.npz"), "--weights", "1,0.5", "--json", str(out)],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.read_text())
    fused = a + 0.5 * b
    assert report["fused"]["top1"] == pytest.approx(np.mean(fused.argmax(1) == labels))
    assert [r["top1"] for r in report["inputs"]] == pytest.approx([0.5, 0.75])
    assert report["fused"]["mean_class_accuracy"] == pytest.approx(np.mean([
        np.mean(fused.argmax(1)[labels == c] == c) for c in range(3)]))
    assert "fused" in run.stdout and "mean class accuracy" in run.stdout
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fuse_scores.py"), str(tmp_path / "a.npz"),
                    str(tmp_path / "b.npz"), "--softmax", "--json", str(out)], check=True, capture_output=True)
    soft = torch.tensor(a).softmax(1) + torch.tensor(b).softmax(1)
    expected = float((soft.argmax(1).numpy() == labels).mean())
    assert json.loads(out.read_text())["fused"]["top1"] == pytest.approx(expected)
    np.savez(tmp_path / "c.npz", videos=videos[::-1], labels=labels, scores=a)
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuse_scores.py"), str(tmp_path / "a.npz"),
                          str(tmp_path / "c.npz")], capture_output=True, text=True)
    assert bad.returncode == 2 and "other videos" in bad.stderr
