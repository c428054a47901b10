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
def test_quick_cpu_run_writes_every_section(tmp_path, capsys):
    """`--device cpu --quick`: every section but nvdec runs on the CPU (tiny model, one step, no
    compile, one loader worker; correctness in a process of its own, as every section on CUDA),
    and the JSON has one key per section beside the versions. About 20 s on the quiet 2-core EPYC."""
    out = tmp_path / "gpu_check.json"
    args = ["--device", "cpu", "--quick", "--isolate", "correctness", "--out", str(out)]
    assert load_gpu_check().main(args) == 0
    report = json.loads(out.read_text())
    for key in ("torch", "cuda", "cudnn", "driver", "machine", "ceiling", "correctness", "nvdec", "loader", "paths",
                "verdict"):
        assert key in report, key
    assert report["passed"] and report["settings"]["isolated"] == ["correctness"]
    assert {report[k]["status"] for k in ("ceiling", "correctness", "loader", "paths", "verdict")} == {"ok"}
    assert report["nvdec"] == {"status": "skipped", "reason": "NVDEC needs an NVIDIA GPU (--device cpu)",
                               "seconds": report["nvdec"]["seconds"]}
    assert report["ceiling"]["compile"]["status"] == "skipped"
    rows = report["ceiling"]["results"]
    assert [(r["preset"], r["precision"], r["channels_last"]) for r in rows] == [
        ("tiny", "bf16", True), ("tiny", "bf16", False), ("tiny", "fp32", True), ("tiny", "fp32", False)]
    assert all(r["status"] == "ok" and r["clips_per_s"] > 0 and r["steps_timed"] == 1 for r in rows)
    (correct,) = report["correctness"]["results"]
    assert correct["passed"] and correct["logits"]["clips"] == 8 and correct["layers"]["convs"] > 0
    # no slow fallback kernel, except bf16's on a CPU without native bf16 (AVX2 only), said so
    assert correct["profile"]["passed"]
    assert not correct["profile"]["slow_kernels"] or "no native bf16" in correct["profile"]["note"]
    assert report["loader"]["workers"] == [1] and report["loader"]["per_core"]["prepared"]["clips_per_s_per_core"] > 0
    paths = {r["check"]: r["result"] for r in report["paths"]["results"]}
    assert paths["fp32"] == "pass" and paths["syncbn_world1"] == "skip"
    (verdict,) = report["verdict"]["presets"]
    assert verdict["preset"] == "tiny" and verdict["sources"]["prepared"]["bound"] in ("loader-bound", "GPU-bound")
    printed = capsys.readouterr().out
    assert "[correctness] in its own process" in printed and "gpu_check: passed" in printed


def test_sections_out_of_budget_are_skipped_and_the_report_still_written(tmp_path):
    out = tmp_path / "gpu_check.json"
    assert load_gpu_check().main(["--device", "cpu", "--quick", "--only", "ceiling,loader", "--budget-s", "0.2",
                                  "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["ceiling"]["status"] == report["loader"]["status"] == "skipped"
    assert report["ceiling"]["reason"] == "time budget spent"
    assert report["nvdec"] == {"status": "not run", "reason": "not in --only"}


def test_only_names_sections_or_checks(capsys):
    gpu_check = load_gpu_check()
    assert gpu_check.selection(None)[0] == list(gpu_check.SECTIONS)
    assert gpu_check.selection("nvdec,ceiling") == (["ceiling", "nvdec"], None, {"nvdec", "ceiling"})
    assert gpu_check.selection("fp32,compile")[:2] == (["paths"], ["fp32", "compile"])
    assert gpu_check.main(["--device", "cpu", "--only", "ceilings"]) == 2
    assert "--only ceilings: expected some of correctness, ceiling" in capsys.readouterr().err


def test_the_verdict_sizes_the_loader_for_each_ceiling():
    report = {"ceiling": {"results": [
        {"preset": "r3d_18", "precision": "bf16", "channels_last": True, "compile": False, "batch": 32,
         "status": "ok", "clips_per_s": 600.0, "frames": 16, "size": 112},
        {"preset": "r3d_18", "precision": "fp32", "channels_last": True, "status": "ok", "clips_per_s": 900.0}],
        "compile": {"results": [{"preset": "r3d_18", "precision": "bf16", "channels_last": True, "compile": True,
                                 "batch": 32, "status": "ok", "clips_per_s": 800.0, "frames": 16, "size": 112}]}},
        "loader": {"per_core": {"prepared": {"clips_per_s_per_core": 100.0}, "raw": {"clips_per_s_per_core": 20.0}}}}
    verdict = load_gpu_check().section_verdict(report, cpus=16)
    (entry,) = verdict["presets"]
    assert entry["ceiling_clips_per_s"] == 800.0 and entry["ceiling_config"]["compile"]    # bf16 only, the best
    assert entry["sources"]["prepared"] == {"loader_clips_per_s_per_core": 100.0, "loader_clips_per_s": 1500.0,
                                            "bound": "GPU-bound", "cores_needed": 8.0}
    assert entry["sources"]["raw"]["bound"] == "loader-bound" and entry["sources"]["raw"]["cores_needed"] == 40.0
    assert "note" not in entry
    assert load_gpu_check().section_verdict({"ceiling": {}, "loader": {}}, cpus=16)["status"] == "skipped"


def test_correctness_judges_kernels_apart_from_the_networks_amplification():
    gpu_check = load_gpu_check()
    reference = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.99]])
    close = gpu_check.compare_logits(reference, reference + 0.01)
    assert close["passed"] and close["relative"] == pytest.approx(0.01 / 3)
    tie = gpu_check.compare_logits(reference, reference + torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.05]]))
    assert not tie["passed"] and tie["top1_flips"] == tie["flips_near_ties"] == 1
    row = {"logits": tie, "sensitivity": 0.02, "layers": {"passed": True}, "profile": {"passed": True}}
    assert gpu_check.judge(row)[0]                        # a near tie within the network's own sensitivity
    assert not gpu_check.judge({**row, "sensitivity": 0.001})[0]
    assert gpu_check.judge({**row, "layers": {"passed": False, "worst": "backbone.conv1.conv",
                                              "max_relative": 0.3}}) == (
        False, "conv backbone.conv1.conv: bf16 off by 0.3 of max |fp32|")
    slow = {**row, "profile": {"passed": False, "slow_kernels": ["aten::slow_conv3d_forward"]}}
    assert gpu_check.judge(slow) == (False, "slow kernels aten::slow_conv3d_forward")


def test_nvdec_probe_says_why_it_is_unavailable(tmp_path):
    """Here (no NVIDIA driver) the h264_cuvid probe fails cleanly, with FFmpeg's reason."""
    from action3d.data.video_writer import write_video

    path = tmp_path / "probe.mp4"
    write_video(path, torch.randint(0, 255, (4, 32, 48, 3), dtype=torch.uint8).numpy(), fps=25)
    probe = load_gpu_check().probe_cuvid(str(path))
    if not probe["available"]:
        assert probe["error"]


def test_carry_names_what_the_check_imports_and_the_command_installs_it():
    from importlib import metadata

    gpu_check = load_gpu_check()
    assert {"av", "hydra-core", "omegaconf", "PyYAML"} <= set(gpu_check.CARRY_DOWNLOADS)
    assert gpu_check.CARRY_BUILT == {"antlr4-python3-runtime": "4.9.3"}
    for name in gpu_check.CARRY_DOWNLOADS:
        assert metadata.version(name)                     # pinned at the versions installed here
    assert gpu_check.install_command(".whl") == (
        "python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/action3d-site .whl/*.whl && "
        "PYTHONPATH=$PWD:/tmp/action3d-site python3 scripts/gpu_check.py --out bench_results/gpu_check.json")
    readme = (SCRIPTS.parent / "README.md").read_text()
    assert gpu_check.install_command(".whl") in readme and "python scripts/gpu_check.py --carry .whl" in readme


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


def test_per_core_figures_size_the_loader(monkeypatch):
    """bench_pipeline.py --per-core's arithmetic: torchvision's protocol clips (with the fallback
    while data.target_fps is absent), worker cores apart from the main process, cores needed."""
    sys.path.insert(0, str(SCRIPTS))
    import bench_pipeline as bp

    overrides, clip = bp.protocol_overrides(25.0)
    assert "data.clip_len=16" in overrides and "data.crop_size=112" in overrides and clip["clip_len"] == 16
    if bp.target_fps_missing():
        assert clip["frame_interval"] == 2 and "data.target_fps" in clip["note"]
    else:
        assert "data.target_fps=15.0" in overrides and clip["frame_interval"] == 1
    assert bp.protocol_overrides(15.0)[1]["frame_interval"] == 1           # a video prepared at 15 fps
    monkeypatch.setattr(bp.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert bp.core_split(1) == ([0, 1, 2], [3]) and bp.core_split(8) == ([0], [1, 2, 3])
    rows = bp.cores_needed({"prepared": {"clips_per_s_per_core": 62.5}, "rawframes": {"absent": "not here"}},
                           [500.0, 800.0])
    assert [(r["source"], r["cores"], r["cores_whole"]) for r in rows] == [("prepared", 8.0, 8), ("prepared", 12.8, 13)]
