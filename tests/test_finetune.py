"""Fine-tuning: `optim.backbone_lr_mult` (the backbone's learning rate relative to the head's),
the `recipe=finetune` preset, and its measured gain over training from scratch."""
from __future__ import annotations

import pytest
import torch
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)

from action3d.commands._hydra import compose_config, typed_config
from action3d.config import OptimConfig, SchedConfig
from action3d.engine.optim import build_optimizer, build_scheduler
from action3d.errors import Action3dError
from action3d.models import build_model


def tiny_model():
    return build_model({"depth": 18, "base_channels": 8, "stage_blocks": [1, 1, 1, 1], "num_classes": 4})


def test_backbone_lr_mult_sets_the_backbone_rate_relative_to_the_head_all_run_long():
    model = tiny_model()
    optimizer = build_optimizer(model, OptimConfig(lr=0.1, backbone_lr_mult=0.1))
    head = {id(p) for p in model.cls_head.parameters()}
    groups = optimizer.param_groups
    assert groups[0]["lr"] == pytest.approx(0.1)            # group 0 (logged as train/lr) is the head's
    for group in groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(0.1 if in_head.pop() else 0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {g["weight_decay"] for g in groups} == {1e-4, 0.0}   # decay / no-decay split kept
    scheduler = build_scheduler(optimizer, SchedConfig(warmup_epochs=1), steps_per_epoch=5, max_epochs=4, base_lr=0.1)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
        rates = {id(p) in head: g["lr"] for g in optimizer.param_groups for p in g["params"]}
        assert rates[False] == pytest.approx(0.1 * rates[True])


def test_backbone_lr_mult_of_one_keeps_the_groups_and_frozen_stages_stay_out():
    model = tiny_model()
    assert len(build_optimizer(model, OptimConfig(lr=0.1)).param_groups) == 2   # as before the option
    frozen = build_model({"depth": 18, "base_channels": 8, "stage_blocks": [1, 1, 1, 1], "num_classes": 4,
                          "frozen_stages": 2})
    optimizer = build_optimizer(frozen, OptimConfig(lr=0.1, backbone_lr_mult=0.5))
    trainable = {id(p) for p in frozen.parameters() if p.requires_grad}
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == trainable


def test_backbone_lr_mult_needs_a_recognizer():
    with pytest.raises(Action3dError, match="optim.backbone_lr_mult=0.1 needs a recognizer"):
        build_optimizer(torch.nn.Linear(3, 2), OptimConfig(lr=0.1, backbone_lr_mult=0.1))


def test_backbone_lr_mult_zero_trains_only_the_head(tmp_path, cache_dir):
    """What a user sees: with backbone_lr_mult=0 the checkpoint's backbone weights are the ones it
    started from and only the head moved."""
    from action3d.engine.train import Trainer

    from conftest import SMALL

    cfg = typed_config("train", [*SMALL, "trainer.max_epochs=1", "optim.backbone_lr_mult=0",
                                   "optim.weight_decay=0", "trainer.precision=32"])
    trainer = Trainer(cfg, run_dir=tmp_path, seed=0)
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.fit()
    after = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)["model"]
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("cls_head.") for k in moved), sorted(moved)[:5]


def test_finetune_recipe_sets_rates_freezing_and_schedule():
    cfg = compose_config("train", ["recipe=finetune"])
    plain = compose_config("train", [])
    assert cfg.optim.backbone_lr_mult < 1.0 and cfg.model.frozen_stages >= 1
    assert cfg.optim.lr < plain.optim.lr
    assert compose_config("train", ["recipe=finetune", "optim.backbone_lr_mult=1"]).optim.backbone_lr_mult == 1.0
    assert compose_config("train", ["recipe=finetune", "model=r3d_18"]).model.frozen_stages == cfg.model.frozen_stages


@pytest.mark.slow
def test_finetuning_from_four_classes_beats_training_from_scratch_on_the_other_four(tmp_path, cache_dir):
    """The tiny model trained on move_right, move_down, rotate_cw and grow (20 epochs, 48 videos
    per class), then fine-tuned with recipe=finetune on the other four classes (16 videos each, 8
    epochs), against the same 8 epochs from scratch; final val top-1 on 64 videos, 3 seeds.

    The split: each target class is the time-reverse of a source class (left/right, up/down,
    counter-clockwise/clockwise, shrink/grow), so the source's motion filters (along the same axes,
    about the same centres) are what the target needs. Between translations and rotation/scaling
    nothing transferred in our trials (the pooled features of one do not separate the other).
    The source's 4 motions are far from the target's, so the backbone trains at the head's rate
    (optim.backbone_lr_mult=1; the recipe's 0.1 is for Kinetics weights, and measured 8 points
    below scratch here); the recipe's frozen stem and stage 1 stay.
    Measured (3 seeds): fine-tuned 42-48%, from scratch 33-36%, mean gain 10 points.
    """
    from synthetic_subsets import FINETUNE_TARGET, LEARNABLE, pretrained_checkpoint, subset_lists, train

    source = pretrained_checkpoint(cache_dir)
    lists = subset_lists(tmp_path / "lists", FINETUNE_TARGET, per_class=[16] * 4, synthetic=LEARNABLE[:4])
    budget = [*LEARNABLE, *lists, "trainer.max_epochs=8", "trainer.val_every=8"]
    gains = []
    for seed in (0, 1, 2):
        tuned = train([*budget, "recipe=finetune", "optim.backbone_lr_mult=1", f"model.pretrained={source}"],
                      tmp_path / f"tuned{seed}", seed=seed)["best_top1"]
        scratch = train(budget, tmp_path / f"scratch{seed}", seed=seed)["best_top1"]
        gains.append(tuned - scratch)
        print(f"seed {seed}: fine-tuned {tuned:.3f}, from scratch {scratch:.3f}")
    assert min(gains) > 0.0 and sum(gains) / 3 >= 0.05, gains   # better on every seed, >= 5 points on average
