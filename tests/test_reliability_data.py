"""A list-file dataset with 20% broken files, in six ways: training and evaluation complete, each
bad file is named once, and the counts are in the training log and the evaluation report."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from action3d.config import SyntheticConfig
from action3d.data.synthetic import make_synthetic

from conftest import SMALL, run_cli


def write_audio_only(path: Path) -> None:
    """A valid MP4 with one AAC track and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_broken_videos(folder: Path, prefix: str, good_video: Path) -> list:
    """Six files that cannot be decoded, one per way a real dataset breaks; returns their paths."""
    data = good_video.read_bytes()
    paths = {kind: folder / f"{prefix}_{kind}.mp4" for kind in
             ("missing", "zero_bytes", "truncated", "random_bytes", "wrong_extension", "audio_only")}
    paths["zero_bytes"].write_bytes(b"")
    paths["truncated"].write_bytes(data[:len(data) // 3])                        # download cut short
    paths["random_bytes"].write_bytes(np.random.default_rng(0).bytes(len(data)))
    paths["wrong_extension"].write_text("<html><body>404 Not Found</body></html>\n")  # an error page saved as .mp4
    write_audio_only(paths["audio_only"])
    return [str(p) for p in paths.values()]                                    # "missing" is never written


@pytest.fixture(scope="module")
def broken_dataset(tmp_path_factory):
    """24 good videos (8 classes) + 6 broken ones in each of train.txt and val.txt (20% broken)."""
    root = tmp_path_factory.mktemp("broken")
    source = make_synthetic(root / "synthetic", SyntheticConfig(train_per_class=2, val_per_class=1, num_frames=12,
                                                                size=32), progress=False)
    videos = root / "videos"
    videos.mkdir()
    good = []
    for line in (source / "train.txt").read_text().splitlines() + (source / "val.txt").read_text().splitlines():
        relative, label = line.split()
        target = videos / f"clip{len(good):02d}.mp4"
        shutil.copyfile(source / relative, target)
        good.append((str(target), int(label)))
    shutil.copyfile(source / "classes.txt", videos / "classes.txt")
    bad = {split: write_broken_videos(videos, split, Path(good[0][0])) for split in ("train", "val")}
    for split in ("train", "val"):
        samples = good + [(path, i % 8) for i, path in enumerate(bad[split])]
        (videos / f"{split}.txt").write_text("".join(f"{Path(p).name} {label}\n" for p, label in samples))
    return videos, bad


@pytest.mark.slow
def test_training_and_evaluation_survive_and_name_each_broken_file_once(broken_dataset, tmp_path, cache_dir):
    videos, bad = broken_dataset
    small = [o for o in SMALL if not o.startswith(("data.batch_size", "data.num_workers", "data.synthetic"))]
    data = ["data=folder", f"data.root={videos}", f"data.train_list={videos / 'train.txt'}",
            f"data.val_list={videos / 'val.txt'}", "data.batch_size=6", "data.num_workers=2"]
    trained = run_cli(["train", *small, *data, "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir, check=True)
    assert "action3d train finished" in trained.stdout

    log = (tmp_path / "run/train.log").read_text().splitlines()
    for path in bad["train"] + bad["val"]:
        naming = [line for line in log if path in line]
        assert len(naming) == 1, f"{path} named {len(naming)} times:\n" + "\n".join(naming)
    for epoch in (1, 2):
        replaced = [re.search(rf"epoch {epoch}: (\d+) unreadable samples replaced \((\d+) distinct files", line)
                    for line in log]
        counts = [m.groups() for m in replaced if m]
        assert len(counts) == 1 and int(counts[0][0]) >= 6 and counts[0][1] == "6", counts
        assert any(f"epoch {epoch}: val top-1" in line and "(24 videos, 6 unreadable)" in line for line in log)
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["failed_files"] == sorted(bad["train"])

    evaluated = run_cli(["eval", "ckpt=run/last.pt", "hydra.run.dir=eval"], cwd=tmp_path, cache=cache_dir, check=True)
    report = json.loads((tmp_path / "eval/report.json").read_text())
    assert report["num_videos"] == 24 and report["num_failed"] == 6
    assert sorted(item["path"] for item in report["failed_videos"]) == sorted(bad["val"])
    assert all(item["reason"] for item in report["failed_videos"])
    assert "24 scored, 6 unreadable" in evaluated.stdout
    eval_log = (tmp_path / "eval/eval.log").read_text().splitlines()
    for path in bad["val"]:
        assert len([line for line in eval_log if path in line]) == 1, path


@pytest.mark.slow
def test_under_torchrun_every_ranks_unreadable_files_are_named_in_rank0s_log(broken_dataset, tmp_path, cache_dir):
    """Two processes each meet their own share of the broken files; rank 0's train.log names all
    of them once (rank 1 writes no log and names nothing on its stderr)."""
    videos, bad = broken_dataset
    small = [o for o in SMALL if not o.startswith(("data.batch_size", "data.num_workers", "data.synthetic"))]
    data = ["data=folder", f"data.root={videos}", f"data.train_list={videos / 'train.txt'}",
            f"data.val_list={videos / 'val.txt'}", "data.batch_size=3", "data.num_workers=0", "trainer.max_epochs=1"]
    result = run_cli(["train", *small, *data, "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir, torchrun=2,
                     check=True)
    log = (tmp_path / "run/train.log").read_text().splitlines()
    for path in bad["train"] + bad["val"]:
        assert len([line for line in log if path in line]) == 1, path
    assert "skipping unreadable video" not in result.stderr
