"""The issue-16 benchmarks in tiny mode: bench_scale.py and bench_pipeline.py --shards print their
table and write their JSON report. No timing is asserted (the machine is shared)."""
from __future__ import annotations

import json
import os

import pytest
from test_bench_scripts import SMALL_DATA, load_script, positive


@pytest.mark.slow
def test_bench_scale_reports_load_time_rss_and_worker_growth(tmp_path, capsys):
    out = tmp_path / "scale.json"
    args = ["--n", "1400", "--workers", "1", "--root", str(tmp_path / "layout"), "--out", str(out)]
    cache_before = os.environ.get("ACTION3D_CACHE")
    assert load_script("bench_scale").main(args) == 0
    assert os.environ.get("ACTION3D_CACHE") == cache_before   # its empty index cache was its own
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    for key in ("load_seconds", "rss_mib", "worker_growth_mib"):
        assert isinstance(report[key], float) and report[key] >= 0, key
    rows = {(r["what"], r["load"]): r for r in report["results"]}
    assert set(rows) == {("list of tuples", "load_split"), ("SampleIndex", "cold cache"), ("SampleIndex", "warm cache")}
    assert all(r["samples"] == 1400 for r in rows.values())
    warm = rows[("SampleIndex", "warm cache")]
    assert warm["lookups"] == 1400 and len(warm["worker_growth_mib"]) == 1
    assert report["worker_growth_mib"] == warm["growth_max"] and report["load_seconds"] == warm["load_seconds"]
    assert len(list((tmp_path / "layout" / "videos").iterdir())) == 700
    assert "worker growth MiB (max)" in printed and "target: warm index load <= 3 s" in printed


@pytest.mark.slow
def test_bench_pipeline_compares_shards_with_files(tmp_path, cache_dir):
    out = tmp_path / "pipeline.json"
    args = ["--workers", "0", "--quick", "--batches", "2", "--steps", "1", "--threads", "1", "--shards",
            "--shard-mb", "0.01", "--out", str(out), *SMALL_DATA]
    assert load_script("bench_pipeline").main(args) == 0
    report = json.loads(out.read_text())
    [row] = report["results"]
    assert positive(row["shards_loader_clips_per_s"]) and positive(row["loader_clips_per_s"])
    assert row["shards_vs_files"] == pytest.approx(row["shards_loader_clips_per_s"] / row["loader_clips_per_s"])
    assert report["settings"]["shards"] == {"shard_mb": 0.01}
