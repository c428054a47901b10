"""A small multi-label dataset for the training side of data.multi_label, until the data side's
multi-label synthetic set lands: the synthetic motion set with each video labelled by its motion
class c and the next one, {c, (c + 1) % K}, so every class is positive for the videos of two
motions.

Its items are what a multi-label dataset gives (SHARED.md): `(clip uint8, multi-hot float32 (K,),
index)`, an unreadable video in evaluation a row of -1; `samples` holds `(path, [c, c + 1])`
(a multi-label list line's class indices). `use_multilabel(monkeypatch)` makes the trainer, eval
and predict build it in place of the single-label synthetic set.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import torch
from torch.utils.data import Dataset


def two_labels(label: int, num_classes: int) -> List[int]:
    return [label, (label + 1) % num_classes]


class MultiHot(Dataset):
    def __init__(self, base: Dataset):
        self.base = base
        self.classes = base.classes
        k = len(self.classes)
        self.samples = [(path, two_labels(int(label), k)) for path, label in base.samples]

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:  # drain_failures, clip_shape, ...
        return getattr(self.base, name)

    def __getitem__(self, key) -> Tuple[torch.Tensor, torch.Tensor, int]:
        clip, label, index = self.base[key]
        row = torch.full((len(self.classes),), -1.0)
        if label >= 0:
            row = torch.zeros(len(self.classes))
            row[two_labels(int(label), len(self.classes))] = 1.0
        return clip, row, index


def use_multilabel(monkeypatch) -> None:
    """Trainer, evaluate and predict build `MultiHot` datasets (in this process)."""
    from action3d.data import dataset as dataset_mod
    from action3d.engine import data as engine_data
    from action3d.engine import evaluate as evaluate_mod

    real = dataset_mod.build_dataset

    def build(*args, **kwargs):
        return MultiHot(real(*args, **kwargs))

    monkeypatch.setattr(engine_data, "build_dataset", build)
    monkeypatch.setattr(evaluate_mod, "build_dataset", build)
