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
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": _load_average(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def cpu_model() -> str:
    """/proc/cpuinfo's model name (lscpu's), else what platform says."""
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


# ------------------------------------------------------------------ test videos (bench_pipeline, gpu_check)


def kinetics_like_frames(width: int, height: int, frames: int, seed: int = 0):
    """(frames, H, W, 3) uint8: a camera pan over a blurred random texture, two moving discs and
    sensor noise, about the bitrate and motion of a Kinetics clip (as scripts/bench_decode.py's
    videos), so that decoding costs what it costs on real footage."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = width, height
    coarse = torch.from_numpy(rng.integers(0, 256, (3, h // 16 + 4, w // 16 + 12))).float()
    texture = torch.nn.functional.interpolate(coarse[None], scale_factor=16, mode="bicubic")[0]
    texture = texture.clamp(0, 255).permute(1, 2, 0).numpy()           # (H', W', 3)
    noise = rng.normal(0, 6, (8, h, w, 3)).astype(np.float32)            # reused, rolled
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        dx = int(80 + 70 * np.sin(t / 40)), int(30 + 20 * np.cos(t / 55))
        frame = texture[dx[1]:dx[1] + h, dx[0]:dx[0] + w].copy()
        for k, colour in enumerate(([220, 40, 40], [40, 200, 90])):
            cx = (0.2 + 0.6 * k) * w + 0.3 * w * np.sin(t / (17 + 9 * k))
            cy = h / 2 + h / 4 * np.cos(t / (23 + 5 * k))
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (h / (7 + 2 * k)) ** 2] = colour
        frame += np.roll(noise[t % 8], t, axis=1)
        out[t] = frame.clip(0, 255)
    return out


def write_test_video(path: str | os.PathLike, *, width: int, height: int, fps: int, frames: int, seed: int = 0,
                     keyframe_seconds: float = 2.0) -> Path:
    """A Kinetics-like H.264 MP4 (x264, B-frames, a keyframe every `keyframe_seconds`), written
    under a temporary name and renamed when complete (so an existing file is a finished one)."""
    from action3d.data.video_writer import write_video

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part.mp4")
        write_video(partial, kinetics_like_frames(width, height, frames, seed), fps=fps,
                    gop=max(1, int(fps * keyframe_seconds)), bframes=3)
        partial.rename(path)
    return path
