"""`action3d train` end to end on the synthetic dataset (small models and clips)."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SMALL, run_cli


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0.0:
            assert torch.equal(a[key], b[key]), key
        else:
            difference = (a[key] - b[key]).abs().max()
            assert torch.allclose(a[key].float(), b[key].float(), atol=atol, rtol=0), (key, difference)


def test_short_run_writes_checkpoints_tensorboard_and_metrics(tmp_path, cache_dir):
    result = run_cli(["train", *SMALL, "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir, check=True)
    run = tmp_path / "run"
    assert "action3d train finished: best val top-1" in result.stdout
    for name in ("last.pt", "best.pt", "metrics.jsonl", "summary.json", "classes.txt", "train.log"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "rng", "sampler_epoch", "config",
                "classes", "best_top1"):
        assert key in state, key
    assert state["epoch"] == 2 and state["step"] == 8          # 16 clips / batch 4 = 4 steps per epoch
    assert len(state["classes"]) == 8 and state["config"]["model"]["num_classes"] == 8
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"train/loss", "train/lr", "train/clips_per_s", "train/data_wait", "val/top1", "val/top5"} <= keys
    assert all(r["train/loss"] > 0 for r in records if "train/loss" in r)


def test_resumed_run_ends_with_the_same_weights(tmp_path, cache_dir):
    """Stop after 3 of 8 steps (mid-epoch), resume with trainer.resume=auto: same final weights.
    Two loader workers: a sample's augmentation must not depend on which worker loads it."""
    common = [*SMALL, "data.num_workers=2"]
    run_cli(["train", *common, "hydra.run.dir=full"], cwd=tmp_path, cache=cache_dir, check=True)
    part = run_cli(["train", *common, "trainer.max_steps=3", "hydra.run.dir=cut"], cwd=tmp_path, cache=cache_dir,
                   check=True)
    assert "action3d train max_steps" in part.stdout
    state = torch.load(tmp_path / "cut/last.pt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["step"], state["batch_in_epoch"]) == (0, 3, 3)
    resumed = run_cli(["train", *common, "trainer.resume=auto", "hydra.run.dir=cut"], cwd=tmp_path,
                      cache=cache_dir, check=True)
    assert "resumed from" in resumed.stdout + resumed.stderr
    assert_same_weights(weights(tmp_path / "full/last.pt"), weights(tmp_path / "cut/last.pt"))


def test_sigterm_saves_a_checkpoint_and_exits_0_then_resumes(tmp_path, cache_dir):
    args = [*SMALL, "trainer.max_epochs=200", "hydra.run.dir=run"]
    env = {**os.environ, "ACTION3D_CACHE": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "action3d", "train", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and "train/loss" in metrics.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-2000:]
    assert "SIGTERM received: saved" in output
    state = torch.load(tmp_path / "run/last.pt", map_location="cpu", weights_only=True)
    assert state["step"] >= 1
    again = run_cli(["train", *args, "trainer.resume=auto", f"trainer.max_steps={state['step'] + 1}"],
                    cwd=tmp_path, cache=cache_dir, check=True)
    assert "resumed from" in again.stdout + again.stderr
    assert torch.load(tmp_path / "run/last.pt", map_location="cpu", weights_only=True)["step"] == state["step"] + 1


def test_non_finite_loss_stops_with_a_message_naming_the_step(tmp_path, cache_dir):
    # std=1e-38 turns pixels into +-inf: the first conv sums inf - inf and the loss is NaN at once.
    result = run_cli(["train", *SMALL, "data.std=[1e-38,1e-38,1e-38]", "hydra.run.dir=run"], cwd=tmp_path,
                     cache=cache_dir)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "non-finite loss" in lines[-1] and "at step 1 " in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run/last.pt").exists()


def test_two_job_sweep_writes_the_summary_table(tmp_path, cache_dir):
    result = run_cli(["train", "-m", *SMALL, "trainer.max_epochs=1", "optim.lr=0.1,0.02", "hydra.sweep.dir=sweep"],
                     cwd=tmp_path, cache=cache_dir, check=True)
    sweep = tmp_path / "sweep"
    rows = list(csv.DictReader(open(sweep / "sweep_summary.csv")))
    assert sorted(r["overrides"] for r in rows) == ["optim.lr=0.02", "optim.lr=0.1"]
    assert all(0.0 <= float(r["best_top1"]) <= 1.0 for r in rows)
    assert "| job | overrides | best val top-1 (%)" in (sweep / "sweep_summary.md").read_text()
    assert "sweep summary (2 jobs)" in result.stdout
    assert len(list(sweep.glob("*/last.pt"))) == 2


@pytest.mark.slow
def test_two_process_gloo_run_equals_one_process_with_the_same_global_batch(tmp_path, cache_dir):
    """torchrun with 2 CPU processes x batch 2 == 1 process x batch 4, after 3 optimiser steps.

    BN statistics of a per-process batch differ from the global batch's, so BN runs in eval mode
    here (model.norm_eval); dropout is off; fp32 (bf16 sums a batch of 4 and two of 2 with
    different rounding). One run directory: rank 1 writes nothing.
    """
    common = [*SMALL, "model.norm_eval=true", "model.dropout=0", "trainer.max_steps=3", "trainer.precision=32"]
    run_cli(["train", *common, "data.batch_size=4", "hydra.run.dir=single"], cwd=tmp_path, cache=cache_dir, check=True)
    result = run_cli(["train", *common, "data.batch_size=2", "hydra.run.dir=ddp"], cwd=tmp_path, cache=cache_dir,
                     torchrun=2, check=True)
    assert result.stdout.count("action3d train max_steps") == 1, "only rank 0 prints the summary"
    state = torch.load(tmp_path / "ddp/last.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 3
    assert_same_weights(weights(tmp_path / "single/last.pt"), state["model"], atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]
