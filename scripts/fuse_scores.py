#!/usr/bin/env python
"""The metrics of a weighted fusion of per-video scores (`action3d eval ... eval.dump=OUT.npz`).

    python scripts/fuse_scores.py A.npz B.npz [--weights 1,0.5] [--softmax] [--json OUT.json]

As mmaction2's tools/analysis_tools/report_accuracy.py: the fused scores are sum_i w_i x scores_i
(after a softmax of each file's scores with --softmax, for files of logits: eval.average=score),
and top-1, top-5 and the mean class accuracy are reported for every input and for the fusion
(mean class accuracy as mmaction2 computes it: over the classes that are true or predicted,
0 for a class only predicted). Multi-label files (labels (N, K)) report the mean average
precision instead. The files must score the same videos in the same order with the same labels.
Prints a table and writes the figures as JSON (default: fusion.json).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(scores, axis=1)[:, -k:][:, ::-1]
    return float(np.logical_or.reduce(top == labels[:, None], axis=1).mean())


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    pred = scores.argmax(axis=1)
    classes = np.unique(np.concatenate([pred, labels]))
    accuracies = []
    for c in classes:
        true = labels == c
        accuracies.append(float((pred[true] == c).mean()) if true.any() else 0.0)
    return float(np.mean(accuracies))


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Multi-hot labels (N, K): the mean over classes with a positive of their average precision."""
    aps = []
    for c in range(labels.shape[1]):
        positives = labels[:, c] > 0
        if not positives.any():
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        hits = positives[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float(precision[hits].mean()))
    return float(np.mean(aps)) if aps else float("nan")


def metrics(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    if labels.ndim == 2:
        return {"mAP": mean_average_precision(scores, labels)}
    k = min(5, scores.shape[1])
    return {"top1": top_k_accuracy(scores, labels, 1), f"top{k}": top_k_accuracy(scores, labels, k),
            "mean_class_accuracy": mean_class_accuracy(scores, labels)}


def load(path: Path) -> Dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in ("videos", "labels", "scores")}
    except (OSError, KeyError, ValueError) as err:
        raise SystemExit(f"fuse_scores: {path}: not an eval.dump file ({err})") from None


def fuse(files: Sequence[Dict[str, np.ndarray]], weights: Sequence[float], *, apply_softmax: bool) -> np.ndarray:
    fused = np.zeros_like(files[0]["scores"], dtype=np.float64)
    for data, weight in zip(files, weights):
        scores = data["scores"].astype(np.float64)
        fused += weight * (softmax(scores) if apply_softmax else scores)
    return fused


def check_same_videos(paths: Sequence[Path], files: Sequence[Dict[str, np.ndarray]]) -> None:
    first = files[0]
    for path, data in zip(paths[1:], files[1:]):
        if data["videos"].tolist() != first["videos"].tolist() or not np.array_equal(data["labels"], first["labels"]):
            raise ValueError(f"{path} scores other videos (or labels) than {paths[0]}; fuse dumps of the same split")
        if data["scores"].shape != first["scores"].shape:
            raise ValueError(f"{path}: scores {data['scores'].shape} but {paths[0]}: {first['scores'].shape}")


def table(rows: List[Dict[str, object]]) -> str:
    keys = [k for k in rows[0] if k != "name"]
    names = {"top1": "top-1", "top5": "top-5", "mean_class_accuracy": "mean class accuracy", "mAP": "mAP"}
    width = max(len(str(r["name"])) for r in rows) + 2
    lines = ["".ljust(width) + "".join(names.get(k, k).rjust(22) for k in keys)]
    for row in rows:
        lines.append(str(row["name"]).ljust(width) + "".join(f"{100 * row[k]:21.2f}%" for k in keys))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scores", nargs="+", type=Path, help="eval.dump files (.npz)")
    parser.add_argument("--weights", default=None, help="one weight per file, comma-separated (default: all 1)")
    parser.add_argument("--softmax", action="store_true", help="apply a softmax to each file's scores first")
    parser.add_argument("--json", type=Path, default=Path("fusion.json"), help="where the figures go")
    args = parser.parse_args(argv)

    weights = [1.0] * len(args.scores) if args.weights is None else [float(w) for w in args.weights.split(",")]
    if len(weights) != len(args.scores):
        print(f"fuse_scores: error: --weights has {len(weights)} values for {len(args.scores)} files",
              file=sys.stderr)
        return 2
    files = [load(path) for path in args.scores]
    try:
        check_same_videos(args.scores, files)
    except ValueError as err:
        print(f"fuse_scores: error: {err}", file=sys.stderr)
        return 2
    labels = files[0]["labels"]
    rows = [{"name": str(path), **metrics(softmax(d["scores"]) if args.softmax else d["scores"], labels)}
            for path, d in zip(args.scores, files)]
    fused = {"name": "fused", **metrics(fuse(files, weights, apply_softmax=args.softmax), labels)}
    print(f"{len(labels)} videos, weights {', '.join(f'{w:g}' for w in weights)}"
          f"{', softmax first' if args.softmax else ''}")
    print(table(rows + [fused]))
    report = {"videos": int(len(labels)), "weights": weights, "softmax": args.softmax,
              "inputs": [{"file": r["name"], **{k: v for k, v in r.items() if k != "name"}} for r in rows],
              "fused": {k: v for k, v in fused.items() if k != "name"}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
