"""A small multi-label dataset for the training side of data.multi_label, until the data side's
multi-label synthetic set lands: the synthetic motion set with each video labelled by its motion
c and its mirror motion c ^ 1 (move_right and move_left, move_down and move_up, rotate_cw and
rotate_ccw, grow and shrink), so every class is positive for the videos of one kind of motion
(horizontal, vertical, rotation, scaling) whichever its direction: two labels per video.

Its items are what a multi-label dataset gives (SHARED.md): `(clip uint8, multi-hot float32 (K,),
index)`, an unreadable video in evaluation a row of -1; `samples` holds `(path, [c, c ^ 1])`
(a multi-label list line's class indices). `use_multilabel(monkeypatch)` makes the trainer, eval
and predict build it in place of the single-label synthetic set.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import torch
from torch.utils.data import Dataset


def two_labels(label: int, num_classes: int) -> List[int]:
    return sorted({label, min(label ^ 1, num_classes - 1)})


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


class PatternClips(Dataset):
    """A multi-label set that a tiny model learns in a few hundred steps: K = 4 classes, each
    present in a video with probability 0.4 (labels fixed per index); a present class k draws a
    square of its own colour and place that moves one pixel per frame, over noise that is drawn
    anew for every (epoch, index) in training. Items as a multi-label dataset gives them:
    `(clip uint8 (3, T, S, S), multi-hot float32 (K,), index)`."""

    classes = ["red_top_left", "green_top_right", "blue_bottom_left", "white_bottom_right"]
    COLORS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))

    variable_views = False   # as a VideoDataset outside eval.protocol=hara: one view layout for every video

    def __init__(self, count: int, *, split_seed: int, frames: int = 4, size: int = 32, seed: int = 0):
        import numpy as np

        self.count, self.frames, self.size, self.seed = count, frames, size, seed
        rng = np.random.default_rng(split_seed)
        self.labels = rng.random((count, len(self.classes))) < 0.4
        self.samples = [(f"pattern_{i}", [int(k) for k in np.flatnonzero(row)]) for i, row in enumerate(self.labels)]

    def __len__(self) -> int:
        return self.count

    def drain_failures(self, log_new: bool = True) -> list:
        return []

    def __getitem__(self, key) -> Tuple[torch.Tensor, torch.Tensor, int]:
        import numpy as np

        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (10**6, int(key))  # val
        rng = np.random.default_rng((self.seed, epoch, index, 7))
        clip = rng.integers(0, 200, (3, self.frames, self.size, self.size)).astype(np.uint8)
        half, side = self.size // 2, self.size // 4
        for k in np.flatnonzero(self.labels[index]):
            top, left = (k // 2) * half + int(rng.integers(0, half - side - self.frames)), \
                (k % 2) * half + int(rng.integers(0, half - side - self.frames))
            for t in range(self.frames):
                clip[:, t, top + t:top + t + side, left + t:left + t + side] = \
                    np.array(self.COLORS[k], dtype=np.uint8)[:, None, None]
        return torch.from_numpy(clip), torch.from_numpy(self.labels[index].astype(np.float32)), index


def use_pattern_clips(monkeypatch, *, train: int = 96, val: int = 64) -> None:
    """The trainer trains on `PatternClips` (train and val splits of their own seeds)."""
    from action3d.engine import train as train_mod

    def build(data_cfg, env, *, seed):
        return (PatternClips(train, split_seed=1, seed=seed), PatternClips(val, split_seed=2, seed=seed),
                list(PatternClips.classes), data_cfg)

    monkeypatch.setattr(train_mod, "build_train_val", build)
