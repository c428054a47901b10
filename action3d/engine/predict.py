"""`action3d predict ckpt=PATH video=PATH`: top-k classes for one video or a folder of videos.

An unreadable file gets one line on stderr naming it; the other files still get predictions
and the command exits 1 when any file failed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import torch
from omegaconf import DictConfig

from action3d.data.dataset import build_dataset
from action3d.engine.data import device_batch
from action3d.engine.distributed import pick_device
from action3d.engine.inference import load_trained_model, score_views
from action3d.errors import Action3dError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg"}


def list_videos(path: Path) -> List[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise Action3dError(f"video={path} is a folder without video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
        return videos
    raise Action3dError(f"video={path} does not exist")


@torch.no_grad()
def predict(cfg: DictConfig) -> List[Dict[str, Any]]:
    device = pick_device(cfg.trainer.device)
    trained = load_trained_model(cfg.ckpt, device)
    data_cfg = trained.config.data
    videos = list_videos(Path(cfg.video))
    dataset = build_dataset(data_cfg, "val", train=False, num_clips=cfg.eval.num_clips,
                            num_crops=cfg.eval.num_crops, samples=[(str(v), -1) for v in videos])
    k = min(cfg.topk, len(trained.classes))
    results = []
    for i, video in enumerate(videos):
        clip, _, _ = dataset[i]
        failures = dataset.drain_failures()
        if failures:
            results.append({"video": str(video), "error": failures[0][1]})
            continue
        x, _ = device_batch((clip.unsqueeze(0), torch.zeros(1, dtype=torch.long)), data_cfg, device, channels_last=False)
        probs, _ = score_views(trained.model, x, "prob")                         # (1, K)
        top = probs[0].topk(k)
        results.append({"video": str(video), "top": [
            {"class": trained.classes[c], "index": int(c), "prob": float(p)} for p, c in zip(top.values, top.indices)]})
    return results


def print_predictions(results: List[Dict[str, Any]]) -> None:
    for r in results:
        if "error" in r:
            print(f"action3d predict: error: {r['video']}: {r['error']}", file=sys.stderr)
            continue
        print(r["video"])
        for rank, item in enumerate(r["top"], 1):
            print(f"  {rank}. {item['class']:<30} {100 * item['prob']:6.2f}%")
    sys.stdout.flush()


def run(cfg: DictConfig) -> List[Dict[str, Any]]:
    results = predict(cfg)
    print_predictions(results)
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(results, indent=2))
    if any("error" in r for r in results):
        sys.exit(1)
    return results
