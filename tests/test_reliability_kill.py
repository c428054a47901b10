"""A training run loses nothing to kill -9, a full disk or Ctrl-C (CPU, fixed seed).

Faults are injected at exact moments with the test hook `ACTION3D_FAULT=[ACTION:]POINT:N`
(`action3d.engine.faults`). Each case is compared with one uninterrupted reference run. The
runs are subprocesses that spend most of their time starting up, so the reference and the kill
cases run two at a time in a module fixture; each case's test then checks what was recorded.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest
import torch

from action3d.engine import faults
from action3d.errors import Action3dError

from conftest import SMALL


def train(args, *, cwd: Path, cache: Path, fault: Optional[str] = None, check: bool = False,
          timeout: int = 300) -> subprocess.CompletedProcess:
    """`action3d train ARGS` in a subprocess, with the fault hook armed when `fault` is given."""
    env = {**os.environ, "ACTION3D_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop(faults.ENV_VAR, None)
    if fault:
        env[faults.ENV_VAR] = fault
    result = subprocess.run([sys.executable, "-m", "action3d", "train", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"train {args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def temporaries(run: Path) -> list:
    return sorted(p.name for p in run.iterdir() if ".tmp" in p.name)


def assert_same_checkpoints(run: Path, reference: Path) -> None:
    """Same checkpoint files, same weights (bit for bit) and the same bookkeeping as the reference."""
    assert sorted(p.name for p in run.glob("*.pt")) == sorted(p.name for p in reference.glob("*.pt"))
    for path in reference.glob("*.pt"):
        want, got = load(path), load(run / path.name)
        assert want["model"].keys() == got["model"].keys()
        for key in want["model"]:
            assert torch.equal(want["model"][key], got["model"][key]), f"{path.name}: {key} differs"
        for key in ("epoch", "step", "batch_in_epoch", "best_epoch", "best_top1"):
            assert got[key] == want[key], f"{path.name}: {key} {got[key]} != {want[key]}"
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (run, reference))
    assert (summary["status"], summary["best_epoch"], summary["steps"]) == \
        (expected["status"], expected["best_epoch"], expected["steps"])


# (fault, temporary file the kill leaves behind or None, extra overrides)
TIMED = ["trainer.ckpt_every_minutes=1e-9"]  # a timed last.pt at every step boundary
KILL_POINTS = {
    "mid-epoch, in step 2 of epoch 2": ("train_step:6", None, []),
    "during validation of epoch 2": ("validate:2", None, []),
    "last.pt of epoch 2 half written, before its rename": ("ckpt_write/last.pt:2", ".last.pt.tmp-", []),
    "right after last.pt of epoch 1 was renamed": ("ckpt_renamed/last.pt:1", None, []),
    "best.pt of epoch 1 half written": ("ckpt_write/best.pt:1", ".best.pt.tmp-", []),
    "right after a timed last.pt in the middle of epoch 1": ("ckpt_renamed/last.pt:3", None, TIMED),
}


# Randomness beyond crops and flips: mixup and CutMix (drawn per seed, epoch, micro-batch and rank) and
# RandAugment in the loader (drawn per seed, epoch and sample: 2 ops per clip at magnitude ~ N(9, 0.5)).
AUGMENTED = ["data.mixup_alpha=0.8", "data.cutmix_alpha=1.0", "data.rand_augment_n=2", "data.rand_augment_m=9"]


@dataclass
class KillCase:
    run: Path
    killed: subprocess.CompletedProcess
    unreadable: List[str]          # checkpoints under their final name that failed to load after the kill
    leftovers: List[str]           # temporary files right after the kill
    had_last: bool                 # last.pt existed after the kill (else the rerun starts afresh)
    resumed: subprocess.CompletedProcess


def kill_then_resume(cwd: Path, fault: str, cache: Path, extra: List[str]) -> KillCase:
    cwd.mkdir()
    args = [*SMALL, *extra, "hydra.run.dir=run"]
    killed = train(args, cwd=cwd, cache=cache, fault=fault)
    unreadable = []
    for path in sorted((cwd / "run").glob("*.pt")):
        try:
            load(path)
        except Exception as err:  # noqa: BLE001 - any failure to load is what this records
            unreadable.append(f"{path.name}: {err}")
    leftovers, had_last = temporaries(cwd / "run"), (cwd / "run/last.pt").exists()
    resumed = train([*args, "trainer.resume=auto"], cwd=cwd, cache=cache)
    return KillCase(cwd / "run", killed, unreadable, leftovers, had_last, resumed)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> Path:
    """One uninterrupted SMALL run (2 epochs x 4 steps) that every case of this module must equal."""
    root = tmp_path_factory.mktemp("reference")
    train([*SMALL, "hydra.run.dir=run"], cwd=root, cache=cache_dir, check=True)
    state = load(root / "run/last.pt")
    assert (state["epoch"], state["step"]) == (2, 8)
    return root / "run"


@pytest.fixture(scope="module")
def kill_cases(tmp_path_factory, cache_dir) -> dict:
    """Every kill case (killed, checked, resumed), two processes at a time."""
    root = tmp_path_factory.mktemp("kills")
    with ThreadPoolExecutor(max_workers=2) as pool:
        cases = {name: pool.submit(kill_then_resume, root / f"case{i}", fault, cache_dir, extra)
                 for i, (name, (fault, _, extra)) in enumerate(KILL_POINTS.items())}
        return {name: case.result() for name, case in cases.items()}


@pytest.fixture(scope="module")
def augmented(tmp_path_factory, cache_dir) -> tuple:
    """(an uninterrupted AUGMENTED run, the same run killed in step 2 of epoch 2 and resumed from
    the timed last.pt of step 1 of epoch 2), run side by side."""
    root = tmp_path_factory.mktemp("augmented")

    def uninterrupted() -> Path:
        (root / "full").mkdir()
        train([*SMALL, *AUGMENTED, "hydra.run.dir=run"], cwd=root / "full", cache=cache_dir, check=True)
        return root / "full/run"

    with ThreadPoolExecutor(max_workers=2) as pool:
        full = pool.submit(uninterrupted)
        case = pool.submit(kill_then_resume, root / "killed", "train_step:6", cache_dir, [*AUGMENTED, *TIMED])
        return full.result(), case.result()


# ------------------------------------------------------------------ the hook itself

def test_fault_spec_parsing_and_counting():
    assert faults.parse("train_step:3") == ("kill", "train_step", 3, None)
    assert faults.parse("enospc:ckpt_write/last.pt:2") == ("enospc", "ckpt_write/last.pt", 2, None)
    assert faults.parse("kill:train_step:6@1") == ("kill", "train_step", 6, 1)
    for bad in ("train_step", "train_step:0", "train_step:x", "explode:train_step:1", "nowhere:1", "a:b:c:1",
                "train_step:1@one"):
        with pytest.raises(Action3dError, match=faults.ENV_VAR):
            faults.parse(bad)
    try:
        faults.configure("enospc:ckpt_write:3")      # every file counts: best.pt, last.pt, best.pt
        faults.maybe_fault("ckpt_write/best.pt")
        faults.maybe_fault("train_step")              # another point: not counted
        faults.maybe_fault("ckpt_write/last.pt")
        with pytest.raises(OSError) as info:
            faults.maybe_fault("ckpt_write/best.pt")
        assert info.value.errno == errno.ENOSPC
        faults.maybe_fault("ckpt_write/best.pt")      # only the N-th occurrence fails
        faults.configure("enospc:ckpt_write/last.pt:1")
        faults.maybe_fault("ckpt_write/best.pt")      # a detail narrows the point to one file
        with pytest.raises(OSError):
            faults.maybe_fault("ckpt_write/last.pt")
        faults.configure("enospc:train_step:1@1")    # another rank's fault: this process (rank 0) ignores it
        faults.maybe_fault("train_step")
    finally:
        faults.configure(None)
    faults.maybe_fault("ckpt_write/last.pt")          # disarmed: nothing happens


def test_kill_fault_sends_sigkill_at_the_nth_occurrence(tmp_path):
    code = ("from action3d.engine.faults import maybe_fault\n"
            "for i in range(1, 5):\n"
            "    print(i, flush=True)\n"
            "    maybe_fault('validate')\n")
    env = {**os.environ, faults.ENV_VAR: "validate:3"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["1", "2", "3"]


# ------------------------------------------------------------------ kill -9, then trainer.resume=auto

@pytest.mark.slow
@pytest.mark.parametrize("name", KILL_POINTS)
def test_kill_9_then_resume_ends_with_the_uninterrupted_weights(name, kill_cases, reference):
    fault, leftover, extra = KILL_POINTS[name]
    case: KillCase = kill_cases[name]
    assert case.killed.returncode == -signal.SIGKILL, f"{fault} was never reached:\n{case.killed.stderr[-2000:]}"
    assert case.unreadable == [], "a checkpoint under its final name is unreadable after kill -9"
    if leftover:                              # the kill did land inside that file's write
        assert any(tmp.startswith(leftover) for tmp in case.leftovers), case.leftovers
    assert case.resumed.returncode == 0, case.resumed.stderr[-3000:]
    assert ("resumed from" if case.had_last else "starting a new run") in case.resumed.stdout + case.resumed.stderr
    assert "action3d train finished" in case.resumed.stdout
    assert_same_checkpoints(case.run, reference)
    assert temporaries(case.run) == [], "the resumed run removes what the killed write left behind"
    if extra == TIMED:                        # it resumed from the middle of epoch 1
        assert "(batch 2 of the epoch)" in case.resumed.stdout + case.resumed.stderr


@pytest.mark.slow
def test_kill_9_mid_epoch_with_batch_mixing_then_resume_is_bit_identical(augmented):
    """Resumed in the middle of an epoch, the mixing draws of the remaining micro-batches and the
    RandAugment draws of their clips are those of the uninterrupted run: the same weights bit for
    bit, the same bookkeeping."""
    reference, case = augmented
    assert case.killed.returncode == -signal.SIGKILL, case.killed.stderr[-2000:]
    assert case.resumed.returncode == 0 and case.had_last, case.resumed.stderr[-3000:]
    assert "(batch 1 of the epoch)" in case.resumed.stdout + case.resumed.stderr
    assert_same_checkpoints(case.run, reference)


# ------------------------------------------------------------------ full disk

@pytest.mark.slow
def test_full_disk_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, cache_dir):
    args = [*SMALL, "hydra.run.dir=run"]
    run = tmp_path / "run"
    full = train(args, cwd=tmp_path, cache=cache_dir, fault="enospc:ckpt_write/last.pt:2")
    assert full.returncode == 1
    errors = [line for line in full.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"action3d train: error: could not write checkpoint {run / 'last.pt'}: No space left on "
                      "device; the previous checkpoint there is unchanged"], full.stderr[-2000:]
    assert full.stderr.rstrip().endswith(errors[0]) and "Traceback" not in full.stderr
    previous = load(run / "last.pt")
    assert (previous["epoch"], previous["step"]) == (1, 4)        # epoch 1's, intact
    assert temporaries(run) == []
    assert load(run / "best.pt")["epoch"] == 1


# ------------------------------------------------------------------ Ctrl-C with loader workers

@pytest.mark.slow
def test_ctrl_c_with_loader_workers_saves_then_resumes_to_the_same_weights(reference, tmp_path, cache_dir):
    """Ctrl-C signals the whole foreground process group, data-loader workers included; the
    trainer still saves and exits 0 (SIGTERM alone is in test_train.py)."""
    args = [*SMALL, "data.num_workers=2", "hydra.run.dir=run"]
    env = {**os.environ, "ACTION3D_CACHE": str(cache_dir), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop(faults.ENV_VAR, None)
    proc = subprocess.Popen([sys.executable, "-m", "action3d", "train", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.time() + 180
    started = lambda: metrics.exists() and "train/loss" in metrics.read_text()  # noqa: E731
    while time.time() < deadline and proc.poll() is None and not started():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-2000:]
    assert "SIGINT received: saved" in output and "Traceback" not in output
    state = load(tmp_path / "run/last.pt")
    assert 1 <= state["step"] < 8, "stopped part-way"

    train([*args, "trainer.resume=auto"], cwd=tmp_path, cache=cache_dir, check=True)
    assert_same_checkpoints(tmp_path / "run", reference)
