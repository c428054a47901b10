"""Classification metrics with the reference definitions (mmaction2 / PySlowFast).

- top-k accuracy: the true label is among the k highest scores of that sample. Equal scores
  rank by class index (lower first, a stable descending sort), so a result never depends on
  the sort algorithm of the hardware it ran on.
- mean class accuracy: mean over the classes that occur in the ground truth of per-class recall.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch

from action3d.errors import Action3dError


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> Dict[int, torch.Tensor]:
    """Per-sample booleans "label within the top k" for each k. scores: (N, K), labels: (N,)."""
    num_classes = scores.shape[1]
    for k in ks:
        if not 1 <= k <= num_classes:
            raise Action3dError(f"top-{k} accuracy needs 1 <= k <= number of classes ({num_classes})")
    top = scores.sort(dim=1, descending=True, stable=True).indices[:, :max(ks)]   # (N, kmax)
    hits = top == labels.unsqueeze(1)                     # (N, kmax)
    return {k: hits[:, :k].any(dim=1) for k in ks}


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Share of samples whose label is among their k highest scores."""
    if len(labels) == 0:
        return float("nan")
    return topk_correct(scores, labels, [k])[k].float().mean().item()


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    flat = labels.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Recall of each class; NaN for a class that does not occur in the ground truth."""
    support = confusion.sum(dim=1).double()
    correct = confusion.diagonal().double()
    return torch.where(support > 0, correct / support.clamp(min=1), torch.full_like(support, float("nan")))


def mean_class_accuracy(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean of per-class recall over the classes present in `labels`."""
    return confusion_mean_class_accuracy(confusion_matrix(preds, labels, num_classes))


def confusion_mean_class_accuracy(confusion: torch.Tensor) -> float:
    """Mean of per-class recall over the classes with at least one true sample."""
    recall = per_class_accuracy(confusion)
    present = ~recall.isnan()
    return recall[present].mean().item() if present.any() else float("nan")
