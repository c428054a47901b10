"""Help, `--cfg job` and config errors answer without importing torch (issue 14).

No timing is asserted (the machine is shared): the start-up figures are measured by
scripts/bench_startup.py, whose quick mode is smoke-tested here.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# Runs the real entry point in one fresh interpreter and reports, per command line, the exit
# status and which torch modules were imported by then.
PROBE = """
import contextlib, io, json, sys
from action3d.cli import main
results = {}
for argv in (["train", "--help"], ["train", "--cfg", "job"], ["train", "model.depth=19"], ["--help"]):
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "av"))
    results[" ".join(argv)] = {"code": code, "output": output.getvalue(), "heavy": heavy}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_help_cfg_job_and_config_errors_import_no_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["train --help"]["code"] == 0 and "num_workers:" in results["train --help"]["output"]
    assert results["train --cfg job"]["code"] == 0 and "autorotate: true" in results["train --cfg job"]["output"]
    assert results["train model.depth=19"]["code"] == 2
    assert "model.depth=19 is not allowed" in results["train model.depth=19"]["output"]
    for command, result in results.items():
        assert result["heavy"] == [], f"action3d {command} imported {result['heavy'][:5]}"
    assert not list(tmp_path.iterdir())       # nothing written


def load_bench_startup():
    spec = importlib.util.spec_from_file_location("bench_startup_script", SCRIPTS / "bench_startup.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_startup_quick_prints_the_table_and_writes_json(tmp_path, capsys, monkeypatch):
    """Two of the commands and a light peer (the real one imports torch: 5 s)."""
    bench = load_bench_startup()
    monkeypatch.setattr(bench, "COMMANDS", {"action3d --help": (["--help"], 0),
                                            "action3d train model.depth=19": (["train", "model.depth=19"], 2)})
    monkeypatch.setattr(bench, "PEER_ARGV", [sys.executable, "-c", "import json"])
    out = tmp_path / "startup.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["settings"]["repeats"] == 1 and report["settings"]["target_seconds"] == 2.0
    rows = {row["command"]: row for row in report["results"]}
    assert list(rows) == ["action3d --help", "action3d train model.depth=19", bench.PEER]
    for row in rows.values():
        assert row["seconds_median"] > 0 and len(row["seconds_all"]) == 1
        assert 1 < row["peak_rss_mib"] < 2000
        assert row["vs_peer"] == pytest.approx(row["seconds_median"] / rows[bench.PEER]["seconds_median"])
    assert rows["action3d --help"]["imports_torch"] is False
    assert rows["action3d --help"]["target_met"] == (rows["action3d --help"]["seconds_median"] <= 2.0)
    assert rows[bench.PEER]["target_met"] is None
    assert "peak RSS MiB" in printed and "vs import torch" in printed and "target: help, --cfg job" in printed


def test_bench_startup_unexpected_exit_status_is_one_line(tmp_path, capsys, monkeypatch):
    bench = load_bench_startup()
    monkeypatch.setattr(bench, "COMMANDS", {"action3d --help": (["--help"], 3)})
    out = tmp_path / "startup.json"
    assert bench.main(["--quick", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "bench_startup: error: action3d --help: exit status 0 (expected 3):"
    assert not out.exists()
