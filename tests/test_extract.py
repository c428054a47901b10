"""`action3d data extract`: videos -> mmaction2 frame folders and lists that train directly.

The tiny synthetic set (2 classes x 2 training videos, 1 validation video each, 8 frames of 32 px)
is extracted once per module, in this process, as the command line runs it (`options_compose`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from options_compose import compose
from synthetic_subsets import single_thread, synthetic_root  # noqa: F401  (single_thread: autouse, one torch thread)
from torchvision.io import ImageReadMode, decode_jpeg

from action3d.commands import data as data_command
from action3d.commands._hydra import compose_config
from action3d.data import extract as extract_module
from action3d.data.decode import VideoReader
from action3d.data.extract import FAILURES_FILE, RECORD_FILE
from action3d.data.video_writer import write_video
from action3d.engine.train import Trainer
from action3d.errors import Action3dError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

TINY = ["data.synthetic.num_classes=2", "data.synthetic.train_per_class=2", "data.synthetic.val_per_class=1",
        "data.synthetic.num_frames=8", "data.synthetic.size=32"]


@pytest.fixture(autouse=True)
def own_cache(cache_dir):
    return cache_dir


def extract(out: Path, *extra: str) -> Path:
    return data_command.run(compose("data", "action=extract", f"out={out}", "workers=1", *TINY, *extra))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, cache_dir):
    return extract(tmp_path_factory.mktemp("extracted") / "frames")


def jpeg(path: Path) -> torch.Tensor:
    return decode_jpeg(torch.from_numpy(np.fromfile(path, np.uint8)), mode=ImageReadMode.RGB)


def test_extract_writes_mmaction2_folders_lists_and_classes(extracted, capsys):
    lines = (extracted / "train.txt").read_text().splitlines()
    assert lines == ["train/move_right/move_right_0000 8 0", "train/move_right/move_right_0001 8 0",
                     "train/move_left/move_left_0000 8 1", "train/move_left/move_left_0001 8 1"]
    assert (extracted / "val.txt").read_text().splitlines() == ["val/move_right/move_right_0000 8 0",
                                                                "val/move_left/move_left_0000 8 1"]
    assert (extracted / "classes.txt").read_text().split() == ["move_right", "move_left"]
    folder = extracted / "train" / "move_left" / "move_left_0001"
    assert sorted(p.name for p in folder.iterdir()) == [f"img_{i:05}.jpg" for i in range(1, 9)]
    assert json.loads((extracted / RECORD_FILE).read_text())["quality"] == 95
    assert not list(extracted.rglob(".*.part")) and not (extracted / FAILURES_FILE).exists()


def test_the_frames_are_the_videos_frames(extracted, cache_dir):
    source = synthetic_root(TINY) / "train" / "move_left" / "move_left_0001.mp4"
    with VideoReader(source) as reader:
        video = reader.read(range(8))                                          # (C, T, H, W)
    written = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in extract_module.video_frames(str(source))], 1)
    assert torch.equal(written, video)                                         # what is encoded: the reader's frames
    folder = extracted / "train" / "move_left" / "move_left_0001"
    frames = torch.stack([jpeg(folder / f"img_{i:05}.jpg") for i in range(1, 9)], dim=1).float()
    error = (frames[:, :, None] - video.float()[:, None]).abs().mean(dim=(0, 3, 4))   # (JPEG i, video frame j)
    assert error.argmin(dim=1).tolist() == list(range(8)) and error.diagonal().max() < 8, error


def test_training_runs_from_the_extracted_folders(extracted, tmp_path):
    cfg = compose("train", "data.format=rawframes", f"data.root={extracted}", f"data.train_list={extracted}/train.txt",
                  f"data.val_list={extracted}/val.txt", f"data.classes_file={extracted}/classes.txt",
                  "data.clip_len=4", "data.short_side=32", "data.crop_size=32", "data.batch_size=2",
                  "data.num_workers=0", "model.base_channels=8", "trainer.max_epochs=1", "trainer.precision=32",
                  "trainer.precise_bn_batches=0")
    summary = Trainer(OmegaConf.to_object(cfg), run_dir=tmp_path / "run", seed=0).fit()
    assert summary["status"] == "finished" and (tmp_path / "run" / "best.pt").is_file()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/top1" in row for row in metrics)                           # validated on the val folders


def test_short_side_and_quality_set_what_is_written(extracted, tmp_path):
    small = extract(tmp_path / "small", "short_side=16", "quality=30", "split=val")
    assert (small / "val.txt").read_text() == (extracted / "val.txt").read_text() and not (small / "train").exists()
    name = "val/move_right/move_right_0000/img_00004.jpg"
    assert jpeg(small / name).shape == (3, 16, 16) and jpeg(extracted / name).shape == (3, 32, 32)
    big = extract(tmp_path / "big", "short_side=64", "split=val")              # up as well as down
    assert jpeg(big / name).shape == (3, 64, 64)
    lower = extract(tmp_path / "lower", "quality=30", "split=val")
    assert (lower / name).stat().st_size < (extracted / name).stat().st_size


def test_a_second_run_resumes_and_never_takes_a_partial_folder(extracted, tmp_path, monkeypatch):
    out = extract(tmp_path / "again", "split=val")
    done = out / "val" / "move_right" / "move_right_0000"
    finished = done.stat().st_mtime_ns
    unfinished = out / "val" / "move_left" / "move_left_0000"
    for path in unfinished.iterdir():
        path.unlink()
    unfinished.rmdir()
    stale = unfinished.parent / ".move_left_0000.part"                           # a killed run's half folder
    stale.mkdir()
    (stale / "img_00001.jpg").write_bytes(b"half")
    calls = []
    original = extract_module.extract_video
    monkeypatch.setattr(extract_module, "extract_video", lambda src, dst, **kw: calls.append(dst) or
                        original(src, dst, **kw))
    extract(out, "split=val")
    assert calls == [str(unfinished)] and done.stat().st_mtime_ns == finished
    assert len(list(unfinished.iterdir())) == 8 and not stale.exists()
    assert (out / "val.txt").read_text() == (extracted / "val.txt").read_text()


def test_other_settings_or_a_foreign_folder_are_refused_in_one_line(extracted, tmp_path):
    with pytest.raises(Action3dError, match=r"holds frames extracted with quality=95 \(this run: quality=80\)"):
        extract(extracted, "quality=80")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("")
    with pytest.raises(Action3dError, match=r"is not empty and holds no extract.json"):
        extract(tmp_path / "mine")
    with pytest.raises(Action3dError, match=r"^quality=0 is not allowed"):
        compose_config("data", ["action=extract", "out=o", "quality=0"])
    with pytest.raises(Action3dError, match=r"^gop does not apply here: data extract does not read it"):
        compose_config("data", ["action=extract", "out=o", "gop=8"])
    with pytest.raises(Action3dError, match=r"^out: data extract needs out=DIR"):
        compose_config("data", ["action=extract"])


def test_frame_folders_are_refused_as_a_source(extracted):
    for action in ("extract", "check", "prepare", "pack"):
        with pytest.raises(Action3dError, match=rf"^data {action} reads video files and data.format=rawframes holds "):
            data_command.run(compose("data", f"action={action}", "out=o", "data.format=rawframes",
                                     f"data.train_list={extracted}/train.txt"))


def test_a_broken_video_is_listed_and_left_out(tmp_path):
    root = tmp_path / "videos"
    (root / "walk").mkdir(parents=True)
    write_video(root / "walk" / "good.mp4", np.full((6, 32, 48, 3), 90, np.uint8), fps=30)
    (root / "walk" / "bad.mp4").write_bytes(b"not a video at all")
    (root / "train.txt").write_text("walk/good.mp4 0\nwalk/bad.mp4 0\n")
    out = data_command.run(compose("data", "action=extract", "data=folder", f"data.root={root}",
                                   f"data.train_list={root / 'train.txt'}", "data.val_list=null",
                                   f"out={tmp_path / 'frames'}", "workers=2"))
    assert (out / "train.txt").read_text() == "walk/good 6 0\n" and not (out / "walk" / "bad").exists()
    assert "bad.mp4" in (out / FAILURES_FILE).read_text()
    assert jpeg(out / "walk" / "good" / "img_00006.jpg").shape == (3, 32, 48)
