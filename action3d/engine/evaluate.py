"""evaluate(): multi-view top-1/top-5 (mAP under data.multi_label) of a trained model over a
dataset split, exact under torchrun.

Each rank scores its own share of the videos (every video exactly once, no padding); rank 0
gathers the per-video scores, sorts them by index and computes every metric from them, so the
result equals a single-process run.

    trained = load_trained("best.pt", torch.device("cpu"))   # action3d.commands._checkpoint
    result = evaluate(trained, resolve_data(trained.config.data), num_clips=3, num_crops=3)
    result.report["metrics"]["top1"]

`protocol` places the views as a zoo's test code does (eval.protocol); a video it has no view of
(torchvision's: no full window) is excluded and listed apart from the unreadable ones. `label_map`
maps the dataset's labels onto the model's outputs (a zoo's head, matched by class name).
`result.dump()` gives the per-video arrays of `eval.dump`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from action3d.config import DataConfig
from action3d.data.dataset import EXCLUDED, build_dataset
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
    videos: List[str] = field(default_factory=list)         # per scored row: its path (relative to data.root)

    def dump(self) -> Dict[str, np.ndarray]:
        """`eval.dump`'s arrays, one row per scored video: `videos` (unicode), `labels` (the
        model's class indices), `scores` (N, K) as averaged (probabilities or logits)."""
        rows = [r for r in self.rows if "scores" in r]
        scores = (torch.stack([r["scores"] for r in rows]).float().numpy() if rows
                  else np.zeros((0, len(self.classes)), dtype=np.float32))
        labels = np.array([r["label"] for r in rows], dtype=np.int64)   # (N,), or (N, K) multi-hot
        if not rows and self.report.get("multi_label"):
            labels = np.zeros((0, len(self.classes)), dtype=np.int64)
        return {"videos": np.array(self.videos, dtype=np.str_), "labels": labels, "scores": scores}


def evaluate(trained: TrainedModel, data_cfg: DataConfig, *, split: str = "val", num_clips: int = 1,
             num_crops: int = 1, average: str = "prob", batch_size: int = 4, precision: str = "32",
             channels_last: bool = True, env: Optional[dist_utils.DistEnv] = None,
             progress: bool = True, protocol: str = "action3d",
             label_map: Optional[Sequence[int]] = None) -> Optional[EvalResult]:
    """Score every video of `split` of the resolved `data_cfg` (see `engine.data.resolve_data`).

    Returns the result on rank 0 and None on the other ranks (they only contribute scores).
    precision: a resolved precision (32 | bf16 | 16) for autocast. channels_last: the layout the
    views run in (as the model was loaded).
    """
    env = env or dist_utils.DistEnv.single(next(trained.model.parameters()).device)
    multi_label = trained.config.data.multi_label  # the model's outputs: a sigmoid per class
    if data_cfg.multi_label != multi_label:
        raise Action3dError(f"data.multi_label={data_cfg.multi_label} but ckpt={trained.path} was trained with "
                            f"data.multi_label={multi_label}")
    if multi_label and label_map is not None:
        raise Action3dError(f"data.multi_label=true: ckpt={trained.path} is a zoo model with a softmax head over its "
                            "own classes; multi-label evaluation needs a model trained with data.multi_label=true")
    dataset = build_dataset(data_cfg, split, train=False, num_clips=num_clips, num_crops=num_crops,
                            protocol=protocol, **shared_index(data_cfg, split, env))  # resolved by rank 0 only
    if label_map is None and list(dataset.classes) != trained.classes:
        log.warning("the dataset's class list differs from the checkpoint's; labels are read by index")
    start = time.perf_counter()
    rows = _score_shard(trained.model, dataset, data_cfg, env, batch_size=batch_size, average=average,
                        precision=precision, channels_last=channels_last, progress=progress, label_map=label_map,
                        multi_label=multi_label)
    failures = dataset.drain_failures()
    gathered = dist_utils.all_gather_objects((rows, failures))
    seconds = time.perf_counter() - start
    if not env.is_main:
        return None
    rows = sorted((r for part, _ in gathered for r in part), key=lambda r: r["index"])
    failed = _failed_videos(rows, [f for _, part in gathered for f in part], dataset)
    excluded = [item for item in failed if item["reason"].startswith(EXCLUDED)]
    failed = [item for item in failed if not item["reason"].startswith(EXCLUDED)]
    metrics = (compute_multilabel_metrics(rows, num_classes=len(trained.classes)) if multi_label
               else compute_metrics(rows, num_classes=len(trained.classes)))
    report = {
        "multi_label": multi_label,
        "checkpoint": trained.path,
        "split": split,
        "metrics": metrics,
        "num_videos": len([r for r in rows if is_scored(r)]),
        "num_failed": len(failed),
        "failed_videos": failed,
        "num_excluded": len(excluded),
        "excluded_videos": [{"path": i["path"], "reason": i["reason"][len(EXCLUDED):]} for i in excluded],
        "views": {"num_clips": num_clips, "num_crops": num_crops, "average": average},
        "protocol": protocol,
        "throughput_videos_per_s": len(rows) / seconds if seconds > 0 else None,
        "processes": env.world_size,
        "precision": precision,
        "config": {"model": dataclasses.asdict(trained.config.model), "data": dataclasses.asdict(data_cfg)},
    }
    videos = [listed_path(dataset.samples[r["index"]][0], data_cfg.root) for r in rows if "scores" in r]
    return EvalResult(report=report, rows=rows, classes=trained.classes, videos=videos)


def listed_path(path: str, root: Optional[str]) -> str:
    """A video's path as a list names it: relative to data.root when under it, else as resolved."""
    if root:
        try:
            return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(root)))
        except ValueError:
            pass
    return str(path)


@torch.no_grad()
def _score_shard(model, dataset, data_cfg, env, *, batch_size: int, average: str, precision: str,
                 channels_last: bool, progress: bool, label_map: Optional[Sequence[int]] = None,
                 multi_label: bool = False) -> List[Dict[str, Any]]:
    loader = shard_loader(dataset, data_cfg, env, batch_size=batch_size)
    rows: List[Dict[str, Any]] = []
    bar = tqdm(total=len(loader.sampler), unit="video", desc="eval", disable=not (env.is_main and progress),
               dynamic_ncols=True, mininterval=1.0)
    to_model = None if label_map is None else torch.as_tensor(list(label_map))
    for batch in loader:
        x, labels = device_batch(batch, data_cfg, env.device, channels_last=False)
        indices = batch[2].tolist()
        if to_model is not None and not multi_label:             # dataset classes -> the model's outputs
            labels = torch.where(labels >= 0, to_model.to(labels.device)[labels.clamp(min=0)], labels)
        ok = (labels >= 0).all(dim=1) if multi_label else labels >= 0  # unreadable: -1, or a row of -1
        if len(batch) == 4:                                      # a varying number of views (collate_views)
            scored = _score_groups(model, x, batch[3].tolist(), ok.tolist(), average, precision=precision,
                                   channels_last=channels_last, device=env.device, multi_label=multi_label)
        elif ok.any():
            with autocast(precision, env.device):
                scores, view_logits = score_views(model, x[ok], average, channels_last=channels_last,
                                                  multi_label=multi_label)
            view_preds = view_logits.argmax(dim=-1)                                    # (n, V)
            scored = list(zip(scores, view_preds))
        if multi_label:  # label: the multi-hot row as ints; scores: probabilities (prob) or logits (score)
            for j, index in enumerate(indices):
                k = int(ok[:j].sum())
                hot = [int(v) for v in labels[j].tolist()]
                rows.append({"index": index, "label": hot, "scores": scored[k][0].cpu()} if ok[j]
                            else {"index": index, "label": -1})
            bar.update(len(indices))
            continue
        k = 0
        for index, label in zip(indices, labels.tolist()):
            if label < 0:
                rows.append({"index": index, "label": -1})
                continue
            video_scores, preds = scored[k]
            k += 1
            rows.append({"index": index, "label": label, "scores": video_scores.cpu(),
                         "view_hits": int((preds == label).sum()), "views": len(preds)})
        bar.update(len(indices))
    bar.close()
    return rows


def is_scored(row: Dict[str, Any]) -> bool:
    """A row with scores: its label is a class index >= 0 or a multi-hot list (-1: unreadable)."""
    return isinstance(row["label"], list) or row["label"] >= 0


def _score_groups(model, views: torch.Tensor, counts: List[int], ok: List[bool], average: str, *, precision: str,
                  channels_last: bool, device, multi_label: bool = False) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """(video scores (K,), view predictions (V,)) of each readable video of a batch whose views lie
    one after the other (`counts` per video), one forward pass per video."""
    out, start = [], 0
    for count, good in zip(counts, ok):
        if good:
            with autocast(precision, device):
                scores, view_logits = score_views(model, views[start:start + count].unsqueeze(0), average,
                                                  channels_last=channels_last, multi_label=multi_label)
            out.append((scores[0], view_logits[0].argmax(dim=-1)))
        start += count
    return out


def _failed_videos(rows, failures, dataset) -> List[Dict[str, str]]:
    reasons = {path: reason for path, reason in failures}
    out = []
    for r in rows:
        if not is_scored(r):
            path = str(dataset.samples[r["index"]][0])
            out.append({"path": path, "reason": reasons.get(path, "could not be decoded")})
    return out
