"""scripts/gpu_check.py on a machine without CUDA: one line, exit 0. Its checks are valid command
lines, and its verification reads what a real run writes (its CPU mode, one check)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from action3d.commands._hydra import compose_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_script", SCRIPTS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu_check.json"
    assert load_gpu_check().main(["--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines() == [
        "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check"]
    assert captured.err == "" and not out.exists()


def test_every_check_is_a_valid_command_line(tmp_path, monkeypatch):
    """The overrides of every CUDA check compose and validate (key names, values), so the first
    run on a GPU machine does not stop at a typo."""
    monkeypatch.setenv("WORLD_SIZE", "2")   # as torchrun sets it for the DDP check
    gpu_check = load_gpu_check()
    checks = {c.name: c for c in gpu_check.build_checks(tmp_path, device="cuda", gpus=2)}
    assert list(checks) == ["fp32", "bf16", "fp16_gradscaler", "channels_last", "compile", "ddp_syncbn",
                            "eval_torchrun", "bench_train"]
    jobs = {}
    for check in checks.values():
        if "action3d" in check.argv:
            start = check.argv.index("action3d") + 2          # -m action3d COMMAND overrides...
            jobs.setdefault(check.argv[start - 1], []).append(check.argv[start:])
    assert checks["ddp_syncbn"].argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in checks["ddp_syncbn"].argv and "trainer.sync_bn=true" in checks["ddp_syncbn"].argv
    assert "trainer.precision=16" in checks["fp16_gradscaler"].argv and "trainer.compile=true" in checks["compile"].argv
    assert len(jobs["train"]) == 6 and len(jobs["eval"]) == 1
    for command, overrides in jobs.items():
        for job in overrides:
            assert compose_config(command, job).trainer.device == "cuda"
    assert checks["fp32"].expect == {"precision": "32", "steps": 8}              # 32 videos / batch 4
    assert checks["ddp_syncbn"].expect == {"precision": "bf16", "steps": 4}      # per process
    one_gpu = {c.name: c for c in gpu_check.build_checks(tmp_path, device="cuda", gpus=1)}
    assert one_gpu["ddp_syncbn"].skip == "needs 2 or more GPUs for DDP over NCCL (1 visible)"


@pytest.mark.slow
def test_cpu_mode_runs_a_check_and_writes_the_report(tmp_path, capsys):
    """The script's own test mode: trainer.device=cpu; a real training run, then its verification."""
    out = tmp_path / "gpu_check.json"
    args = ["--device", "cpu", "--gpus", "1", "--only", "fp32", "--out", str(out)]
    assert load_gpu_check().main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["passed"] and [row["result"] for row in report["results"]] == ["pass"]
    assert "fp32, default layout" in printed and "1 passed, 0 failed, 0 skipped" in printed


def test_a_run_that_wrote_the_wrong_thing_fails_with_the_reason(tmp_path):
    gpu_check = load_gpu_check()
    check = {c.name: c for c in gpu_check.build_checks(tmp_path, device="cuda", gpus=1)}["fp16_gradscaler"]
    with pytest.raises(gpu_check.MissingOutput, match="no summary.json written"):
        gpu_check.verify_train(check)
    check.run_dir.mkdir(parents=True)
    summary = {"status": "finished", "steps": 4, "precision": "32", "best_top1": 0.5}
    (check.run_dir / "summary.json").write_text(json.dumps(summary))
    assert gpu_check.verify_train(check) == "ran at precision 32, expected 16"
    (check.run_dir / "summary.json").write_text(json.dumps({**summary, "precision": "16"}))
    (check.run_dir / "metrics.jsonl").write_text('{"step": 1, "train/loss": NaN}\n')
    assert gpu_check.verify_train(check) == "losses [nan]: expected finite values"
    failing = ("E1130 boom\nTraceback...\nValueError: bad\n"
               "action3d train: error: trainer.device=cuda but no CUDA\n=====\n")
    assert gpu_check.failure_line(failing) == "action3d train: error: trainer.device=cuda but no CUDA"
