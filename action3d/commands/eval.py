"""`action3d eval ckpt=PATH [data overrides] [eval.*]`: the report of a checkpoint on a split.

The model, class names and data config come from the checkpoint; `data.*` overrides given on the
command line go on top (`data=GROUP` takes another dataset whole). Rank 0 writes report.json,
per_class.csv and confusion.png into the run directory and prints the summary.
"""
from __future__ import annotations

from typing import Any, Dict

from action3d.commands import _checkpoint, _hydra
from action3d.config import EvalCommandConfig


def run(cfg: EvalCommandConfig) -> Dict[str, Any]:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.engine import distributed as dist_utils
    from action3d.engine.data import resolve_data
    from action3d.engine.evaluate import evaluate
    from action3d.engine.precision import resolve_precision
    from action3d.engine.report import summary_table, write_report

    env = dist_utils.init_distributed(cfg.trainer.device)
    try:
        trained = _checkpoint.load_trained(cfg.ckpt, env.device, channels_last=cfg.trainer.channels_last)
        data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
        precision, _ = resolve_precision(cfg.trainer.precision, env.device)
        result = evaluate(trained, resolve_data(data_cfg, env), split=cfg.split, env=env,
                          num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops, average=cfg.eval.average,
                          batch_size=cfg.eval.batch_size, precision=precision,
                          channels_last=cfg.trainer.channels_last)
    finally:
        dist_utils.cleanup()
    if result is None:
        return {}
    path = write_report(result.report, result.classes, _hydra.run_dir())
    print(summary_table(result.report))
    print(f"report: {path}", flush=True)
    return result.report
