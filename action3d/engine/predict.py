"""predict(): class scores of a trained model for video files.

Each video is sampled the way `evaluate` samples one (`num_clips` clips spread over it x
`num_crops` crops, views averaged as `average` says). A file that cannot be decoded gets an
`error` entry instead of scores; it never stops the others.

    trained = load_trained_model("best.pt", torch.device("cpu"))
    for result in predict(trained, ["a.mp4", "b.mp4"], topk=3):
        print(result["video"], result.get("top") or result["error"])
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
from omegaconf import DictConfig

from action3d.data.dataset import build_dataset
from action3d.engine.data import device_batch
from action3d.engine.inference import TrainedModel, score_views
from action3d.engine.precision import autocast


@torch.no_grad()
def predict(trained: TrainedModel, videos: Sequence[str], *, data_cfg: Optional[DictConfig] = None,
            topk: int = 5, num_clips: int = 1, num_crops: int = 1, average: str = "prob",
            precision: str = "32") -> List[Dict[str, Any]]:
    """One entry per video: `{"video", "scores": [K floats], "top": [{"class", "index", "prob"}]}`,
    or `{"video", "error"}` for a file that cannot be read.

    data_cfg: sampling, crop and normalisation (default: the checkpoint's data config). With
    average="score" the views' logits are averaged and `prob` is their softmax.
    """
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    device = next(trained.model.parameters()).device
    dataset = build_dataset(data_cfg, "val", train=False, num_clips=num_clips, num_crops=num_crops,
                            samples=[(str(v), -1) for v in videos])
    k = min(topk, len(trained.classes))
    results: List[Dict[str, Any]] = []
    for i, video in enumerate(videos):
        clip, _, _ = dataset[i]
        failures = dataset.drain_failures()
        if failures:
            results.append({"video": str(video), "error": failures[0][1]})
            continue
        x, _ = device_batch((clip.unsqueeze(0), torch.zeros(1, dtype=torch.long)), data_cfg, device,
                            channels_last=False)
        with autocast(precision, device):
            scores, _ = score_views(trained.model, x, average)                   # (1, K)
        probs = scores[0].float() if average == "prob" else scores[0].float().softmax(dim=-1)
        top = probs.topk(k)
        results.append({"video": str(video), "scores": probs.tolist(), "top": [
            {"class": trained.classes[c], "index": int(c), "prob": float(p)} for p, c in zip(top.values, top.indices)]})
    return results
