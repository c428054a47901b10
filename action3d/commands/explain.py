"""`action3d explain ckpt=PATH video=PATH out=OUT.mp4 [class_name=NAME]`: where the model looks.

Writes the video with a Grad-CAM heat map of the video's top class (as `predict` scores it with
`eval.num_clips` x `eval.num_crops` views), or of `class_name`, over every frame, and prints the
layer it used (`action3d.engine.explain`).
"""
from __future__ import annotations

from pathlib import Path

from action3d.commands import _checkpoint, _hydra
from action3d.config import ExplainConfig
from action3d.errors import Action3dError


def run(cfg: ExplainConfig):
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.engine.distributed import pick_device
    from action3d.engine.explain import choose_target, explain_video
    from action3d.engine.precision import resolve_precision

    if Path(cfg.video).is_dir():
        raise Action3dError(f"video={cfg.video}: explain writes one video; give a video file, not a folder")
    device = pick_device(cfg.trainer.device)
    trained = _checkpoint.load_trained(cfg.ckpt, device, channels_last=cfg.trainer.channels_last)
    data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
    precision, _ = resolve_precision(cfg.trainer.precision, device)
    target, prob = choose_target(trained, cfg.video, class_name=cfg.class_name, data_cfg=data_cfg,
                                 num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops,
                                 average=cfg.eval.average, precision=precision)
    result = explain_video(trained, cfg.video, cfg.out, target=target, data_cfg=data_cfg, precision=precision)
    why = "class_name" if cfg.class_name is not None else "top class"
    print(f"class        {result.class_name} ({why}; probability {100 * prob:.2f}%)")
    print(f"layer        {' + '.join(result.layers)} (Grad-CAM; grid {result.grid[0]}x{result.grid[1]} "
          f"at short side {data_cfg.short_side})")
    print(f"video        {result.out} ({result.frames} frames)")
    return result
