"""`action3d train [overrides]`: train on a dataset, print the end-of-run line.

Under torchrun every rank runs this; rank 0's Hydra run directory is broadcast so that all ranks
share it (the other ranks were given a scratch directory that stays empty).
"""
from __future__ import annotations

from action3d.commands import _hydra
from action3d.commands._sweep import objective
from action3d.config import TrainConfig


def run(cfg: TrainConfig) -> float:
    """Train; returns the best value of trainer.monitor (what a sweeper optimises; without one, the
    value that ranks the job last)."""
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.engine import distributed as dist_utils
    from action3d.engine.signals import StopRequest
    from action3d.engine.train import Trainer

    env = dist_utils.init_distributed(cfg.trainer.device)
    stop = StopRequest().install()
    try:
        run_dir = dist_utils.broadcast_object(str(_hydra.run_dir()) if env.is_main else None)
        trainer = Trainer(cfg, run_dir=run_dir, seed=cfg.trainer.seed, env=env, stop=stop,
                          overrides=_hydra.task_overrides())
        summary = trainer.fit()
    finally:
        stop.uninstall()
        dist_utils.cleanup()
    if env.is_main:
        print(f"action3d train {summary['status']}: best val {_best(summary)} (epoch {summary['best_epoch']}), "
              f"checkpoint {summary['checkpoint']}"
              + (f"; {summary.get('stop_reason')}" if summary["status"] == "early_stopped" else ""), flush=True)
    return objective(summary)


def _best(summary) -> str:
    """`top-1 61.25%`, `mAP 43.10%`, `loss 0.8123` (n/a without validation)."""
    value, monitor = summary.get("best_value", summary.get("best_top1")), summary.get("monitor", "top1")
    label = {"top1": "top-1", "map": "mAP"}.get(monitor, monitor)
    if value is None:
        return f"{label} n/a"
    return f"{label} {value:.4f}" if monitor == "loss" else f"{label} {100 * value:.2f}%"
