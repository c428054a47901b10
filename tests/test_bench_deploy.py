"""The export and long-video benchmark scripts in quick mode: they print their table and write the JSON.

No timing or memory figure is asserted (the machine is shared); only that every model and video was
measured and the figures are consistent with each other.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from test_bench_scripts import load_script


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_bench_export_compares_onnxruntime_with_eager(tmp_path, capsys):
    out = tmp_path / "export.json"
    args = ["--quick", "--models", "tiny", "--frames", "4", "--size", "32", "--threads", "1", "--out", str(out)]
    assert load_script("bench_export").main(args) == 0
    printed = capsys.readouterr().out
    [row] = json.loads(out.read_text())["results"]
    assert row["model"] == "tiny" and row["input"] == [1, 3, 4, 32, 32] and row["max_abs_diff"] < 1e-4
    for key in ("eager_ms", "onnxruntime_ms", "pytorch_mib", "onnx_mib"):
        assert positive(row[key]), key
    assert row["speedup"] == pytest.approx(row["eager_ms"] / row["onnxruntime_ms"])
    assert row["size_ratio"] == pytest.approx(row["onnx_mib"] / row["pytorch_mib"])
    assert len(row["eager_ms_all"]) == len(row["onnxruntime_ms_all"]) == 3
    assert "onnxruntime ms" in printed and "eager / ort" in printed and "tiny: onnxruntime is" in printed


def test_bench_export_unknown_preset_is_one_line(tmp_path, capsys):
    out = tmp_path / "export.json"
    assert load_script("bench_export").main(["--quick", "--models", "r3d_99", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench_export: error: --models r3d_99:") and "\n" not in err and not out.exists()


@pytest.mark.slow
def test_bench_long_predict_measures_each_video_in_its_own_process(tmp_path, capsys):
    out = tmp_path / "long.json"
    assert load_script("bench_long_predict").main(["--quick", "--cache", str(tmp_path / "cache"),
                                                   "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [row["seconds"] for row in rows] == [4, 16] and [row["windows"] for row in rows] == [2, 8]
    assert all(positive(row["peak_rss_mib"]) and positive(row["wall_s"]) for row in rows)
    assert positive(report["baseline_import_torch_mib"])
    peaks = [row["peak_rss_mib"] for row in rows]
    assert report["target"]["growth"] == pytest.approx(max(peaks) / min(peaks) - 1)
    assert "peak RSS MiB" in printed and "longest vs shortest" in printed
