"""Imbalanced data: `data.sampler=balanced` (class-balanced draws with replacement) and
`trainer.class_weights=auto` (inverse-frequency weighted loss)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)

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


# ------------------------------------------------------------------ in the trainer, on the small synthetic set

MOTIONS = ["move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw", "grow", "shrink"]


def small_subset(tmp_path: Path, per_class: list) -> list:
    from synthetic_subsets import subset_lists

    from conftest import SMALL

    return [*SMALL[4:], *subset_lists(tmp_path / "lists", MOTIONS, per_class=per_class, synthetic=SMALL[:4])]


def test_class_weights_auto_weigh_the_loss_by_inverse_class_frequency(tmp_path, cache_dir, monkeypatch):
    from action3d.commands._hydra import typed_config
    from action3d.engine import loss as loss_mod
    from action3d.engine import train as train_mod

    seen = []
    real = loss_mod.F.cross_entropy
    monkeypatch.setattr(loss_mod.F, "cross_entropy",
                        lambda *args, **kwargs: seen.append(kwargs["weight"]) or real(*args, **kwargs))
    overrides = small_subset(tmp_path, [2, 1, 1, 1, 1, 1, 1, 1])        # 9 videos, class 0 twice
    for weights in ("none", "auto"):
        cfg = typed_config("train", [*overrides, f"trainer.class_weights={weights}", "trainer.max_steps=1"])
        train_mod.Trainer(cfg, run_dir=tmp_path / weights, seed=0).fit()
    assert seen[0] is None
    assert seen[1].tolist() == pytest.approx([9 / 16] + [9 / 8] * 7)   # N / (K * count)


def test_balanced_sampler_on_a_class_without_training_videos_is_one_line(tmp_path, cache_dir):
    from action3d.commands._hydra import typed_config
    from action3d.engine.train import Trainer

    cfg = typed_config("train", [*small_subset(tmp_path, [2, 2, 2, 2, 2, 2, 2, 0]), "data.sampler=balanced"])
    with pytest.raises(Action3dError) as err:
        Trainer(cfg, run_dir=tmp_path / "run", seed=0)
    assert "\n" not in str(err.value) and "data.sampler=balanced: 1 of 8 classes" in str(err.value)
    assert "shrink" in str(err.value)


def test_the_balanced_sampler_and_class_weights_together_are_refused():
    from action3d.commands._hydra import compose_config

    with pytest.raises(Action3dError, match=r"^trainer.class_weights=auto is not allowed: data.sampler=balanced"):
        compose_config("train", ["data.sampler=balanced", "trainer.class_weights=auto"])


@pytest.mark.slow
def test_a_balanced_run_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path, cache_dir):
    """2 epochs of balanced draws on a 10:1 set, once straight and once stopped after 3 of its
    4 steps per epoch and resumed (trainer.resume=auto): the same final weights."""
    from action3d.commands._hydra import typed_config
    from action3d.engine.train import Trainer

    common = [*small_subset(tmp_path, [2, 1, 1, 1, 1, 1, 1, 1]), "data.sampler=balanced", "data.batch_size=2",
              "trainer.precision=32"]
    Trainer(typed_config("train", common), run_dir=tmp_path / "full", seed=1).fit()
    Trainer(typed_config("train", [*common, "trainer.max_steps=3"]), run_dir=tmp_path / "cut", seed=1).fit()
    Trainer(typed_config("train", [*common, "trainer.resume=auto"]), run_dir=tmp_path / "cut", seed=1).fit()
    full, cut = (torch.load(tmp_path / name / "last.pt", map_location="cpu", weights_only=True)
                 for name in ("full", "cut"))
    assert cut["step"] == full["step"] == 8
    for key, value in full["model"].items():
        assert torch.equal(value, cut["model"][key]), key


@pytest.mark.slow
@pytest.mark.learned
def test_balanced_sampler_raises_mean_class_accuracy_on_imbalanced_data(tmp_path, cache_dir):
    """The four translations with 10x the training videos of move_left (40 against 4 of each other
    class), fine-tuned with recipe=finetune for 8 epochs of batch 4 from the fine-tuning source
    (synthetic_subsets.pretrained_checkpoint: the 8 directions of motion of another synthetic seed;
    its head re-initialised for these 4 classes), with data.sampler=balanced against the plain
    sampler; 3 seeds. The validation set is balanced (16 videos per class), so its top-1 is the
    mean class accuracy (chance 25%); the gain is balanced minus plain, per seed, and must pass
    `assert_learned_effect`.

    With the plain sampler 77% of the draws are move_left and the new head answers move_left for
    every video; the balanced sampler gives the three rare classes the same weight and the
    source's features for them are used.

    Measured (fp32, one thread; lscpu "Model name": AMD EPYC), seeds 0 / 1 / 2, in points:
    - native ISA (AVX512): plain 37.5 / 25.0 / 25.0%, balanced 100.0 / 98.4 / 100.0%: gains
      +62.5 / +73.4 / +75.0, mean 70.3, SD 6.8, mean/SD 10.3. Another session: plain 25.0 on every
      seed, balanced 100.0 on every seed: gains +75.0 each (SD 0). A third (AVX512-BF16): plain
      46.9 / 25.0 / 25.0%, balanced 100.0 on every seed: gains +53.1 / +75.0 / +75.0, mean 67.7,
      SD 12.6, mean/SD 5.4 (under AVX2 there: +75.0 each).
    - ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 (as a CPU without AVX512/AMX runs it;
      make test-learned-avx2): plain 25.0 / 25.0 / 25.0%, balanced 93.8 / 100.0 / 98.4%: gains
      +68.8 / +75.0 / +73.4, mean 72.4, SD 3.3, mean/SD 22.3.
    Seeds 0-7 of the same design (one source per ISA setting): gains 53-75 points, mean/SD 7.0
    (native) and 55-75, mean/SD 9.4 (AVX2). The design this replaced (4 epochs from the old
    4-motion source) gained +25.0 to +43.8, +3.1 to +21.9 and -3.1 to +20.3 points in three
    sessions here.
    trainer.class_weights=auto is not asserted here (in earlier designs of this test it was better
    on average but not on every seed).
    """
    from synthetic_subsets import (
        LEARNABLE_SET,
        TARGET,
        assert_learned_effect,
        pretrained_checkpoint,
        subset_lists,
        train,
    )

    source = pretrained_checkpoint(cache_dir)
    lists = subset_lists(tmp_path / "lists", ["move_left", "move_right", "move_down", "move_up"],
                         per_class=[40, 4, 4, 4], synthetic=LEARNABLE_SET)
    common = [*TARGET, *lists, "recipe=finetune", f"model.pretrained={source}", "trainer.max_epochs=8",
              "trainer.val_every=8"]
    scores = {"plain": [], "balanced": []}
    for seed in (0, 1, 2):
        for arm, extra in (("plain", []), ("balanced", ["data.sampler=balanced"])):
            scores[arm].append(train([*common, *extra], tmp_path / f"{arm}{seed}", seed=seed)["best_top1"])
    print("mean class accuracy per seed:", scores)
    gains = [b - p for b, p in zip(scores["balanced"], scores["plain"], strict=True)]
    print(assert_learned_effect(gains, what="balanced-sampler minus plain-sampler mean class accuracy"))
