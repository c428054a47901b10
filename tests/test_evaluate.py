"""`action3d eval` and `action3d predict` on a checkpoint trained on the synthetic dataset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from action3d.engine.inference import score_views

from conftest import SMALL, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ViewCounter(nn.Module):
    """Logits that reveal which view produced them: (mean pixel, 0, 1)."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, torch.zeros_like(m), torch.ones_like(m)], dim=1)


def test_multi_view_shapes_and_both_averaging_modes():
    x = torch.arange(2 * 3, dtype=torch.float32).view(2, 3, 1, 1, 1, 1).expand(2, 3, 3, 2, 4, 4).clone()
    probs, logits = score_views(ViewCounter(), x, "prob")                 # (N=2, V=3, C, T, H, W)
    assert probs.shape == (2, 3) and logits.shape == (2, 3, 3)
    assert torch.allclose(probs, logits.softmax(-1).mean(1))
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    scores, _ = score_views(ViewCounter(), x, "score")
    assert torch.allclose(scores[:, 0], torch.tensor([1.0, 4.0]))        # mean over views 0,1,2 and 3,4,5
    single, _ = score_views(ViewCounter(), x[:, 0], "score")              # (N, C, T, H, W): one view
    assert torch.allclose(single[:, 0], torch.tensor([0.0, 3.0]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """A small model trained for a few epochs; its run folder and the synthetic val list."""
    root = tmp_path_factory.mktemp("trained")
    run_cli(["train", *SMALL, "trainer.max_epochs=3", "hydra.run.dir=run"], cwd=root, cache=cache_dir, check=True)
    state = torch.load(root / "run/best.pt", map_location="cpu", weights_only=True)
    data = state["config"]["data"]
    return root, Path(data["root"]), Path(data["val_list"])


def _eval(root: Path, cache: Path, *extra: str, torchrun=None, out="eval") -> dict:
    run_cli(["eval", "ckpt=run/best.pt", f"hydra.run.dir={out}", *extra], cwd=root, cache=cache, check=True,
            torchrun=torchrun)
    return json.loads((root / out / "report.json").read_text())


def test_eval_writes_report_per_class_csv_and_confusion_png(trained, cache_dir):
    root, _, _ = trained
    report = _eval(root, cache_dir, "eval.num_clips=2", "eval.num_crops=3")
    assert report["num_videos"] == 8 and report["num_failed"] == 0
    assert report["views"] == {"num_clips": 2, "num_crops": 3, "average": "prob"}
    m = report["metrics"]
    for key in ("top1", "top5", "clip_top1", "mean_class_accuracy"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["top5"] >= m["top1"]
    assert len(m["confusion"]) == 8 and sum(map(sum, m["confusion"])) == 8
    lines = (root / "eval/per_class.csv").read_text().splitlines()
    assert lines[0] == "class_index,class_name,videos,accuracy" and len(lines) == 9
    assert (root / "eval/confusion.png").read_bytes()[:8] == PNG_MAGIC
    assert report["checkpoint"] == "run/best.pt" and report["throughput_videos_per_s"] > 0


def test_unreadable_video_is_listed_and_excluded(trained, cache_dir):
    root, data_root, val_list = trained
    bad = data_root / "broken_for_eval_test.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    listing = root / "val_with_bad.txt"
    listing.write_text(val_list.read_text() + f"{bad.name} 3\n")
    report = _eval(root, cache_dir, f"data.val_list={listing}", out="eval_bad")
    assert report["num_videos"] == 8 and report["num_failed"] == 1
    assert report["failed_videos"][0]["path"].endswith("broken_for_eval_test.mp4")
    bad.unlink()


@pytest.mark.slow
def test_two_process_eval_over_an_odd_number_of_videos_equals_one_process(trained, cache_dir):
    root, _, val_list = trained
    odd = root / "val_odd.txt"
    odd.write_text("".join(val_list.read_text().splitlines(keepends=True)[:7]))
    single = _eval(root, cache_dir, f"data.val_list={odd}", "eval.num_clips=2", out="eval1")
    double = _eval(root, cache_dir, f"data.val_list={odd}", "eval.num_clips=2", torchrun=2, out="eval2")
    assert single["num_videos"] == double["num_videos"] == 7, "every video counted exactly once"
    assert double["processes"] == 2
    for key in ("top1", "top5", "clip_top1", "mean_class_accuracy"):
        assert single["metrics"][key] == pytest.approx(double["metrics"][key]), key
    assert single["metrics"]["confusion"] == double["metrics"]["confusion"]


def test_predict_prints_top5_and_writes_json_and_names_a_bad_file(trained, cache_dir):
    root, data_root, val_list = trained
    first = val_list.read_text().split()[0]
    result = run_cli(["predict", "ckpt=run/best.pt", f"video={data_root / first}", "json=pred.json"], cwd=root,
                     cache=cache_dir, check=True)
    predictions = json.loads((root / "pred.json").read_text())
    assert len(predictions) == 1 and len(predictions[0]["top"]) == 5
    assert sum(p["prob"] for p in predictions[0]["top"]) <= 1.0 + 1e-6
    assert first.split("/")[-1] in result.stdout and "1. " in result.stdout
    missing = run_cli(["predict", "ckpt=run/best.pt", "video=nope.mp4"], cwd=root, cache=cache_dir)
    assert missing.returncode != 0
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("action3d predict: error: video=nope.mp4"), lines


def test_predict_on_a_folder_keeps_going_past_an_undecodable_file(trained, cache_dir):
    import shutil

    root, data_root, val_list = trained
    folder = root / "videos"
    folder.mkdir()
    for rel in [line.split()[0] for line in val_list.read_text().splitlines()[:2]]:
        shutil.copy(data_root / rel, folder / Path(rel).name)
    (folder / "zz_broken.mp4").write_bytes(b"\x00" * 100)
    result = run_cli(["predict", "ckpt=run/best.pt", f"video={folder}"], cwd=root, cache=cache_dir)
    assert result.returncode == 1
    assert result.stdout.count("1. ") == 2, result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "zz_broken.mp4" in errors[0] and errors[0].startswith("action3d predict: error:")


@pytest.mark.slow
def test_predict_names_the_true_class_first_after_training(tmp_path, cache_dir):
    """A tiny model trained on 4 motion classes of the synthetic set (the session's shared
    checkpoint), then `predict` on the held-out videos: the true class (the video's folder) first."""
    from deploy_support import trained_checkpoint

    ckpt = trained_checkpoint(cache_dir)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    val_root = Path(state["config"]["data"]["root"]) / "val"
    run_cli(["predict", f"ckpt={ckpt}", f"video={val_root}", "json=pred.json"], cwd=tmp_path,
            cache=cache_dir, check=True)
    predictions = json.loads((tmp_path / "pred.json").read_text())
    assert len(predictions) == 24
    first = [(Path(p["video"]).parent.name, p["top"][0]["class"]) for p in predictions]
    right = sum(truth == guess for truth, guess in first)
    assert right >= 18, first        # >= 75% of the held-out videos; chance is 25%
