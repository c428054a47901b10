"""End of a `action3d train -m ...` sweep: a table of overrides against best val top-1.

Each job writes `summary.json` into its own directory; this Hydra callback (registered in
conf/train.yaml) collects them, prints the table and writes `sweep_summary.md` and
`sweep_summary.csv` into the sweep directory.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Dict, List

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def collect(sweep_dir: Path) -> List[Dict[str, Any]]:
    """One row per job; `overrides` keeps only those that differ between jobs (the swept ones)."""
    summaries = [(path.parent.name, json.loads(path.read_text())) for path in
                 sorted(sweep_dir.glob("*/summary.json"), key=lambda p: _job_number(p.parent.name))]
    common = set.intersection(*(set(s.get("overrides", [])) for _, s in summaries)) if len(summaries) > 1 else set()
    rows = []
    for job, summary in summaries:
        swept = [o for o in summary.get("overrides", []) if o not in common]
        rows.append({"job": job, "overrides": " ".join(swept),
                     "best_top1": summary.get("best_top1"), "best_epoch": summary.get("best_epoch"),
                     "status": summary.get("status"), "checkpoint": summary.get("checkpoint")})
    return rows


def _job_number(name: str) -> int:
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| job | overrides | best val top-1 (%) | best epoch | status |", "|---|---|---|---|---|"]
    ranked = sorted(rows, key=lambda r: -1 if r["best_top1"] is None else r["best_top1"], reverse=True)
    for r in ranked:
        lines.append(f"| {r['job']} | `{r['overrides']}` | {_pct(r['best_top1'])} | {r['best_epoch']} | {r['status']} |")
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: Path) -> List[Dict[str, Any]]:
    rows = collect(sweep_dir)
    (sweep_dir / "sweep_summary.md").write_text(markdown_table(rows))
    with open(sweep_dir / "sweep_summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["job", "overrides", "best_top1", "best_epoch", "status", "checkpoint"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        print(f"\nsweep summary ({len(rows)} jobs), also in {sweep_dir / 'sweep_summary.md'}:")
        print(markdown_table(rows), flush=True)
