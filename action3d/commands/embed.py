"""`action3d embed ckpt=PATH video=FILE_OR_DIR out=DIR [window=S stride=S]`: pooled backbone features.

One `.npy` per video under DIR (its path below the given folder, `.npy` appended; rows: the whole
video, or each window), and `DIR/index.csv` listing every row (path, start, end, file, row).
A video that cannot be read gets one line on stderr naming it; the others are still embedded and
the command exits 1.
"""
from __future__ import annotations

import sys
from pathlib import Path

from action3d.commands import _checkpoint, _hydra
from action3d.config import EmbedConfig


def run(cfg: EmbedConfig):
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.data.annotation_io import find_videos
    from action3d.engine.distributed import pick_device
    from action3d.engine.embed import embed_videos
    from action3d.engine.precision import resolve_precision

    device = pick_device(cfg.trainer.device)
    trained = _checkpoint.load_trained(cfg.ckpt, device, channels_last=cfg.trainer.channels_last)
    data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
    precision, _ = resolve_precision(cfg.trainer.precision, device)
    source = Path(cfg.video)
    videos = find_videos(source, key="video")
    summary = embed_videos(trained, videos, cfg.out, root=source if source.is_dir() else None, data_cfg=data_cfg,
                           window=cfg.window, stride=cfg.stride, num_clips=cfg.eval.num_clips,
                           num_crops=cfg.eval.num_crops, precision=precision)
    per = "video" if cfg.window is None else f"window of {cfg.window:g} s every {cfg.stride or cfg.window:g} s"
    print(f"embedded     {summary.videos} of {len(videos)} videos: {summary.rows} rows of {summary.dim} "
          f"features (one per {per}; {_checkpoint.views_text(cfg.eval.num_clips, cfg.eval.num_crops)} averaged)")
    print(f"index        {summary.index}")
    sys.stdout.flush()
    for error in summary.errors:
        print(f"action3d embed: error: {error}", file=sys.stderr)
    if summary.errors:
        sys.exit(1)
    return summary
