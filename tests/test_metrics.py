"""Metrics against hand-computed examples."""
import math

import pytest
import torch

from action3d.engine.metrics import confusion_matrix, mean_class_accuracy, per_class_accuracy, topk_accuracy
from action3d.engine.report import compute_metrics
from action3d.errors import Action3dError

SCORES = torch.tensor([
    [0.1, 0.5, 0.3, 0.1],   # label 1: top-1 hit
    [0.4, 0.3, 0.2, 0.1],   # label 2: rank 3 -> top-1 miss, top-2 miss, top-3 hit
    [0.2, 0.2, 0.5, 0.1],   # label 0: rank 2 (tie with class 1, lower index first) -> top-2 hit
    [0.1, 0.2, 0.3, 0.4],   # label 3: top-1 hit
])
LABELS = torch.tensor([1, 2, 0, 3])


def test_topk_by_hand():
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(2 / 4)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(3 / 4)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(4 / 4)
    assert topk_accuracy(SCORES, LABELS, 4) == pytest.approx(1.0)


def test_ties_resolve_to_the_lower_class_index():
    scores = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert topk_accuracy(scores, torch.tensor([0, 1]), 1) == pytest.approx(0.5)
    assert topk_accuracy(scores, torch.tensor([0, 1]), 2) == pytest.approx(1.0)


def test_k_larger_than_class_count_is_an_error():
    with pytest.raises(Action3dError, match="top-5 accuracy needs 1 <= k <= number of classes \\(4\\)"):
        topk_accuracy(SCORES, LABELS, 5)


def test_confusion_and_mean_class_accuracy_by_hand():
    preds = torch.tensor([0, 0, 1, 1, 1, 2])
    labels = torch.tensor([0, 1, 1, 1, 0, 0])   # class 2 and 3 never occur in the ground truth
    confusion = confusion_matrix(preds, labels, num_classes=4)
    assert confusion.tolist() == [[1, 1, 1, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    recall = per_class_accuracy(confusion)
    assert recall[0].item() == pytest.approx(1 / 3) and recall[1].item() == pytest.approx(2 / 3)
    assert math.isnan(recall[2].item()) and math.isnan(recall[3].item())
    # mean over the classes present in the ground truth only: (1/3 + 2/3) / 2
    assert mean_class_accuracy(preds, labels, 4) == pytest.approx(0.5)


def test_compute_metrics_from_rows_excludes_failed_videos():
    rows = [{"index": i, "label": int(lab), "scores": s, "view_hits": 1, "views": 2}
            for i, (s, lab) in enumerate(zip(SCORES, LABELS))] + [{"index": 9, "label": -1}]
    m = compute_metrics(rows, num_classes=4)
    assert m["top1"] == pytest.approx(0.5) and m["top5"] == pytest.approx(1.0) and m["top5_k"] == 4
    assert m["clip_top1"] == pytest.approx(0.5)
    assert m["mean_class_accuracy"] == pytest.approx(0.5)   # classes 1, 3 right; 0, 2 wrong
    assert sum(map(sum, m["confusion"])) == 4
