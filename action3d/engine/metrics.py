"""Classification metrics with the reference definitions (mmaction2 / PySlowFast).

- top-k accuracy: the true label is among the k highest scores of that sample. Equal scores
  rank by class index (lower first, a stable descending sort), so a result never depends on
  the sort algorithm of the hardware it ran on.
- mean class accuracy: mean over the classes that occur in the ground truth of per-class recall.
- mAP (multi-label): the mean, over the classes with at least one positive, of each class's
  non-interpolated average precision: the precision at each positive's rank, averaged over the
  positives; videos with equal scores form one threshold (scikit-learn's `average_precision_score`,
  which PySlowFast's Charades mAP uses). A constant scorer's AP is the class's positive rate.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
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


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(AP per class (K,), NaN without positives; positives per class (K,)) of scores (N, K)
    against multi-hot targets (N, K)."""
    scores_np = scores.double().cpu().numpy()
    positive = targets.cpu().numpy() > 0.5
    counts = positive.sum(axis=0)
    ap = np.full(scores_np.shape[1], np.nan)
    for k in np.flatnonzero(counts):
        order = np.argsort(-scores_np[:, k], kind="stable")
        ranked, hits = scores_np[order, k], positive[order, k]
        true_positives = np.cumsum(hits)
        precision = true_positives / np.arange(1, len(hits) + 1)
        # the last video of each run of equal scores closes a threshold
        ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
        recall_gain = np.diff(np.concatenate([[0], true_positives[ends]])) / counts[k]
        ap[k] = float(np.sum(recall_gain * precision[ends]))
    return torch.from_numpy(ap), torch.from_numpy(counts.astype(np.int64))


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """mAP over the classes with at least one positive (NaN when none has one)."""
    ap, _ = average_precision(scores, targets)
    present = ~ap.isnan()
    return ap[present].mean().item() if present.any() else float("nan")
