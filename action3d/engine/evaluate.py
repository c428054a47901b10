"""`action3d eval ckpt=PATH`: multi-view top-1/top-5 report, exact under torchrun.

Each rank scores its own share of the videos (every video exactly once, no padding); rank 0
gathers the per-video scores, sorts them by index and computes every metric from them, so the
result equals a single-process run.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from action3d.data.dataset import build_dataset
from action3d.engine import distributed as dist_utils
from action3d.engine.data import device_batch, resolve_data, shard_loader
from action3d.engine.inference import load_trained_model, score_views
from action3d.engine.precision import autocast
from action3d.engine.report import compute_metrics, write_report

log = logging.getLogger("action3d")


def run(cfg: DictConfig) -> Dict[str, Any]:
    env = dist_utils.init_distributed(cfg.trainer.device)
    try:
        return evaluate(cfg, env, out_dir=Path(_hydra_output_dir()))
    finally:
        dist_utils.cleanup()


def eval_data_config(cfg: DictConfig, trained_data: DictConfig) -> DictConfig:
    """The checkpoint's dataset config, with the data overrides given on the command line on top."""
    overrides = _hydra_task_overrides()
    if any(o.lstrip("+~").startswith("data=") for o in overrides):
        return cfg.data                       # another dataset group was chosen: take it whole
    data = trained_data.copy()
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("data."):
            OmegaConf.update(data, key[len("data."):], OmegaConf.select(cfg, key), merge=False)
    return data


def evaluate(cfg: DictConfig, env: dist_utils.DistEnv, *, out_dir: Path) -> Dict[str, Any]:
    trained = load_trained_model(cfg.ckpt, env.device, channels_last=cfg.trainer.channels_last)
    data_cfg = resolve_data(eval_data_config(cfg, trained.config.data), env)
    dataset = build_dataset(data_cfg, cfg.split, train=False, num_clips=cfg.eval.num_clips,
                            num_crops=cfg.eval.num_crops)
    if list(dataset.classes) != trained.classes:
        log.warning("the dataset's class list differs from the checkpoint's; labels are read by index")

    start = time.perf_counter()
    rows = _score_shard(trained.model, dataset, data_cfg, cfg, env)
    failures = dataset.drain_failures()
    gathered = dist_utils.all_gather_objects((rows, failures))
    seconds = time.perf_counter() - start
    if not env.is_main:
        return {}
    rows = sorted((r for part, _ in gathered for r in part), key=lambda r: r["index"])
    failed = _failed_videos(rows, [f for _, part in gathered for f in part], dataset)
    metrics = compute_metrics(rows, num_classes=len(trained.classes))
    report = {
        "checkpoint": str(cfg.ckpt),
        "split": cfg.split,
        "metrics": metrics,
        "num_videos": len([r for r in rows if r["label"] >= 0]),
        "num_failed": len(failed),
        "failed_videos": failed,
        "views": {"num_clips": cfg.eval.num_clips, "num_crops": cfg.eval.num_crops, "average": cfg.eval.average},
        "throughput_videos_per_s": len(rows) / seconds if seconds > 0 else None,
        "processes": env.world_size,
        "config": {"model": OmegaConf.to_container(trained.config.model),
                   "data": OmegaConf.to_container(data_cfg), "eval": OmegaConf.to_container(cfg.eval)},
    }
    write_report(report, rows, trained.classes, out_dir)
    return report


@torch.no_grad()
def _score_shard(model, dataset, data_cfg, cfg, env) -> List[Dict[str, Any]]:
    loader = shard_loader(dataset, data_cfg, env, batch_size=cfg.eval.batch_size)
    rows: List[Dict[str, Any]] = []
    bar = tqdm(total=len(loader.sampler), unit="video", desc="eval", disable=not env.is_main,
               dynamic_ncols=True, mininterval=1.0)
    for batch in loader:
        x, labels = device_batch(batch, data_cfg, env.device, channels_last=False)
        indices = batch[2].tolist()
        ok = labels >= 0
        if ok.any():
            with autocast(cfg.trainer.precision, env.device):
                scores, view_logits = score_views(model, x[ok], cfg.eval.average)
            view_preds = view_logits.argmax(dim=-1)                                    # (n, V)
        for j, (index, label) in enumerate(zip(indices, labels.tolist())):
            if label < 0:
                rows.append({"index": index, "label": -1})
                continue
            k = int(ok[:j].sum())
            rows.append({"index": index, "label": label, "scores": scores[k].cpu(),
                         "view_hits": int((view_preds[k] == label).sum()), "views": view_preds.shape[1]})
        bar.update(len(indices))
    bar.close()
    return rows


def _failed_videos(rows, failures, dataset) -> List[Dict[str, str]]:
    reasons = {path: reason for path, reason in failures}
    out = []
    for r in rows:
        if r["label"] < 0:
            path = str(dataset.samples[r["index"]][0])
            out.append({"path": path, "reason": reasons.get(path, "could not be decoded")})
    return out


def _hydra_output_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else "."


def _hydra_task_overrides() -> List[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
