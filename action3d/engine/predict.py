"""predict(): class scores of a trained model for video files.

Each video is sampled the way `evaluate` samples one (`num_clips` clips spread over it x
`num_crops` crops, views averaged as `average` says). A file that cannot be decoded gets an
`error` entry instead of scores; it never stops the others.

    trained = load_trained("best.pt", torch.device("cpu"))   # action3d.commands._checkpoint
    for result in predict(trained, ["a.mp4", "b.mp4"], topk=3):
        print(result["video"], result.get("top") or result["error"])

`predict_windows` scores every window of one long video the same way (see
`action3d.engine.windows`), decoding one window at a time, and merges consecutive windows with
the same top class into segments; `plot_timeline` draws the per-class probabilities over time.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from action3d.config import DataConfig
from action3d.data.dataset import build_dataset
from action3d.engine.data import device_batch
from action3d.engine.inference import TrainedModel, score_views
from action3d.engine.precision import autocast
from action3d.engine.windows import (
    PROGRESS_MIN_STEPS,
    merge_segments,
    open_reader,
    plan_windows,
    top_labels,
    window_views,
)
from action3d.files import atomic_write


@torch.no_grad()
def predict(trained: TrainedModel, videos: Sequence[str], *, data_cfg: DataConfig | None = None,
            topk: int = 5, num_clips: int = 1, num_crops: int = 1, average: str = "prob",
            precision: str = "32") -> list[dict[str, Any]]:
    """One entry per video: `{"video", "scores": [K floats], "top": [{"class", "index", "prob"}]}`,
    or `{"video", "error"}` for a file that cannot be read.

    data_cfg: sampling, crop and normalisation (default: the checkpoint's data config). With
    average="score" the views' logits are averaged and `prob` is their softmax. A model trained
    with data.multi_label gives independent probabilities, a sigmoid per class (they need not
    sum to 1; the top k are the k most probable labels).
    """
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    dataset = build_dataset(data_cfg, "val", train=False, num_clips=num_clips, num_crops=num_crops,
                            samples=[(str(v), -1) for v in videos], classes=trained.classes)
    k = min(topk, len(trained.classes))
    results: list[dict[str, Any]] = []
    for i, video in enumerate(videos):
        clip, _, _ = dataset[i]
        failures = dataset.drain_failures()
        if failures:
            results.append({"video": str(video), "error": failures[0][1]})
            continue
        probs = _video_probs(trained, clip.unsqueeze(0), data_cfg=data_cfg, average=average, precision=precision)
        top = probs.topk(k)
        results.append({"video": str(video), "scores": probs.tolist(), "top": [
            {"class": trained.classes[c], "index": int(c), "prob": float(p)}
            for p, c in zip(top.values, top.indices, strict=True)]})
    return results


def _video_probs(trained: TrainedModel, views: torch.Tensor, *, data_cfg: DataConfig, average: str,
                 precision: str) -> torch.Tensor:
    """Class probabilities (K,) of one video (or window) from its uint8 views (1, [V,] C, T, H, W):
    a softmax, or under the checkpoint's data.multi_label a sigmoid per class."""
    device = next(trained.model.parameters()).device
    multi_label = trained.config.data.multi_label
    x, _ = device_batch((views, torch.zeros(1, dtype=torch.long)), data_cfg, device, channels_last=False)
    with autocast(precision, device):
        scores, _ = score_views(trained.model, x, average, multi_label=multi_label)   # (1, K)
    if average == "prob":
        return scores[0].float()
    return scores[0].float().sigmoid() if multi_label else scores[0].float().softmax(dim=-1)


@torch.no_grad()
def predict_windows(trained: TrainedModel, video: str, *, window: float, stride: float | None = None,
                    data_cfg: DataConfig | None = None, topk: int = 5, num_clips: int = 1, num_crops: int = 1,
                    average: str = "prob", precision: str = "32", progress: bool = True) -> dict[str, Any]:
    """Scores of every window of one video, and the segments of consecutive windows that share a top class:

    `{"video", "duration", "fps", "window", "stride", "windows": [{"start", "end", "topk": [[class, prob], ...],
    "scores": [K floats]}], "segments": [Segment]}` (times in seconds). Raises `Action3dError` naming the
    file when it cannot be decoded or is shorter than one window. A progress bar runs from
    `PROGRESS_MIN_STEPS` windows on (with `progress`).
    """
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    k = min(topk, len(trained.classes))
    rows: list[dict[str, Any]] = []
    with open_reader(video, data_cfg) as reader:
        windows = plan_windows(reader.num_frames, reader.fps, window=window, stride=stride, video=video)
        bar = tqdm(windows, desc=Path(video).name, unit="window", leave=False,
                   disable=not progress or len(windows) < PROGRESS_MIN_STEPS)
        for win in bar:
            views = window_views(reader, win, data_cfg, num_clips=num_clips, num_crops=num_crops)  # (V, C, T, H, W)
            probs = _video_probs(trained, views.unsqueeze(0), data_cfg=data_cfg, average=average, precision=precision)
            top = probs.topk(k)
            rows.append({"start": round(win.start, 3), "end": round(win.end, 3),
                         "topk": [[trained.classes[int(c)], float(p)]
                                  for p, c in zip(top.values, top.indices, strict=True)],
                         "scores": probs.tolist()})
        fps, duration = reader.fps, reader.num_frames / reader.fps
    scores = np.array([row["scores"] for row in rows])                                  # (W, K)
    segments = merge_segments(windows, top_labels(scores, trained.classes))
    return {"video": str(video), "duration": duration, "fps": fps, "window": window,
            "stride": window if stride is None else stride, "windows": rows, "segments": segments}


def timeline_json(result: dict[str, Any]) -> dict[str, Any]:
    """`predict_windows`' result as written by `json=`: windows without their full score vectors."""
    return {"video": result["video"], "duration": round(result["duration"], 3),
            "windows": [{k: v for k, v in row.items() if k != "scores"} for row in result["windows"]],
            "segments": [segment.as_json() for segment in result["segments"]]}


def plot_timeline(result: dict[str, Any], classes: Sequence[str], path: str | Path, *, max_classes: int = 10) -> Path:
    """Per-class probability over time (one line per class, at each window's centre) above a band of
    the merged segments. With many classes, only the `max_classes` with the highest peak are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["windows"]
    scores = np.array([row["scores"] for row in rows])                                  # (W, K)
    centres = np.array([(row["start"] + row["end"]) / 2 for row in rows])
    shown = np.argsort(-scores.max(axis=0), kind="stable")[:max_classes]
    colors = {c: plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")(i % 20) for i, c in enumerate(shown)}
    fig, (band, ax) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, height_ratios=[1, 5],
                                   constrained_layout=True)
    for segment in result["segments"]:
        index = list(classes).index(segment.label)
        band.axvspan(segment.start, segment.end, color=colors.get(index, "0.6"), alpha=0.85)
        if segment.end - segment.start > 0.06 * result["duration"]:
            band.text((segment.start + segment.end) / 2, 0.5, segment.label, ha="center", va="center", fontsize=8)
    band.set_yticks([])
    band.set_ylabel("top class", rotation=0, ha="right", va="center", fontsize=9)
    for c in shown:
        ax.plot(centres, scores[:, c], marker="o", markersize=3, color=colors[c], label=classes[c])
    ax.set_xlim(0, result["duration"])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    band.set_title(f"{Path(result['video']).name}: windows of {result['window']:g} s every {result['stride']:g} s",
                   fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())
