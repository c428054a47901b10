"""Two gloo processes under torchrun: unused stages, per-rank random state, elastic restart."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from action3d.engine import faults

from conftest import SMALL, free_port, run_cli

pytestmark = pytest.mark.slow

# Dropout on (tiny's 0.2): each rank draws its own masks, so a resume that gave every rank
# rank 0's random state would end with other weights.
COMMON = [*SMALL, "data.batch_size=2"]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    run_cli(["train", *COMMON, "hydra.run.dir=run"], cwd=root, cache=cache_dir, torchrun=2, check=True)
    state = load(root / "run/last.pt")
    assert (state["epoch"], state["step"]) == (2, 8) and len(state["rng_per_rank"]) == 2
    return root / "run"


def test_out_indices_before_the_last_stage_trains_under_ddp(tmp_path, cache_dir):
    run_cli(["train", *COMMON, "model.out_indices=[2]", "trainer.max_steps=3", "hydra.run.dir=run"],
            cwd=tmp_path, cache=cache_dir, torchrun=2, check=True)
    state = load(tmp_path / "run/last.pt")
    assert state["step"] == 3 and not any(k.startswith("backbone.layer4") for k in state["model"])


def test_ddp_resume_gives_each_rank_its_own_random_state(uninterrupted, tmp_path, cache_dir):
    run_cli(["train", *COMMON, "trainer.max_steps=3", "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir,
            torchrun=2, check=True)
    cut = load(tmp_path / "run/last.pt")
    assert not torch.equal(cut["rng_per_rank"][0]["torch"], cut["rng_per_rank"][1]["torch"])
    run_cli(["train", *COMMON, "trainer.resume=auto", "hydra.run.dir=run"], cwd=tmp_path, cache=cache_dir,
            torchrun=2, check=True)
    assert_same_weights(load(uninterrupted / "last.pt")["model"], load(tmp_path / "run/last.pt")["model"])


def test_elastic_restart_after_a_rank_is_killed_ends_with_the_uninterrupted_weights(uninterrupted, tmp_path,
                                                                                   cache_dir):
    """SIGKILL rank 1 in step 6 (epoch 2); torchrun restarts both ranks; they resume from the last
    timed checkpoint and end with the weights of the uninterrupted 2-process run. (Restarts are
    allowed up to 3 times: on a crowded machine gloo's rendezvous itself can time out once.)"""
    env = {**os.environ, "ACTION3D_CACHE": str(cache_dir), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           faults.ENV_VAR: "kill:train_step:6@1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--max-restarts=3",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", "-m", "action3d", "train",
               *COMMON, "trainer.resume=auto", "trainer.ckpt_every_minutes=1e-9", "hydra.run.dir=run"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "exitcode: -9" in output, output[-4000:]                     # the fault did kill rank 1
    assert "resumed from" in output and "action3d train finished" in output
    assert_same_weights(load(uninterrupted / "last.pt")["model"], load(tmp_path / "run/last.pt")["model"])
