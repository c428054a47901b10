"""`action3d predict ckpt=PATH video=FILE_OR_FOLDER [topk=5] [json=OUT]`: top classes per video.

An unreadable file gets one line on stderr naming it; the other files still get predictions and
the command exits 1.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from omegaconf import DictConfig

from action3d.commands import _hydra


def run(cfg: DictConfig) -> List[Dict[str, Any]]:
    from action3d.data.annotations import find_videos
    from action3d.engine.distributed import pick_device
    from action3d.engine.inference import load_trained_model
    from action3d.engine.precision import resolve_precision
    from action3d.engine.predict import predict
    from action3d.files import atomic_write

    device = pick_device(cfg.trainer.device)
    trained = load_trained_model(cfg.ckpt, device, channels_last=cfg.trainer.channels_last)
    data_cfg = _hydra.merge_data_overrides(trained.config.data, cfg.data, _hydra.task_overrides())
    precision, _ = resolve_precision(cfg.trainer.precision, device)
    videos = find_videos(Path(cfg.video), key="video")
    results = predict(trained, [str(v) for v in videos], data_cfg=data_cfg, topk=cfg.topk,
                      num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops, average=cfg.eval.average,
                      precision=precision)
    print_predictions(results)
    if cfg.json:
        atomic_write(cfg.json, json.dumps([{k: v for k, v in r.items() if k != "scores"} for r in results],
                                          indent=2))
    if any("error" in r for r in results):
        sys.exit(1)
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
