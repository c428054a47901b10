"""The benchmark scripts in tiny mode: they print their table and write the JSON report.

No timing is asserted (the machine is shared); only that every model and worker count was
measured, the figures are positive and consistent with each other, and errors are one line.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# The conftest's small synthetic set (same generated folder): 8 classes x 2 training videos of 32 px.
SMALL_DATA = ["data.synthetic.train_per_class=2", "data.synthetic.val_per_class=1",
              "data.synthetic.num_frames=12", "data.synthetic.size=32", "data.clip_len=4",
              "data.frame_interval=2", "data.short_side=32", "data.crop_size=32", "data.batch_size=4",
              "model.base_channels=8"]
# One thread: on a loaded machine two OpenMP threads per process thrash (the scripts' default is torch's).
TINY_TRAIN = ["--quick", "--repeats", "1", "--batch", "2", "--frames", "8", "--size", "32", "--num-classes", "10",
              "--threads", "1"]


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The scripts run in this process and may call torch.set_num_threads."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_bench_train_pairs_r3d18_with_torchvision(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert load_script("bench_train").main(["--models", "r3d_18", *TINY_TRAIN, "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    report = json.loads(out.read_text())
    assert report["logits_check"]["passed"] and report["logits_check"]["max_abs_diff"] < 1e-4
    assert report["settings"]["clip"] == [3, 8, 32, 32] and report["settings"]["batch"] == 2
    rows = {row["model"]: row for row in report["results"]}
    assert set(rows) == {"action3d r3d_18", "torchvision r3d_18"}
    ours, theirs = rows["action3d r3d_18"], rows["torchvision r3d_18"]
    assert (ours["layout"], theirs["layout"]) == ("channels_last_3d", "contiguous")
    for row in (ours, theirs):
        assert row["precision"] == "fp32" and len(row["step_ms_all"]) == 1
        assert positive(row["step_ms_median"]) and positive(row["peak_mib"])
        assert row["clips_per_s"] == pytest.approx(2 / (row["step_ms_median"] / 1e3))
        assert row["gflop_per_step"] == pytest.approx(ours["gflop_per_step"])   # same network, same FLOPs
        assert row["gflop_per_s"] == pytest.approx(row["gflop_per_step"] / (row["step_ms_median"] / 1e3))
    speedup = report["speedup"]["fp32"]
    assert ours["vs_torchvision"] == pytest.approx(speedup["speedup"])
    assert speedup["speedup"] == pytest.approx(theirs["step_ms_median"] / ours["step_ms_median"])
    assert speedup["target"] == 3.0 and speedup["target_met"] == (speedup["speedup"] >= 3.0)

    assert "same weights, eval mode: max |logits difference|" in printed
    assert "step ms (median)" in printed and "peak MiB" in printed and "vs torchvision" in printed
    assert "torchvision r3d_18  contiguous" in printed
    assert "r3d_18 fp32: action3d is" in printed and "target >= 3x on CPU" in printed


@pytest.mark.parametrize("flags, runs_as, target", [({"avx512_bf16"}, "bf16", 1.8), ({"avx2"}, "32", None)])
def test_bench_train_auto_is_the_default_step_against_torchvision_fp32(flags, runs_as, target, tmp_path, capsys,
                                                                         monkeypatch):
    from action3d.config import runtime as rules

    monkeypatch.setattr(rules, "cpu_flags", lambda: set(flags))
    out = tmp_path / "train.json"
    argv = ["--models", "r3d_18", *TINY_TRAIN, "--precision", "auto", "--no-memory", "--out", str(out)]
    assert load_script("bench_train").main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = {(row["model"], row["precision"]): row for row in report["results"]}
    assert set(rows) == {("action3d r3d_18", "auto"), ("torchvision r3d_18", "fp32")}
    assert rows[("action3d r3d_18", "auto")]["runs_as"] == runs_as
    speedup = report["speedup"]["auto"]
    assert speedup["versus"] == "torchvision fp32" and speedup["target"] == target
    if runs_as == "32":
        assert "no native bf16, so the default stays fp32" in printed


def test_bench_train_other_presets_alone(tmp_path, capsys):
    out = tmp_path / "nested" / "train.json"
    args = ["--models", "slowfast_r50", *TINY_TRAIN, "--no-memory", "--out", str(out)]
    assert load_script("bench_train").main(args) == 0
    printed = capsys.readouterr().out

    report = json.loads(out.read_text())
    [row] = report["results"]
    assert row["model"] == "action3d slowfast_r50" and row["layout"] == "channels_last_3d"
    assert positive(row["clips_per_s"]) and positive(row["gflop_per_step"])
    assert row["peak_mib"] is None and row["vs_torchvision"] is None
    assert "logits_check" not in report and report["speedup"] == {}
    assert "action3d slowfast_r50" in printed and "peak memory skipped" in printed


def test_bench_train_unknown_preset_is_one_line(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert load_script("bench_train").main(["--models", "r3d_99", *TINY_TRAIN, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench_train: error: --models r3d_99:") and "\n" not in err
    assert not out.exists()


@pytest.mark.slow
def test_bench_pipeline_reports_each_worker_count(tmp_path, cache_dir):
    out = tmp_path / "pipeline.json"
    args = ["--workers", "0,2", "--quick", "--batches", "3", "--steps", "2", "--threads", "1", "--out", str(out),
            *SMALL_DATA]
    # A subprocess: DataLoader workers forked from this test process could inherit decoder state
    # from other tests; the timeout turns a hung worker into a failure.
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_pipeline.py"), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "ACTION3D_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout

    report = json.loads(out.read_text())
    settings = report["settings"]
    assert settings["dataset"] == "synthetic" and settings["train_videos"] == 16
    assert settings["clip"] == [3, 4, 32, 32] and settings["batch_size"] == 4 and settings["model"] == "tiny"
    assert len(report["model"]["step_ms_all"]) == 2 * 3            # a round before and after each count
    rows = report["results"]
    assert [row["workers"] for row in rows] == [0, 2]
    for row in rows:
        for key in ("first_batch_s", "loader_clips_per_s", "model_clips_per_s", "train_loop_clips_per_s"):
            assert positive(row[key]), key
        assert 0 <= row["data_wait_share"] < 1
        assert row["loader_vs_model"] == pytest.approx(row["loader_clips_per_s"] / row["model_clips_per_s"])
        assert row["bound_by"] == ("loader" if row["loader_vs_model"] < 1 else "model")
    target = report["target"]
    assert target["workers"] == 2 and target["model"] == "tiny"
    assert target["met"] == (rows[1]["loader_clips_per_s"] >= rows[1]["model_clips_per_s"])

    assert "loader clips/s" in printed and "bound by" in printed and "train loop clips/s" in printed
    assert "model step alone: median" in printed and "target: with 2 workers" in printed


def test_bench_pipeline_bad_override_is_one_line(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    assert load_script("bench_pipeline").main(["--out", str(out), "data.no_such_key=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench_pipeline: error: data.no_such_key") and "\n" not in err
    assert not out.exists()


@pytest.mark.slow
def test_bench_pipeline_compares_clips_per_video_and_races_the_demo(tmp_path, cache_dir):
    out = tmp_path / "pipeline.json"
    args = ["--workers", "0", "--quick", "--batches", "2", "--steps", "1", "--threads", "1", "--clips", "1,2",
            "--demo", "--target", "0.0", "--out", str(out), *SMALL_DATA, "trainer.max_epochs=1"]
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_pipeline.py"), *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "ACTION3D_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    k1, k2 = report["clips_per_video"]
    assert (k1["clips_per_video"], k2["clips_per_video"]) == (1, 2)
    assert k2["loader_clips_per_s"] == pytest.approx(2 * k2["loader_videos_per_s"])
    runs = report["demo_race"]["runs"]
    assert [r["precision"] for r in runs] == ["32", "auto"]
    assert all(r["seconds_to_target"] is not None and r["seconds_to_target"] <= r["total_seconds"] for r in runs)
    assert runs[0]["runs_as"] == "32" and runs[1]["runs_as"] in ("32", "bf16")


def test_bench_augment_refuses_an_unknown_row_in_one_line_and_knows_every_documented_row(capsys):
    """The benchmark is run by hand (about 10-20 min); here only its rows and its refusal: every
    row of the table in the training-recipes tutorial is one the script runs."""
    bench = load_script("bench_augment")
    assert bench.main(["--rows", "+nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown --rows ['+nonsense']" in err
    table = (SCRIPTS.parent / "docs" / "tutorials" / "training-recipes.md").read_text()
    missing = [name for name in bench.ROWS if f"| {name} |" not in table]
    assert bench.ROWS and not missing, missing
