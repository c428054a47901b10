"""The demo race for `bench_pipeline.py --demo`: time to reach a validation top-1 with the demo
recipe, fp32 against the default precision (`auto`), one full `action3d train` each.

Each run is a fresh `action3d train` process (the demo as a user starts it) on the cached
synthetic set; the runs go one after the other so that they do not share the CPU. The time to the
target is read from the run's metrics.jsonl (its `val/top1` points carry wall-clock times), counted
from the process start, so start-up, data loading, precise BN and validation are all included.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def run_demo(precision: str, overrides: Sequence[str], folder: Path, target: float) -> Dict[str, Any]:
    run_dir = folder / f"demo-{precision}"
    command = [sys.executable, "-m", "action3d", "train", *overrides, f"trainer.precision={precision}",
               f"hydra.run.dir={run_dir}"]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    total = time.time() - start
    if done.returncode != 0:
        return {"precision": precision, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    vals = [p for p in points if "val/top1" in p]
    reached: Optional[Dict[str, Any]] = next((p for p in vals if p["val/top1"] >= target), None)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"precision": precision, "runs_as": summary.get("precision"),
            "seconds_to_target": None if reached is None else reached["time"] - start,
            "step_at_target": None if reached is None else reached["step"],
            "best_top1": summary["best_top1"], "final_top1": vals[-1]["val/top1"] if vals else None,
            "total_seconds": total}


def demo_race(overrides: Sequence[str], *, target: float = 0.85,
              precisions: Sequence[str] = ("32", "auto")) -> List[Dict[str, Any]]:
    """One demo run per precision, in this order, each timed from its process start."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        rows = []
        for precision in precisions:
            print(f"  demo with trainer.precision={precision} ...", flush=True)
            rows.append(run_demo(precision, overrides, Path(folder), target))
        return rows


DEMO_COLUMNS = [("trainer.precision", "precision", ""), ("runs as", "runs_as", ""),
                ("s to target", "seconds_to_target", ".0f"), ("step", "step_at_target", "d"),
                ("best top-1", "best_top1", ".3f"), ("final top-1", "final_top1", ".3f"),
                ("total s", "total_seconds", ".0f")]
