"""Optimiser parameter groups and the per-step learning-rate schedule."""
import pytest
import torch
from torch import nn

from action3d.config import OptimConfig, SchedConfig
from action3d.engine.optim import build_optimizer, build_scheduler, lr_factor, param_groups


def test_no_decay_on_norm_and_bias():
    model = nn.Sequential(nn.Conv3d(3, 4, 3, bias=False), nn.BatchNorm3d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 1e-4, True)
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3   # bn weight, bn bias, fc bias
    assert len(param_groups(model, 1e-4, False)[0]["params"]) == 5


def test_warmup_then_cosine_reaches_min_lr():
    cfg = SchedConfig(name="cosine", warmup_epochs=1, warmup_start_factor=0.1, min_lr=0.0)
    f = [lr_factor(s, cfg=cfg, steps_per_epoch=10, max_epochs=5, base_lr=0.1) for s in range(51)]
    assert f[0] == pytest.approx(0.1) and f[5] == pytest.approx(0.55) and f[10] == pytest.approx(1.0)
    assert f[30] == pytest.approx(0.5) and f[50] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[10:], f[11:])), "cosine decays monotonically after warm-up"


def test_multistep_decay():
    cfg = SchedConfig(name="multistep", warmup_epochs=0, milestones=[2, 4], gamma=0.1)
    f = [lr_factor(s * 10, cfg=cfg, steps_per_epoch=10, max_epochs=6, base_lr=0.1) for s in range(6)]
    assert f == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_optimizer_kinds_and_scheduler_drive_lr(name, cls):
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, OptimConfig(name=name, lr=0.5, nesterov=(name == "sgd")))
    assert isinstance(opt, cls)
    sched = build_scheduler(opt, SchedConfig(name="cosine", warmup_epochs=0), steps_per_epoch=2, max_epochs=1,
                            base_lr=0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)


def test_optim_keys_reach_the_optimizer_from_the_config():
    from action3d.commands._hydra import compose_config

    model = nn.Sequential(nn.Conv3d(3, 4, 3, bias=False), nn.BatchNorm3d(4))
    sgd = build_optimizer(model, compose_config("train", ["optim.lr=0.3", "optim.momentum=0.7", "optim.nesterov=true",
                                                          "optim.weight_decay=0.01"]).optim)
    assert [(g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) for g in sgd.param_groups] == \
        [(0.3, 0.7, True, 0.01), (0.3, 0.7, True, 0.0)]
    adamw = build_optimizer(model, compose_config("train", ["optim=adamw", "optim.betas=[0.8,0.95]",
                                                            "optim.no_decay_norm_bias=false"]).optim)
    assert len(adamw.param_groups) == 1 and adamw.param_groups[0]["betas"] == (0.8, 0.95)
