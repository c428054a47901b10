"""evaluate(): multi-view top-1/top-5 (mAP under data.multi_label) of a trained model over a
dataset split, exact under torchrun.

Each rank scores its own share of the videos (every video exactly once, no padding); rank 0
gathers the per-video scores, sorts them by index and computes every metric from them, so the
result equals a single-process run.

    trained = load_trained("best.pt", torch.device("cpu"))   # action3d.commands._checkpoint
    result = evaluate(trained, resolve_data(trained.config.data), num_clips=3, num_crops=3)
    result.report["metrics"]["top1"]
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from tqdm import tqdm

from action3d.config import DataConfig
from action3d.data.dataset import build_dataset
from action3d.engine import distributed as dist_utils
from action3d.engine.data import device_batch, shard_loader, shared_index
from action3d.engine.inference import TrainedModel, score_views
from action3d.engine.precision import autocast
from action3d.engine.report import compute_metrics, compute_multilabel_metrics
from action3d.errors import Action3dError

log = logging.getLogger("action3d")


@dataclass
class EvalResult:
    report: Dict[str, Any]                                  # metrics and run facts (report.json)
    rows: List[Dict[str, Any]] = field(default_factory=list)  # per video: index, label, scores
    classes: List[str] = field(default_factory=list)


def evaluate(trained: TrainedModel, data_cfg: DataConfig, *, split: str = "val", num_clips: int = 1,
             num_crops: int = 1, average: str = "prob", batch_size: int = 4, precision: str = "32",
             channels_last: bool = True, env: Optional[dist_utils.DistEnv] = None,
             progress: bool = True) -> Optional[EvalResult]:
    """Score every video of `split` of the resolved `data_cfg` (see `engine.data.resolve_data`).

    Returns the result on rank 0 and None on the other ranks (they only contribute scores).
    precision: a resolved precision (32 | bf16 | 16) for autocast. channels_last: the layout the
    views run in (as the model was loaded).
    """
    env = env or dist_utils.DistEnv.single(next(trained.model.parameters()).device)
    dataset = build_dataset(data_cfg, split, train=False, num_clips=num_clips, num_crops=num_crops,
                            **shared_index(data_cfg, split, env))  # resolved by rank 0 only
    if list(dataset.classes) != trained.classes:
        log.warning("the dataset's class list differs from the checkpoint's; labels are read by index")
    multi_label = trained.config.data.multi_label  # the model's outputs: a sigmoid per class
    if data_cfg.multi_label != multi_label:
        raise Action3dError(f"data.multi_label={data_cfg.multi_label} but ckpt={trained.path} was trained with "
                            f"data.multi_label={multi_label}")
    start = time.perf_counter()
    rows = _score_shard(trained.model, dataset, data_cfg, env, batch_size=batch_size, average=average,
                        precision=precision, channels_last=channels_last, progress=progress, multi_label=multi_label)
    failures = dataset.drain_failures()
    gathered = dist_utils.all_gather_objects((rows, failures))
    seconds = time.perf_counter() - start
    if not env.is_main:
        return None
    rows = sorted((r for part, _ in gathered for r in part), key=lambda r: r["index"])
    failed = _failed_videos(rows, [f for _, part in gathered for f in part], dataset)
    metrics = (compute_multilabel_metrics(rows, num_classes=len(trained.classes)) if multi_label
               else compute_metrics(rows, num_classes=len(trained.classes)))
    report = {
        "checkpoint": trained.path,
        "split": split,
        "multi_label": multi_label,
        "metrics": metrics,
        "num_videos": len([r for r in rows if scored(r)]),
        "num_failed": len(failed),
        "failed_videos": failed,
        "views": {"num_clips": num_clips, "num_crops": num_crops, "average": average},
        "throughput_videos_per_s": len(rows) / seconds if seconds > 0 else None,
        "processes": env.world_size,
        "precision": precision,
        "config": {"model": dataclasses.asdict(trained.config.model), "data": dataclasses.asdict(data_cfg)},
    }
    return EvalResult(report=report, rows=rows, classes=trained.classes)


@torch.no_grad()
def _score_shard(model, dataset, data_cfg, env, *, batch_size: int, average: str, precision: str,
                 channels_last: bool, progress: bool, multi_label: bool = False) -> List[Dict[str, Any]]:
    loader = shard_loader(dataset, data_cfg, env, batch_size=batch_size)
    rows: List[Dict[str, Any]] = []
    bar = tqdm(total=len(loader.sampler), unit="video", desc="eval", disable=not (env.is_main and progress),
               dynamic_ncols=True, mininterval=1.0)
    for batch in loader:
        x, labels = device_batch(batch, data_cfg, env.device, channels_last=False)
        indices = batch[2].tolist()
        ok = (labels >= 0).all(dim=1) if multi_label else labels >= 0  # unreadable: -1, or a row of -1
        if ok.any():
            with autocast(precision, env.device):
                scores, view_logits = score_views(model, x[ok], average, channels_last=channels_last,
                                                  multi_label=multi_label)
            view_preds = view_logits.argmax(dim=-1)                                    # (n, V)
        if multi_label:  # label: the multi-hot row as ints; scores: probabilities (prob) or logits (score)
            for j, index in enumerate(indices):
                k = int(ok[:j].sum())
                rows.append({"index": index, "label": [int(v) for v in labels[j].tolist()], "scores": scores[k].cpu()}
                            if ok[j] else {"index": index, "label": -1})
            bar.update(len(indices))
            continue
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


def scored(row: Dict[str, Any]) -> bool:
    """A row with scores: its label is a class index >= 0 or a multi-hot list (-1: unreadable)."""
    return isinstance(row["label"], list) or row["label"] >= 0


def _failed_videos(rows, failures, dataset) -> List[Dict[str, str]]:
    reasons = {path: reason for path, reason in failures}
    out = []
    for r in rows:
        if not scored(r):
            path = str(dataset.samples[r["index"]][0])
            out.append({"path": path, "reason": reasons.get(path, "could not be decoded")})
    return out
