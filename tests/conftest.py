"""Shared fixtures: a per-session synthetic-data cache and a runner for the real command line."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from action3d.files import exclusive_lock

# In-process tests import the Optuna sweeper too; the CLI silences its SQLAlchemy notice the same way.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

# `make test` runs the suite in pytest-xdist worker processes (`-n TEST_WORKERS`, one per core).
# Each worker computes with one intra-op thread: two workers of two spinning OpenMP threads each on
# two cores are many times slower than two of one. Set before any test module imports torch; the
# subprocesses the tests start inherit it. A plain `pytest` run (no workers) keeps torch's default.
IN_WORKER = "PYTEST_XDIST_WORKER" in os.environ
if IN_WORKER:
    os.environ["OMP_NUM_THREADS"] = "1"

# A small but learnable configuration: 8 classes x 2 training videos, 4-frame 32-px clips.
SMALL = [
    "data.synthetic.train_per_class=2",
    "data.synthetic.val_per_class=1",
    "data.synthetic.num_frames=12",
    "data.synthetic.size=32",
    "data.clip_len=4",
    "data.frame_interval=2",
    "data.short_side=32",
    "data.crop_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "model.base_channels=8",
    "trainer.max_epochs=2",
    "trainer.log_every=1",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One synthetic-data cache for the whole session (generated on first use), shared by the
    session's xdist workers: each set is generated once, under the lock action3d's cache takes,
    and what the tests train into it once, under `cache_lock`."""
    if IN_WORKER:  # the workers' temporary folders are siblings under the session's own
        path = tmp_path_factory.getbasetemp().parent / "action3d-cache"
        path.mkdir(exist_ok=True)
    else:
        path = tmp_path_factory.mktemp("action3d-cache")
    os.environ["ACTION3D_CACHE"] = str(path)
    return path


def cache_lock(path: Path):
    """Hold it while checking for and making `path` in the shared cache: another worker that
    needs the same file waits for it instead of making it again (the lock synthetic sets take)."""
    return exclusive_lock(path.with_name(path.name + ".lock"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: List[str], *, cwd: Path, cache: Path, timeout: int = 300, torchrun: Optional[int] = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `action3d ARGS` (or `torchrun --nproc_per_node=N -m action3d ARGS`) in a subprocess."""
    env = {**os.environ, "ACTION3D_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "action3d", *args]
    else:
        cmd = [sys.executable, "-m", "action3d", *args]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        command = " ".join(args)
        tails = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        raise AssertionError(f"{command} failed ({result.returncode}):\n{tails}")
    return result
