"""`action3d predict ckpt=PATH video=FILE_OR_FOLDER [topk=5] [json=OUT]`: top classes per video.

An unreadable file gets one line on stderr naming it; the other files still get predictions and
the command exits 1.

With `window=SECONDS [stride=SECONDS]` it scores every window of one long video instead, prints a
timeline of segments (consecutive windows with the same top class), and writes the windows and
segments with `json=OUT` and a per-class probability plot with `timeline=OUT.png`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from action3d.commands import _checkpoint, _hydra
from action3d.config import DataConfig, PredictConfig
from action3d.errors import Action3dError


def run(cfg: PredictConfig) -> list[dict[str, Any]]:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.data.annotation_io import find_videos
    from action3d.engine.distributed import pick_device
    from action3d.engine.precision import resolve_precision
    from action3d.engine.predict import predict
    from action3d.files import atomic_write

    if cfg.window is not None and Path(cfg.video).is_dir():
        raise Action3dError(f"video={cfg.video}: window= scores one long video; give a video file, not a folder")
    device = pick_device(cfg.trainer.device)
    trained = _checkpoint.load_trained(cfg.ckpt, device, channels_last=cfg.trainer.channels_last)
    data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
    precision, _ = resolve_precision(cfg.trainer.precision, device)
    if cfg.window is not None:
        return run_windows(cfg, trained, data_cfg, precision)
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


def print_predictions(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "error" in r:
            print(f"action3d predict: error: {r['video']}: {r['error']}", file=sys.stderr)
            continue
        print(r["video"])
        for rank, item in enumerate(r["top"], 1):
            print(f"  {rank}. {item['class']:<30} {100 * item['prob']:6.2f}%")
    sys.stdout.flush()


def run_windows(cfg: PredictConfig, trained, data_cfg: DataConfig, precision: str) -> dict[str, Any]:
    from action3d.engine.predict import plot_timeline, predict_windows, timeline_json
    from action3d.files import atomic_write

    result = predict_windows(trained, cfg.video, window=cfg.window, stride=cfg.stride, data_cfg=data_cfg,
                             topk=cfg.topk, num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops,
                             average=cfg.eval.average, precision=precision)
    print_timeline(result, views=_checkpoint.views_text(cfg.eval.num_clips, cfg.eval.num_crops))
    if cfg.json:
        atomic_write(cfg.json, json.dumps(timeline_json(result), indent=2) + "\n")
        print(f"json: {cfg.json}")
    if cfg.timeline:
        plot_timeline(result, trained.classes, cfg.timeline)
        print(f"timeline: {cfg.timeline}")
    return result


def print_timeline(result: dict[str, Any], *, views: str) -> None:
    """The merged segments, one line each, with the mean probability of the label over their windows."""
    windows = result["windows"]
    print(f"{result['video']}: {result['duration']:.1f} s, {len(windows)} windows of {result['window']:g} s "
          f"every {result['stride']:g} s ({views} each)")
    for segment in result["segments"]:
        probs = [dict(windows[i]["topk"])[segment.label] for i in segment.windows]
        print(f"  {segment.start:8.2f} - {segment.end:8.2f} s  {segment.label:<24} "
              f"{100 * sum(probs) / len(probs):6.2f}%  ({len(probs)} window{'s' if len(probs) > 1 else ''})")
    sys.stdout.flush()
