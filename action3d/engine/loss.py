"""The training loss and its targets: softmax cross-entropy (one label per video) or a sigmoid per
class (`data.multi_label`, BCEWithLogitsLoss), with label smoothing and class weights.

Targets reach `Criterion` in one of three forms:
- class indices (N,) int64: single-label batches that were not mixed (today's hard-label loss);
- probabilities (N, K) float: single-label batches mixed by `action3d.engine.mixup`
  (convex combinations of one-hot rows);
- multi-hot rows (N, K) float: multi-label batches (mixed or not).

Label smoothing eps acts on the unsmoothed targets: y (1 - eps) + eps / K for the softmax (as
`F.cross_entropy(label_smoothing=eps)` does, on indices and on probabilities alike), y (1 - eps)
+ eps / 2 per class for the sigmoids (each class is a two-way choice). Mixing first and smoothing
second equals the other order: both are linear and the rows keep their sums.

`trainer.class_weights=auto`: for the softmax, each class's weight is its inverse training
frequency (`sampler.inverse_frequency_weights`); for the sigmoids, each class's positives weigh
negatives / positives (BCEWithLogitsLoss's `pos_weight`, from `positive_weights`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F


class Criterion:
    """The loss of a batch of logits (N, K) and targets (see the module docstring)."""

    def __init__(self, *, multi_label: bool, label_smoothing: float = 0.0, weight: Optional[torch.Tensor] = None):
        self.multi_label, self.label_smoothing, self.weight = multi_label, label_smoothing, weight

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.multi_label:
            eps = self.label_smoothing
            targets = targets * (1.0 - eps) + eps / 2 if eps else targets
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.weight)
        return F.cross_entropy(logits, targets, weight=self.weight, label_smoothing=self.label_smoothing)


def label_matrix(labels: Iterable[Any], num_classes: int) -> torch.Tensor:
    """(N, K) multi-hot float rows of a dataset's labels, without decoding a video.

    The one place a dataset's stored labels become rows of targets (for `positive_weights`):
    an int is one class; a float vector of length K is a multi-hot row; any other sequence lists
    a video's class indices (a multi-label list line `path 3 17`)."""
    rows = []
    for label in labels:
        row = np.zeros(num_classes, dtype=np.float32)
        if isinstance(label, (int, np.integer)):
            row[int(label)] = 1.0
        else:
            values = np.asarray(label.numpy() if isinstance(label, torch.Tensor) else label)
            if values.dtype.kind == "f" and values.shape == (num_classes,):
                row = (values > 0).astype(np.float32)
            else:
                row[values.astype(np.int64).reshape(-1)] = 1.0
        rows.append(row)
    return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, num_classes)


def positive_weights(rows: torch.Tensor) -> torch.Tensor:
    """BCEWithLogitsLoss's `pos_weight` for `trainer.class_weights=auto` under multi-label: per
    class, its training negatives over its positives (1 for a class without positives)."""
    positives = rows.sum(dim=0)
    negatives = rows.shape[0] - positives
    return torch.where(positives > 0, negatives / positives.clamp(min=1), torch.ones_like(positives)).float()


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (N,) -> float rows (N, K); float rows pass through (multi-hot labels)."""
    if labels.is_floating_point():
        return labels
    return F.one_hot(labels, num_classes).float()


def sample_labels(samples: Sequence[Any]) -> list:
    """The labels of `(path, label)` samples, in order."""
    return [label for _, label in samples]
