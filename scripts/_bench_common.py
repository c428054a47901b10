"""What every benchmark script shares: a plain-text table, the JSON report, machine facts.

The scripts run side by side on shared, noisy machines, so each report records what the
machine was doing (load average at start and end, threads) next to its figures.
"""
from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

# (header, key in the row dict, format spec for numbers); None prints as "-".
Column = Tuple[str, str, str]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Rows of raw values -> an aligned text table (numbers right-aligned, text left-aligned)."""
    cells = [[_cell(row.get(key), spec) for _, key, spec in columns] for row in rows]
    widths = [max([len(header)] + [len(line[i]) for line in cells]) for i, (header, _, _) in enumerate(columns)]
    numeric = [all(isinstance(row.get(key), (int, float)) or row.get(key) is None for row in rows)
               for _, key, _ in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    header = line([h for h, _, _ in columns])
    return "\n".join([header, "-" * len(header)] + [line(c) for c in cells])


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return format(value, spec)


def command_line() -> str:
    """The command as a user would type it again (for the README and the JSON report)."""
    script = os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "?"
    return shlex.join(["python", script, *sys.argv[1:]])


def machine_info() -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": _load_average(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write the report (parents created); the load average at the end goes in beside the start's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = dict(payload)
    report.setdefault("machine", {})["load_average_1min_end"] = _load_average()
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
