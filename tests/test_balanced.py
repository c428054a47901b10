"""Imbalanced data: `data.sampler=balanced` (class-balanced draws with replacement) and
`trainer.class_weights=auto` (inverse-frequency weighted loss)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from action3d.engine.sampler import BalancedSampler, inverse_frequency_weights
from action3d.errors import Action3dError

LABELS = [0] * 40 + [1] * 4 + [2] * 4 + [3] * 4           # one class with 10x the videos of the others
CLASSES = ["a", "b", "c", "d"]


def draws(sampler) -> list:
    return [index for _, index in sampler]


def test_balanced_sampler_draws_every_class_equally_often_with_replacement():
    sampler = BalancedSampler(LABELS, classes=CLASSES, seed=0)
    assert len(sampler) == len(LABELS)                    # an epoch has as many draws as the dataset
    counts = Counter()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        counts.update(LABELS[i] for i in draws(sampler))
    total = sum(counts.values())
    assert all(abs(counts[c] / total - 0.25) < 0.03 for c in range(4)), counts   # plain: 77% class 0
    sampler.set_epoch(0)
    assert len(set(draws(sampler))) < len(LABELS)         # with replacement: minority videos repeat


def test_balanced_sampler_is_deterministic_for_a_seed_and_resumes_mid_epoch():
    a, b, other = (BalancedSampler(LABELS, classes=CLASSES, seed=s) for s in (3, 3, 4))
    for sampler in (a, b, other):
        sampler.set_epoch(2)
    assert list(a) == list(b) and draws(a) != draws(other)
    full = list(a)
    a.set_epoch(2, start=10)                               # resume after 10 draws of the epoch
    assert list(a) == full[10:] and len(a) == len(full) - 10
    a.set_epoch(3)
    assert draws(a) != [i for _, i in full]                # a new order each epoch
    keys = [key for key, _ in full]
    assert len(set(keys)) == len(keys), "each draw gets its own augmentation seed, repeats included"


def test_balanced_sampler_ranks_take_disjoint_parts_of_one_stream():
    """2 ranks x N/2 draws == the one-process stream, interleaved (rank r takes r, r+2, ...)."""
    single = BalancedSampler(LABELS, classes=CLASSES, seed=7)
    ranks = [BalancedSampler(LABELS, classes=CLASSES, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for sampler in (single, *ranks):
        sampler.set_epoch(5)
    one = list(single)
    parts = [list(r) for r in ranks]
    assert [len(p) for p in parts] == [26, 26]
    assert parts[0] == one[0::2] and parts[1] == one[1::2]
    assert not {k for k, _ in parts[0]} & {k for k, _ in parts[1]}
    three = [BalancedSampler(LABELS, classes=CLASSES, seed=7, rank=r, world_size=3) for r in range(3)]
    assert [len(s) for s in three] == [17, 17, 17]         # whole rounds only, as DistributedSampler


def test_balanced_sampler_refuses_a_class_without_videos():
    with pytest.raises(Action3dError) as err:
        BalancedSampler([0, 0, 2, 2], classes=["walk", "run", "jump"])
    message = str(err.value)
    assert "\n" not in message and "data.sampler=balanced" in message and "run" in message


def test_inverse_frequency_weights_average_one_over_the_videos():
    weights = inverse_frequency_weights(LABELS, 4)
    assert weights.tolist() == pytest.approx([52 / (4 * 40), 52 / (4 * 4), 52 / (4 * 4), 52 / (4 * 4)])
    assert float(sum(weights[label] for label in LABELS)) == pytest.approx(len(LABELS))
    assert inverse_frequency_weights([0, 0, 2], 3).tolist() == pytest.approx([0.75, 0.0, 1.5])
