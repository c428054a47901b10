"""Training recipes, the training side (issue 21): mixup and CutMix on the device, multi-label
training (BCE, pos_weight, mAP), trainer.monitor and early stopping, and what a sweep returns.

Multi-label runs train on the multi-label synthetic set (data.multi_label=true: two motions
overlaid in one clip, see action3d.data.synthetic); its learned-effect test is in
tests/test_multilabel_data.py.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from action3d.commands import _sweep as sweep
from action3d.commands._hydra import compose_config, typed_config
from action3d.config.train import LOGGERS
from action3d.engine import loss as loss_mod
from action3d.engine import train as train_mod
from action3d.engine.loss import Criterion, label_matrix, positive_weights
from action3d.engine.metrics import average_precision, mean_average_precision
from action3d.engine.mixup import BatchMixer
from action3d.engine.monitor import Monitor
from action3d.engine.train import Trainer
from action3d.errors import Action3dError

from conftest import SMALL


def make(tmp_path: Path, *overrides: str, name: str = "run", seed: int = 0) -> Trainer:
    return Trainer(typed_config("train", [*SMALL, *overrides]), run_dir=tmp_path / name, seed=seed)


def logged(run_dir: Path, key: str) -> list:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row[key] for row in rows if key in row]


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def batch(n: int = 6, k: int = 5) -> tuple:
    clips = torch.randn(n, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    return clips, torch.arange(n) % k


# ---------------------------------------------------------------- mixup and CutMix

def mixer(*overrides: str, seed: int = 0, rank: int = 0, num_classes: int = 5) -> BatchMixer:
    """The trainer's mixer of the data.* overrides (None when mixing is off)."""
    data = typed_config("train", list(overrides)).data
    return BatchMixer.from_config(data, num_classes=num_classes, seed=seed, rank=rank)


def test_mixup_mixes_each_clip_with_its_reversed_partner_by_one_lam_per_batch():
    clips, labels = batch()
    m = mixer("data.mixup_alpha=0.8")
    draw = m.draw(epoch=1, micro_batch=2, height=16, width=16)
    mixed, targets = m(clips.clone(), labels, epoch=1, micro_batch=2)
    lam = draw.lam
    assert draw.kind == "mixup" and 0 < lam < 1
    assert torch.allclose(mixed, lam * clips + (1 - lam) * clips.flip(0), atol=1e-6)
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    assert torch.allclose(targets, lam * one_hot + (1 - lam) * one_hot.flip(0))
    assert torch.allclose(targets.sum(dim=1), torch.ones(6))
    # the draw is a function of (seed, epoch, micro-batch, rank) alone
    assert m.draw(epoch=1, micro_batch=2, height=16, width=16) == draw
    assert mixer("data.mixup_alpha=0.8", rank=1).draw(epoch=1, micro_batch=2, height=16, width=16) != draw
    assert m.draw(epoch=1, micro_batch=3, height=16, width=16) != draw
    assert mixer("data.mixup_alpha=0.8", seed=1).draw(epoch=1, micro_batch=2, height=16, width=16) != draw


def test_cutmix_box_is_the_same_on_every_frame_and_lam_is_the_share_it_leaves():
    clips, labels = batch()
    m = mixer("data.cutmix_alpha=1.0")
    for step in range(20):
        draw = m.draw(epoch=0, micro_batch=step, height=16, width=16)
        mixed, targets = m(clips.clone(), labels, epoch=0, micro_batch=step)
        top, bottom, left, right = draw.box
        pasted = torch.zeros(16, 16, dtype=torch.bool)
        pasted[top:bottom, left:right] = True
        assert torch.equal(mixed[..., pasted], clips.flip(0)[..., pasted])       # every channel, every frame
        assert torch.equal(mixed[..., ~pasted], clips[..., ~pasted])
        assert draw.lam == pytest.approx(1 - pasted.float().mean().item())
        one_hot = torch.nn.functional.one_hot(labels, 5).float()
        assert torch.allclose(targets, draw.lam * one_hot + (1 - draw.lam) * one_hot.flip(0))


def test_mix_prob_and_mix_switch_prob_choose_what_each_batch_gets():
    both = mixer("data.mixup_alpha=0.8", "data.cutmix_alpha=1.0", "data.mix_prob=0.6", "data.mix_switch_prob=0.25")
    kinds = [both.draw(epoch=0, micro_batch=i, height=8, width=8).kind for i in range(2000)]
    mixed = [k for k in kinds if k != "none"]
    assert len(mixed) / len(kinds) == pytest.approx(0.6, abs=0.04)
    assert mixed.count("cutmix") / len(mixed) == pytest.approx(0.25, abs=0.04)
    assert {mixer("data.cutmix_alpha=1.0").draw(epoch=0, micro_batch=i, height=8, width=8).kind
            for i in range(50)} == {"cutmix"}                                  # one alpha: no switch
    assert mixer() is None                                                     # both alphas 0: off


def test_mixup_multi_hot_targets_mix_linearly():
    clips, _ = batch(4)
    rows = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=torch.float32)
    m = mixer("data.mixup_alpha=0.4", num_classes=3)
    lam = m.draw(epoch=0, micro_batch=0, height=16, width=16).lam
    _, targets = m(clips, rows, epoch=0, micro_batch=0)
    assert torch.allclose(targets, lam * rows + (1 - lam) * rows.flip(0))


def test_soft_targets_take_label_smoothing_and_class_weights_as_the_hard_loss_does():
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    weight = torch.tensor([0.5, 1.0, 1.5, 2.0, 1.0])
    soft = torch.nn.functional.one_hot(labels, 5).float()
    for eps in (0.0, 0.1):
        criterion = Criterion(multi_label=False, label_smoothing=eps, weight=weight)
        smoothed = soft * (1 - eps) + eps / 5
        by_hand = -(weight * smoothed * logits.log_softmax(dim=1)).sum(dim=1).mean()
        assert criterion(logits, soft) == pytest.approx(by_hand.item(), rel=1e-5)
    assert Criterion(multi_label=False, label_smoothing=0.1)(logits, labels) == pytest.approx(
        Criterion(multi_label=False, label_smoothing=0.1)(logits, soft).item(), rel=1e-5)
    # multi-label: y (1 - eps) + eps / 2 per class, positives weighted by pos_weight
    rows = torch.tensor([[1, 0, 1, 0, 0]] * 6, dtype=torch.float32)
    pos_weight = torch.tensor([2.0, 1.0, 3.0, 1.0, 1.0])
    y = rows * 0.8 + 0.1
    p = logits.sigmoid()
    by_hand = -(pos_weight * y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert Criterion(multi_label=True, label_smoothing=0.2, weight=pos_weight)(logits, rows) == pytest.approx(
        by_hand.item(), rel=1e-5)


def test_mixup_runs_with_k_clips_per_video_and_resumes_to_the_same_weights(tmp_path, cache_dir, monkeypatch):
    """mixup and CutMix together, 2 clips per video: the mixer sees every micro-batch of 8 clips,
    changes the loss, and a run stopped after 3 steps and resumed ends with the uninterrupted
    run's weights (the draws come from (seed, epoch, micro-batch, rank))."""
    mixed = ["data.mixup_alpha=0.8", "data.cutmix_alpha=1.0", "data.num_clips=2", "trainer.precision=32"]
    calls = []
    real = BatchMixer.__call__
    monkeypatch.setattr(BatchMixer, "__call__", lambda self, clips, labels, **kw: calls.append(
        (clips.shape[0], kw["micro_batch"])) or real(self, clips, labels, **kw))
    make(tmp_path, *mixed, name="full").fit()
    assert calls[:4] == [(8, 0), (8, 1), (8, 2), (8, 3)] and len(calls) == 8
    make(tmp_path, "data.num_clips=2", "trainer.precision=32", "trainer.max_epochs=1", name="plain").fit()
    assert logged(tmp_path / "plain", "train/loss")[:4] != logged(tmp_path / "full", "train/loss")[:4]
    make(tmp_path, *mixed, "trainer.max_steps=3", name="cut").fit()
    make(tmp_path, *mixed, "trainer.resume=auto", name="cut").fit()
    full, cut = weights(tmp_path / "full/last.pt"), weights(tmp_path / "cut/last.pt")
    assert all(torch.equal(full[key], cut[key]) for key in full)


# ---------------------------------------------------------------- multi-label

def test_average_precision_matches_scikit_learn_with_ties_and_a_constant_scorer_gets_the_positive_rate():
    sklearn = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (40, 5), generator=g).float()                  # many ties
    targets = (torch.rand(40, 5, generator=g) < 0.3).float()
    targets[:, 4] = 0                                                             # a class without positives
    ap, positives = average_precision(scores, targets)
    for k in range(4):
        assert ap[k].item() == pytest.approx(sklearn.average_precision_score(targets[:, k], scores[:, k]))
    assert math.isnan(ap[4]) and positives.tolist() == targets.sum(dim=0).long().tolist()
    assert mean_average_precision(scores, targets) == pytest.approx(ap[:4].mean().item())
    constant = average_precision(torch.zeros(40, 5), targets)[0]
    assert torch.allclose(constant[:4], targets[:, :4].mean(dim=0).double())
    assert average_precision(torch.tensor([[0.9], [0.8], [0.1]]), torch.tensor([[1.0], [0.0], [1.0]]))[0][0] == \
        pytest.approx((1 / 1 + 2 / 3) / 2)                                      # by hand


def test_label_rows_and_positive_weights():
    rows = label_matrix([3, [0, 2], np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)], 4)
    assert rows.tolist() == [[0, 0, 0, 1], [1, 0, 1, 0], [1, 0, 0, 1]]
    assert positive_weights(rows).tolist() == [0.5, 1.0, 2.0, 0.5]                # negatives / positives; none: 1


def test_multi_label_trains_with_bce_and_pos_weight_and_eval_and_predict_follow(tmp_path, cache_dir, monkeypatch):
    """data.multi_label=true on the multi-label synthetic set (16 training videos, 8 validation
    videos, one or two of the 8 classes each): BCEWithLogitsLoss with pos_weight = negatives /
    positives of each class in the training list; validation reports mAP, which selects best.pt;
    eval gives the same mAP, per_class.csv holds each class's AP and positives, the dump's labels
    are (N, K) multi-hot; predict gives independent probabilities (sigmoids)."""
    from action3d.commands._checkpoint import load_trained
    from action3d.data.annotation_io import read_list_file
    from action3d.engine.data import resolve_data
    from action3d.engine.evaluate import evaluate
    from action3d.engine.predict import predict
    from action3d.engine.report import label_array, summary_table, write_report

    def rows(list_file) -> np.ndarray:
        hot = np.zeros((0, 8))
        for _, labels in read_list_file(list_file, multi_label=True):
            hot = np.vstack([hot, np.isin(np.arange(8), labels)])
        return hot

    seen = []
    real = loss_mod.F.binary_cross_entropy_with_logits

    def spy(logits, target, **kwargs):
        seen.append((target, kwargs["pos_weight"]))
        return real(logits, target, **kwargs)

    monkeypatch.setattr(loss_mod.F, "binary_cross_entropy_with_logits", spy)
    trainer = make(tmp_path, "data.multi_label=true", "trainer.class_weights=auto", "trainer.label_smoothing=0.2",
                   "trainer.precision=32")
    summary = trainer.fit()
    target, pos_weight = seen[0]
    positives = rows(trainer.data_cfg.train_list).sum(axis=0)
    assert positives.min() > 0 and pos_weight.tolist() == pytest.approx(list((16 - positives) / positives))
    assert target.shape == (4, 8) and target.unique().tolist() == pytest.approx([0.1, 0.9])   # y * 0.8 + 0.1
    maps = logged(tmp_path / "run", "val/map")
    assert summary["monitor"] == "map" and summary["best_top1"] is None and len(maps) == 2
    assert summary["best_value"] == pytest.approx(max(maps)) and summary["best_epoch"] == 1 + maps.index(max(maps))
    assert logged(tmp_path / "run", "val/top1") == []

    trained = load_trained(str(tmp_path / "run/best.pt"), torch.device("cpu"))
    result = evaluate(trained, resolve_data(trained.config.data), progress=False)
    assert result.report["metrics"]["map"] == pytest.approx(summary["best_value"], abs=1e-6)
    write_report(result.report, result.classes, tmp_path / "eval")
    lines = (tmp_path / "eval/per_class.csv").read_text().splitlines()
    assert lines[0] == "class_index,class_name,positives,ap" and len(lines) == 9
    val_positives = rows(trainer.data_cfg.val_list).sum(axis=0)
    assert [int(line.split(",")[2]) for line in lines[1:]] == val_positives.astype(int).tolist()
    assert all((line.split(",")[3] == "") == (n == 0) for line, n in zip(lines[1:], val_positives))
    assert "mAP" in summary_table(result.report) and not (tmp_path / "eval/confusion.png").exists()
    assert label_array(result.rows).shape == (8, 8)

    video = sorted(Path(trained.config.data.root).rglob("*.mp4"))[0]
    scores = predict(trained, [str(video)], topk=3)[0]["scores"]
    assert all(0 < s < 1 for s in scores) and abs(sum(scores) - 1) > 0.05     # independent, not a softmax


def test_multi_label_refusals_are_one_line():
    for overrides, words in (
            (["trainer.monitor=map"], "trainer.monitor=map is not allowed: mAP is the multi-label"),
            (["data.multi_label=true", "trainer.monitor=top1"], "trainer.monitor=top1 is not allowed"),
            (["data.multi_label=true", "data.sampler=balanced"], "data.sampler=balanced is not allowed")):
        with pytest.raises(Action3dError) as err:
            compose_config("train", overrides)
        assert str(err.value).startswith(words) and "\n" not in str(err.value)
    compose_config("train", ["data.multi_label=true", "trainer.monitor=loss"])


# ---------------------------------------------------------------- trainer.monitor and early stopping

def test_monitor_loss_selects_best_pt_by_the_lowest_val_loss(tmp_path, cache_dir):
    summary = make(tmp_path, "trainer.monitor=loss").fit()
    losses = logged(tmp_path / "run", "val/loss")
    assert summary["monitor"] == "loss" and summary["best_value"] == pytest.approx(min(losses))
    assert summary["best_epoch"] == 1 + losses.index(min(losses))
    assert torch.load(tmp_path / "run/best.pt", weights_only=True)["epoch"] == summary["best_epoch"]
    assert sweep.objective(summary) == summary["best_value"]


def test_early_stop_min_delta_is_the_least_change_that_counts():
    monitor = Monitor("top1", patience=2, min_delta=0.05)
    improved = [monitor.update({"top1": v}, epoch) for epoch, v in enumerate([0.5, 0.52, 0.53, 0.6, 0.61], 1)]
    assert improved == [True, True, True, True, True]          # best.pt follows every improvement
    assert monitor.waited == 1 and not monitor.exhausted       # 0.6 beat 0.5 + 0.05; 0.61 did not beat 0.65
    monitor.update({"top1": 0.4}, 6)
    assert monitor.exhausted and monitor.best == 0.61 and monitor.best_epoch == 5
    loss = Monitor("loss", patience=1)
    assert loss.update({"loss": 2.0}, 1) and loss.update({"loss": 1.5}, 2) and not loss.update({"loss": 1.6}, 3)
    assert loss.exhausted and not Monitor("loss").update({"loss": float("nan")}, 1)


def test_early_stopping_ends_the_run_says_why_and_a_resumed_run_keeps_the_count(tmp_path, cache_dir, caplog):
    """min_delta=1: no top-1 can beat the first by more, so patience 2 ends the run after epoch 3
    of 6; summary.json and the last log line say why; last.pt carries the count, so resuming
    ends at once, and a resume with more patience trains on."""
    stopping = ["trainer.max_epochs=6", "trainer.early_stop_patience=2", "trainer.early_stop_min_delta=1.0"]
    with caplog.at_level(logging.INFO, logger="action3d"):
        summary = make(tmp_path, *stopping).fit()
    assert (summary["status"], summary["epochs"], summary["steps"]) == ("early_stopped", 3, 12)
    assert summary["stop_reason"].startswith("early stop: val top1 did not improve by more than 1 for 2 validations")
    assert json.loads((tmp_path / "run/summary.json").read_text())["stop_reason"] == summary["stop_reason"]
    last = [r.getMessage() for r in caplog.records if r.name == "action3d"][-1]
    assert last == f"run ended: {summary['stop_reason']}"
    assert torch.load(tmp_path / "run/last.pt", weights_only=True)["monitor"]["waited"] == 2
    resumed = make(tmp_path, *stopping, "trainer.resume=auto").fit()
    assert (resumed["status"], resumed["steps"]) == ("early_stopped", 12)
    more = make(tmp_path, "trainer.max_epochs=6", "trainer.early_stop_patience=3", "trainer.early_stop_min_delta=1.0",
                "trainer.resume=auto").fit()
    assert (more["status"], more["epochs"]) == ("early_stopped", 4)


def test_a_search_minimises_the_loss_and_a_failed_job_ranks_last_either_way():
    search = ["hydra/sweeper=optuna", "optim.lr=interval(0.001,0.1)"]
    loss_cfg = compose_config("train", ["trainer.monitor=loss"])
    assert sweep.search_defaults("train", search, [loss_cfg])[0] == "hydra.sweeper.direction=minimize"
    assert sweep.search_defaults("train", search, [compose_config("train", [])])[0] == \
        "hydra.sweeper.direction=maximize"
    assert sweep.objective({"monitor": "loss", "best_value": None}) == math.inf
    assert sweep.objective({"monitor": "map", "best_value": None}) == sweep.FAILED_VALUE
    assert sweep.objective({"monitor": "map", "best_value": 0.4, "best_top1": None}) == 0.4


def test_sweep_table_ranks_by_the_monitor(tmp_path):
    for job, value in (("0", 0.9), ("1", 0.4), ("2", None)):
        (tmp_path / job).mkdir()
        (tmp_path / job / "summary.json").write_text(json.dumps(
            {"monitor": "loss", "best_value": value, "best_top1": None, "best_epoch": 1, "status": "finished",
             "overrides": [f"optim.lr=0.{job}1"]}))
    rows = sweep.write_summary(tmp_path)
    assert [r["best"] for r in rows] == [False, True, False]
    lines = (tmp_path / "sweep_summary.md").read_text().splitlines()
    assert "best val loss" in lines[0] and lines[2].startswith("| 1 | `optim.lr=0.11` | 0.4000 |")


def test_trackers_are_the_choices_of_trainer_loggers():
    assert tuple(train_mod.TRACKERS) == LOGGERS
