"""Evaluation metrics from per-video rows, and the files of an eval directory.

Files: report.json (metrics and run facts), per_class.csv, confusion.png, and a printed table;
with eval.dump, the per-video scores as an .npz (`write_dump`). Under multi-label
(`report["multi_label"]`): mAP and each class's AP with its count of positives (per_class.csv), no
confusion matrix.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np
import torch

from action3d.engine.metrics import (
    average_precision,
    confusion_matrix,
    confusion_mean_class_accuracy,
    per_class_accuracy,
    topk_correct,
)
from action3d.files import atomic_write


def compute_metrics(rows: List[Dict[str, Any]], *, num_classes: int) -> Dict[str, Any]:
    """Video-level top-1/top-5, clip-level top-1, mean class accuracy, per-class accuracy, confusion."""
    good = [r for r in rows if r["label"] >= 0]
    if not good:
        return {"top1": None, "top5": None, "clip_top1": None, "mean_class_accuracy": None,
                "per_class_accuracy": [], "confusion": []}
    scores = torch.stack([r["scores"] for r in good])                     # (N, K)
    labels = torch.tensor([r["label"] for r in good])
    k5 = min(5, num_classes)
    hits = topk_correct(scores, labels, ks=(1, k5))
    confusion = confusion_matrix(scores.argmax(dim=1), labels, num_classes)
    recall = per_class_accuracy(confusion)
    clip_hits = sum(r["view_hits"] for r in good)
    clip_total = sum(r["views"] for r in good)
    return {
        "top1": hits[1].float().mean().item(),
        "top5": hits[k5].float().mean().item(),
        "top5_k": k5,
        "clip_top1": clip_hits / clip_total,
        "mean_class_accuracy": confusion_mean_class_accuracy(confusion),
        "per_class_accuracy": [None if math.isnan(v) else v for v in recall.tolist()],
        "per_class_support": confusion.sum(dim=1).tolist(),
        "confusion": confusion.tolist(),
    }


def compute_multilabel_metrics(rows: List[Dict[str, Any]], *, num_classes: int) -> Dict[str, Any]:
    """mAP over the classes with at least one positive, each class's AP (None without positives)
    and its count of positives; rows' labels are multi-hot lists (-1: unreadable)."""
    good = [r for r in rows if isinstance(r["label"], list)]
    if not good:
        return {"map": None, "per_class_ap": [], "per_class_positives": [0] * num_classes}
    ap, positives = average_precision(torch.stack([r["scores"] for r in good]),
                                      torch.tensor([r["label"] for r in good]))
    present = ~ap.isnan()
    return {"map": ap[present].mean().item() if present.any() else None,
            "per_class_ap": [None if math.isnan(v) else v for v in ap.tolist()],
            "per_class_positives": positives.tolist()}


def label_array(rows: List[Dict[str, Any]]) -> np.ndarray:
    """The scored rows' labels for eval.dump: (N,) class indices, or (N, K) multi-hot under multi-label."""
    labels = [r["label"] for r in rows if isinstance(r["label"], list) or r["label"] >= 0]
    if labels and isinstance(labels[0], list):
        return np.asarray(labels, dtype=np.int64).reshape(len(labels), -1)
    return np.asarray(labels, dtype=np.int64)


def summary_table(report: Dict[str, Any]) -> str:
    """The lines `action3d eval` prints: views, top-1/top-5, clip top-1, mean class accuracy,
    then the unreadable videos."""
    m = report["metrics"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:6.2f}%"

    views = report["views"]
    lines = [
        f"checkpoint          {report['checkpoint']}",
        f"videos              {report['num_videos']} scored, {report['num_failed']} unreadable (excluded)",
        f"views per video     {views['num_clips']} clips x {views['num_crops']} crops, average={views['average']}"
        + (f", eval.protocol={report['protocol']}" if report.get("protocol", "action3d") != "action3d" else ""),
    ]
    if report.get("multi_label"):
        scored = sum(ap is not None for ap in m["per_class_ap"])
        lines.append(f"mAP                 {pct(m['map'])} (over the {scored} classes with positives)")
    else:
        lines += [
            f"video top-1         {pct(m['top1'])}",
            f"video top-{m.get('top5_k', 5):<2}        {pct(m['top5'])}",
            f"clip top-1          {pct(m['clip_top1'])}",
            f"mean class accuracy {pct(m['mean_class_accuracy'])}",
        ]
    if report.get("throughput_videos_per_s"):
        lines.append(f"throughput          {report['throughput_videos_per_s']:.1f} videos/s")
    if report["failed_videos"]:
        lines.append("unreadable videos (excluded):")
        lines += [f"  {item['path']}: {item['reason']}" for item in report["failed_videos"]]
    if report.get("excluded_videos"):
        lines.append(f"videos the protocol has no view of (excluded, as eval.protocol={report.get('protocol')} does):")
        lines += [f"  {item['reason']}" for item in report["excluded_videos"]]
    return "\n".join(lines)


def write_dump(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """eval.dump: `videos` (unicode), `labels` and `scores` in one .npz, written atomically; it
    loads with `np.load(path, allow_pickle=False)`."""
    import io

    from action3d.files import atomic_write

    for name in ("videos", "labels", "scores"):
        if arrays[name].dtype == object:
            raise ValueError(f"eval.dump: {name} would need pickling")
    buffer = io.BytesIO()
    np.savez(buffer, **{name: arrays[name] for name in ("videos", "labels", "scores")})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, buffer.getvalue())


def write_report(report: Dict[str, Any], classes: List[str], out_dir: Path) -> Path:
    """report.json, per_class.csv and confusion.png in `out_dir`; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "report.json", json.dumps({**report, "classes": classes}, indent=2))
    m = report["metrics"]
    if report.get("multi_label"):
        _write_ap_table(m, classes, out_dir / "per_class.csv")
        return out_dir / "report.json"
    with open(out_dir / "per_class.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_index", "class_name", "videos", "accuracy"])
        for i, name in enumerate(classes):
            support = m["per_class_support"][i] if m.get("per_class_support") else 0
            acc = m["per_class_accuracy"][i] if m["per_class_accuracy"] else None
            writer.writerow([i, name, support, "" if acc is None else f"{acc:.6f}"])
    if m["confusion"]:
        plot_confusion(torch.tensor(m["confusion"]), classes, out_dir / "confusion.png")
    return out_dir / "report.json"


def _write_ap_table(m: Dict[str, Any], classes: List[str], path: Path) -> None:
    """per_class.csv under multi-label: each class's positives and AP (empty without positives)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_index", "class_name", "positives", "ap"])
        for i, name in enumerate(classes):
            ap = m["per_class_ap"][i] if m["per_class_ap"] else None
            writer.writerow([i, name, m["per_class_positives"][i], "" if ap is None else f"{ap:.6f}"])


def plot_confusion(confusion: torch.Tensor, classes: List[str], path: Path) -> None:
    """Row-normalised confusion matrix; figure and fonts scale so ~100 classes stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    rows = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    side = min(40.0, max(6.0, 0.22 * k + 3))
    font = max(4.0, min(10.0, 360.0 / max(k, 1)))
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    image = ax.imshow(rows.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels=classes, rotation=90, fontsize=font)
    ax.set_yticks(range(k), labels=classes, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=font,
                            color="white" if rows[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_title("confusion matrix (rows: true class, normalised)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
