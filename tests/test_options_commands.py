"""The command keys of the option matrix: `info` (input, default_num_classes), `data`
(action, out, short_side, gop, crf, workers, min_frames, split), `eval` (ckpt, split, eval.*) and
`predict` (ckpt, video, topk, json). Each test runs the command's `run(cfg)` in this process on the
config the command line composes (`options_compose.compose`) and checks what a user sees: printed
lines, files written, the videos and views scored.

A tiny model trained for one epoch on the small synthetic set (once per module) gives the checkpoint.
"""
from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from options_compose import compose
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)

from action3d.commands import data as data_command
from action3d.commands import eval as eval_command
from action3d.commands import info
from action3d.commands import predict as predict_command
from action3d.data import check as check_module
from action3d.data import video_jobs as video_jobs_module
from action3d.data.decode import VideoReader
from action3d.data.video_writer import write_video
from action3d.engine import evaluate as evaluate_module
from action3d.engine.train import Trainer
from action3d.errors import Action3dError

from conftest import SMALL


@pytest.fixture(autouse=True)
def own_cache(cache_dir):
    """The session's ACTION3D_CACHE (synthetic sets and resolved annotation indexes go there)."""
    return cache_dir


# --------------------------------------------------------------------------- info

def test_input_sets_the_clip_info_summarises(capsys):
    small = info.run(compose("info", "input=[3,8,32,32]"))
    large = info.run(compose("info", "input=[3,16,64,64]"))
    out = capsys.readouterr().out
    stems = [next(s["shape"] for s in summary["stages"] if s["name"] == "stem") for summary in (small, large)]
    assert stems == [[16, 8, 8, 8], [16, 16, 16, 16]]  # the tiny preset: stride 4 in space
    assert large["gflops"] > 7 * small["gflops"]
    assert "input [C,T,H,W]=[3, 8, 32, 32]" in out and "input [C,T,H,W]=[3, 16, 64, 64]" in out


def test_default_num_classes_sizes_the_head_when_model_num_classes_is_unset(capsys):
    heads = {}
    for overrides in ([], ["default_num_classes=7"], ["model.num_classes=3"]):
        summary = info.run(compose("info", "input=[3,4,32,32]", *overrides))
        heads[len(overrides) and overrides[0][:5]] = next(s["shape"] for s in summary["stages"] if s["name"] == "head")
    assert heads == {0: [400], "defau": [7], "model": [3]}
    assert "7 classes" in capsys.readouterr().out
    with pytest.raises(Action3dError, match="default_num_classes does not apply here: model.num_classes=3 is set"):
        compose("info", "default_num_classes=7", "model.num_classes=3")


# --------------------------------------------------------------------------- data synth | check | prepare

def moving_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Random 8x8 blocks sliding one pixel a frame: detail that survives scaling and costs bits."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height // 8 + 1, (width + count) // 8 + 1, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    return np.stack([texture[:height, t:t + width] for t in range(count)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A list-file dataset: 2 training videos, 2 validation videos (one of them 12 frames long)."""
    root = tmp_path_factory.mktemp("command-videos")
    for name, frames, seed in (("a", 24, 0), ("b", 24, 1), ("c", 24, 2), ("short", 12, 3)):
        write_video(root / f"{name}.mp4", moving_frames(frames, seed=seed), gop=24)
    (root / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (root / "val.txt").write_text("c.mp4 0\nshort.mp4 1\n")
    return root


def data_cmd(root, action: str, *overrides: str):
    """`action3d data ACTION data=folder data.root=ROOT ... OVERRIDES` (check: clips of 8 frames every 2nd)."""
    sampling = ("data.clip_len=8", "data.frame_interval=2") if action == "check" else ()
    return compose("data", f"action={action}", "data=folder", f"data.root={root}",
                   f"data.train_list={root / 'train.txt'}", f"data.val_list={root / 'val.txt'}",
                   *sampling, "workers=1", *overrides)


def keyframes(path) -> list:
    with av.open(str(path)) as container:
        packets = sorted((p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size)
    return [i for i, (_, key) in enumerate(packets) if key]


def test_action_chooses_the_tool(videos, tmp_path, capsys):
    data_command.run(compose("data", "action=synth", f"out={tmp_path / 'synth'}", "data.synthetic.num_classes=2",
                             "data.synthetic.train_per_class=1", "data.synthetic.val_per_class=1",
                             "data.synthetic.num_frames=4", "data.synthetic.size=16"))
    assert (tmp_path / "synth/classes.txt").read_text().split() == ["move_right", "move_left"]
    capsys.readouterr()
    reports = data_command.run(data_cmd(videos, "check"))
    assert sorted(reports) == ["train", "val"]
    assert capsys.readouterr().out.count(f"2 videos under {videos}") == 2
    data_command.run(data_cmd(videos, "prepare", f"out={tmp_path / 'prepared'}"))
    assert sorted(p.name for p in (tmp_path / "prepared").glob("*.mp4")) == ["a.mp4", "b.mp4", "c.mp4", "short.mp4"]
    assert "re-encoded into" in capsys.readouterr().out


def test_out_names_the_folder_each_tool_writes(videos, tmp_path, capsys):
    data_command.run(data_cmd(videos, "check"))
    assert "cleaned list" not in capsys.readouterr().out and not list(tmp_path.iterdir())
    data_command.run(data_cmd(videos, "check", f"out={tmp_path / 'clean'}"))
    assert (tmp_path / "clean/train_clean.txt").read_text() == "a.mp4 0\nb.mp4 1\n"  # relative to data.root
    assert (tmp_path / "clean/val_clean.txt").read_text() == "c.mp4 0\n"  # short.mp4 left out
    data_command.run(data_cmd(videos, "prepare", f"out={tmp_path / 'small'}", "short_side=16"))
    assert (tmp_path / "small/train.txt").read_text() == "a.mp4 0\nb.mp4 1\n"
    with pytest.raises(Exception, match="needs out=DIR"):
        data_command.run(data_cmd(videos, "prepare"))


@pytest.mark.parametrize("short_side, size", [(16, (20, 16)), (32, (42, 32))])
def test_short_side_sets_the_size_prepare_writes(videos, tmp_path, short_side, size):
    data_command.run(data_cmd(videos, "prepare", f"out={tmp_path}", f"short_side={short_side}", "split=train"))
    with VideoReader(tmp_path / "a.mp4") as reader:
        assert (reader.width, reader.height) == size  # 64x48 scaled, widths rounded to even
        assert reader.num_frames == 24


@pytest.mark.parametrize("gop, expected", [(4, [0, 4, 8, 12, 16, 20]), (8, [0, 8, 16])])
def test_gop_sets_the_keyframe_interval_prepare_writes(videos, tmp_path, gop, expected):
    assert keyframes(videos / "a.mp4") == [0]  # the source: one keyframe in 24 frames
    data_command.run(data_cmd(videos, "prepare", f"out={tmp_path}", "short_side=32", f"gop={gop}", "split=train"))
    assert keyframes(tmp_path / "a.mp4") == expected


def test_crf_sets_the_quality_prepare_writes(videos, tmp_path):
    sizes = {}
    for crf in (10, 45):
        out = tmp_path / f"crf{crf}"
        data_command.run(data_cmd(videos, "prepare", f"out={out}", "short_side=32", f"crf={crf}", "split=train"))
        sizes[crf] = (out / "a.mp4").stat().st_size
    assert sizes[10] > 2 * sizes[45], sizes


class RecordingPool(ThreadPoolExecutor):
    """Stands in for ProcessPoolExecutor: records max_workers, runs the jobs in threads."""

    sizes: list = []

    def __init__(self, max_workers=None, **kwargs):
        RecordingPool.sizes.append(max_workers)
        super().__init__(max_workers=max_workers)


@pytest.mark.parametrize("workers, pools", [(1, []), (3, [3])])
def test_workers_sets_the_processes_of_check_and_prepare(videos, tmp_path, monkeypatch, workers, pools):
    for module in (check_module, video_jobs_module):  # video_jobs: the pool of prepare and extract
        monkeypatch.setattr(module, "ProcessPoolExecutor", RecordingPool)
    RecordingPool.sizes = []
    data_command.run(data_cmd(videos, "check", f"workers={workers}", "split=train"))
    assert RecordingPool.sizes == pools
    data_command.run(data_cmd(videos, "prepare", f"workers={workers}", f"out={tmp_path}", "short_side=16",
                              "split=train"))
    assert RecordingPool.sizes == pools * 2
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("min_frames, short", [(0, 1), (10, 0), (30, 2)])
def test_min_frames_sets_which_videos_check_reports_as_short(videos, capsys, min_frames, short):
    reports = data_command.run(data_cmd(videos, "check", f"min_frames={min_frames}", "split=val"))
    threshold = min_frames or 15  # 0: the clip span, 8 frames every 2nd
    assert len(reports["val"].short) == short and len(reports["val"].good) == 2 - short
    assert f"{2 - short} ok, 0 unreadable, {short} shorter than {threshold} frames" in capsys.readouterr().out


# --------------------------------------------------------------------------- eval and predict

@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """best.pt of the tiny model after one epoch on 8 classes x 2 videos (val: 8 videos)."""
    run = tmp_path_factory.mktemp("option-run")
    Trainer(OmegaConf.to_object(compose("train", *SMALL, "trainer.max_epochs=1")), run_dir=run, seed=0).fit()
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    return run / "best.pt", Path(state["config"]["data"]["root"])


def test_split_chooses_the_videos_eval_and_data_check_read(trained, videos, tmp_path, monkeypatch, capsys):
    ckpt, _ = trained
    monkeypatch.chdir(tmp_path)
    counts = {split: eval_command.run(compose("eval", f"ckpt={ckpt}", f"split={split}"))["num_videos"]
              for split in ("val", "train")}
    assert counts == {"val": 8, "train": 16}
    assert json.loads((tmp_path / "report.json").read_text())["split"] == "train"
    assert sorted(data_command.run(data_cmd(videos, "check", "split=val"))) == ["val"]
    assert sorted(data_command.run(data_cmd(videos, "check", "split=train"))) == ["train"]
    assert sorted(data_command.run(data_cmd(videos, "check", "split=all"))) == ["train", "val"]


@pytest.fixture()
def scored(monkeypatch, tmp_path):
    """Every call of score_views during `action3d eval`: (input shape, video scores, view logits)."""
    calls = []
    score_views = evaluate_module.score_views

    def spy(model, x, average, **kwargs):
        scores, logits = score_views(model, x, average, **kwargs)
        calls.append((tuple(x.shape), scores, logits))
        return scores, logits

    monkeypatch.setattr(evaluate_module, "score_views", spy)
    monkeypatch.chdir(tmp_path)  # the eval run directory (report.json, per_class.csv, confusion.png)
    return calls


@pytest.mark.parametrize("overrides, views", [
    ([], 1), (["eval.num_clips=3"], 3), (["eval.num_crops=3"], 3), (["eval.num_clips=2", "eval.num_crops=10"], 20)])
def test_num_clips_and_num_crops_set_the_views_scored_per_video(trained, scored, capsys, overrides, views):
    ckpt, _ = trained
    report = eval_command.run(compose("eval", f"ckpt={ckpt}", *overrides))
    shapes = [shape for shape, _, _ in scored]
    assert all((shape[1] if len(shape) == 6 else 1) == views for shape in shapes)
    assert all(logits.shape[1] == views for _, _, logits in scored)
    expected = {"num_clips": 1, "num_crops": 1, "average": "prob"}
    for override in overrides:
        key, value = override.split("=")
        expected[key.split(".")[1]] = int(value)
    assert report["views"] == expected
    assert f"{expected['num_clips']} clips x {expected['num_crops']} crops" in capsys.readouterr().out
    if expected["num_clips"] > 1:  # clips from other frames: the views do not all look the same to the model
        second = expected["num_crops"]  # views are clip-major: the first view of the second clip
        assert all(not torch.allclose(logits[:, 0], logits[:, second]) for _, _, logits in scored)
    # (on these square 32-px videos with 32-px crops, the three crops of num_crops=3 coincide)


@pytest.mark.parametrize("average", ["prob", "score"])
def test_average_chooses_what_the_views_average(trained, scored, average):
    ckpt, _ = trained
    report = eval_command.run(compose("eval", f"ckpt={ckpt}", "eval.num_clips=3", f"eval.average={average}"))
    assert report["views"]["average"] == average
    for _, scores, logits in scored:
        if average == "prob":  # mean of the views' softmax: each video's scores sum to 1
            assert torch.allclose(scores, logits.softmax(-1).mean(1))
            assert torch.allclose(scores.sum(-1), torch.ones(len(scores)))
        else:  # mean of the logits
            assert torch.allclose(scores, logits.mean(1))
            assert not torch.allclose(scores.sum(-1), torch.ones(len(scores)))


@pytest.mark.parametrize("batch_size, batches", [(3, [3, 3, 2]), (8, [8])])
def test_eval_batch_size_sets_the_videos_scored_at_once(trained, scored, batch_size, batches):
    ckpt, _ = trained
    report = eval_command.run(compose("eval", f"ckpt={ckpt}", f"eval.batch_size={batch_size}"))
    assert [shape[0] for shape, _, _ in scored] == batches and report["num_videos"] == 8


def val_videos(data_root: Path, count: int) -> list:
    return [data_root / line.split()[0] for line in (data_root / "val.txt").read_text().splitlines()[:count]]


def predict(*overrides: str):
    """`action3d predict OVERRIDES` in this process: (results, stdout lines)."""
    return predict_command.run(compose("predict", *overrides))


@pytest.mark.parametrize("topk", [2, 5])
def test_topk_sets_the_classes_listed_per_video(trained, tmp_path, capsys, topk):
    ckpt, data_root = trained
    video = val_videos(data_root, 1)[0]
    results = predict(f"ckpt={ckpt}", f"video={video}", f"topk={topk}", f"json={tmp_path / 'p.json'}")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(video) and [line.split(".")[0].strip() for line in lines[1:]] == \
        [str(i) for i in range(1, topk + 1)]
    assert len(results[0]["top"]) == topk
    assert len(json.loads((tmp_path / "p.json").read_text())[0]["top"]) == topk


def test_json_writes_the_predictions_to_a_file(trained, tmp_path, monkeypatch, capsys):
    ckpt, data_root = trained
    videos = val_videos(data_root, 2)
    folder = tmp_path / "videos"
    folder.mkdir()
    for v in videos:
        shutil.copy(v, folder / v.name)
    monkeypatch.chdir(tmp_path)
    predict(f"ckpt={ckpt}", f"video={folder}")
    assert not list(tmp_path.rglob("*.json"))
    results = predict(f"ckpt={ckpt}", f"video={folder}", "json=out/pred.json")
    written = json.loads((tmp_path / "out/pred.json").read_text())
    assert [Path(r["video"]).name for r in written] == sorted(v.name for v in videos)
    assert written == [{k: v for k, v in r.items() if k != "scores"} for r in results]
    assert all(len(r["top"]) == 5 and r["top"][0]["prob"] >= r["top"][1]["prob"] for r in written)


def test_video_is_one_file_or_every_video_of_a_folder(trained, tmp_path, capsys):
    ckpt, data_root = trained
    videos = val_videos(data_root, 3)
    (tmp_path / "sub").mkdir()
    for i, v in enumerate(videos):
        shutil.copy(v, tmp_path / ("sub" if i == 2 else "") / f"v{i}.mp4")
    (tmp_path / "notes.txt").write_text("not a video")
    one = predict(f"ckpt={ckpt}", f"video={tmp_path / 'v0.mp4'}")
    every = predict(f"ckpt={ckpt}", f"video={tmp_path}")
    assert [r["video"] for r in one] == [str(tmp_path / "v0.mp4")]
    assert [r["video"] for r in every] == [str(tmp_path / p) for p in ("sub/v2.mp4", "v0.mp4", "v1.mp4")]
    out = capsys.readouterr().out
    assert out.count("  1. ") == 4 and f"{tmp_path / 'sub/v2.mp4'}\n" in out


def biased_checkpoint(ckpt: Path, out: Path, favourite: int) -> Path:
    """The checkpoint with a classifier bias that makes class `favourite` win on any input."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["model"]["cls_head.fc_cls.bias"][favourite] += 100.0
    torch.save(state, out)
    return out


def test_ckpt_chooses_the_model_that_predicts_and_evaluates(trained, tmp_path, monkeypatch, capsys):
    ckpt, data_root = trained
    video = val_videos(data_root, 1)[0]
    classes = (data_root / "classes.txt").read_text().split()
    for favourite in (2, 6):
        path = biased_checkpoint(ckpt, tmp_path / f"class{favourite}.pt", favourite)
        result = predict(f"ckpt={path}", f"video={video}")[0]
        assert result["top"][0]["class"] == classes[favourite]
        assert f"  1. {classes[favourite]}" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    report = eval_command.run(compose("eval", f"ckpt={tmp_path / 'class6.pt'}"))
    assert report["checkpoint"] == str(tmp_path / "class6.pt")
    assert report["metrics"]["top1"] == pytest.approx(1 / 8)  # everything is class 6: one video in 8
