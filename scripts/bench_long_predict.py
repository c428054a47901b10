#!/usr/bin/env python
"""Peak memory of `action3d predict window=...` on long videos: it must not grow with the length.

Generates 720p videos (30 fps, H.264, a keyframe every 2 s, a moving pattern over a textured
background; kept in a cache folder for the next run) of 1 and 10 minutes, then runs the real
command line, `action3d predict ckpt=TINY video=V window=2 stride=2`, in a fresh process per video and
reads that process's peak RSS (`wait4`'s ru_maxrss). A process that only imports torch is measured
the same way as the baseline. Targets: the two peaks within 10% of each other and under 1.5 GiB.

    python scripts/bench_long_predict.py                   # 1 and 10 minutes at 1280x720 (a few minutes)
    python scripts/bench_long_predict.py --quick           # 4 and 16 s at 320x180 (a smoke test)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import command_line, format_table, machine_info, write_json  # noqa: E402

MAX_GROWTH, MAX_PEAK_GIB = 0.10, 1.5
FPS, GOP_SECONDS = 30, 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,10", type=lambda s: [float(m) for m in s.split(",")])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stride", type=float, default=2.0)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "action3d" / "bench_long_predict"),
                        help="where the generated videos and the checkpoint are kept")
    parser.add_argument("--quick", action="store_true", help="4 and 16 s at 320x180")
    parser.add_argument("--out", default="bench_results/long_predict.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.width, args.height = [4 / 60, 16 / 60], 320, 180
    return args


# ------------------------------------------------------------------ inputs


def make_video(path: Path, *, seconds: float, width: int, height: int) -> Path:
    """A textured background with a bright square crossing it, x264 ultrafast, written once."""
    if path.is_file():
        return path
    from action3d.data.video_writer import VideoEncoder

    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, size=(height // 8, width // 8, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(background, 8, axis=0), 8, axis=1)               # (H, W, 3) blocks
    side = height // 4
    tmp = path.with_name(path.name + ".tmp.mp4")
    with VideoEncoder(tmp, width=width, height=height, fps=FPS, gop=FPS * GOP_SECONDS,
                      options={"preset": "ultrafast"}) as encoder:
        for i in range(round(seconds * FPS)):
            frame = background.copy()
            x = (i * 7) % (width - side)
            y = (i * 3) % (height - side)
            frame[y:y + side, x:x + side] = (255, 240, 40)
            encoder.write(frame)
    os.replace(tmp, path)
    return path


def make_checkpoint(path: Path) -> Path:
    """An untrained `tiny` checkpoint with the demo's data config (memory does not depend on the weights)."""
    if path.is_file():
        return path
    import dataclasses

    from action3d.commands._hydra import typed_config
    from action3d.engine.checkpoint import save_checkpoint
    from action3d.models import build_model

    cfg = typed_config("train", ["model=tiny", "model.num_classes=8"])
    model = build_model(cfg.model, log=lambda _: None)
    save_checkpoint({"model": model.state_dict(), "config": dataclasses.asdict(cfg),
                     "classes": [f"class_{i}" for i in range(8)]}, path)
    return path


# ------------------------------------------------------------------ measuring


def peak_rss_mib(cmd: list[str], *, cwd: Path) -> dict[str, Any]:
    """Run `cmd`; its own peak RSS (MiB), wall time, exit status and last lines of output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with open(cwd / "stdout.txt", "w") as out, open(cwd / "stderr.txt", "w") as err:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": time.perf_counter() - started,
            "returncode": process.returncode, "stdout": (cwd / "stdout.txt").read_text().splitlines()[-8:],
            "stderr": (cwd / "stderr.txt").read_text().strip().splitlines()[-3:]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = make_checkpoint(cache / "tiny_untrained.pt")
    baseline = peak_rss_mib([sys.executable, "-c", "import torch"], cwd=cache)
    print(f"peak RSS of a process that imports torch: {baseline['peak_rss_mib']:.0f} MiB")
    rows = []
    for minutes in args.minutes:
        seconds = minutes * 60
        name = f"long_{seconds:g}s_{args.width}x{args.height}.mp4"
        started = time.perf_counter()
        video = make_video(cache / name, seconds=seconds, width=args.width, height=args.height)
        print(f"{name}: ready ({time.perf_counter() - started:.0f} s to generate)")
        cmd = [sys.executable, "-m", "action3d", "predict", f"ckpt={ckpt}", f"video={video}",
               f"window={args.window:g}", f"stride={args.stride:g}", "trainer.device=cpu"]
        result = peak_rss_mib(cmd, cwd=cache)
        if result["returncode"] != 0:
            print(f"bench_long_predict: error: {' '.join(cmd)} failed: {' '.join(result['stderr'])}", file=sys.stderr)
            return 1
        windows = round(seconds / args.stride)
        rows.append({"video": name, "seconds": round(seconds, 1), "size": f"{args.width}x{args.height}",
                     "windows": windows, "peak_rss_mib": result["peak_rss_mib"], "wall_s": result["wall_s"],
                     "windows_per_s": windows / result["wall_s"], "size_mib": video.stat().st_size / 2**20})
    print(format_table(rows, [("video", "video", ""), ("seconds", "seconds", ".0f"), ("MiB on disk", "size_mib", ".1f"),
                              ("windows", "windows", "d"), ("peak RSS MiB", "peak_rss_mib", ".0f"),
                              ("wall s", "wall_s", ".1f"), ("windows/s", "windows_per_s", ".1f")]))
    peaks = [row["peak_rss_mib"] for row in rows]
    growth = max(peaks) / min(peaks) - 1
    met = growth <= MAX_GROWTH and max(peaks) <= MAX_PEAK_GIB * 1024
    print(f"longest vs shortest: peak RSS {growth:+.1%} (target within {MAX_GROWTH:.0%}); highest "
          f"{max(peaks):.0f} MiB (target under {MAX_PEAK_GIB * 1024:.0f} MiB; importing torch alone: "
          f"{baseline['peak_rss_mib']:.0f} MiB): {'met' if met else 'NOT met'}")
    report = {"benchmark": "long_predict", "command": command_line(), "machine": machine_info(),
              "settings": {"window": args.window, "stride": args.stride, "fps": FPS, "gop_seconds": GOP_SECONDS,
                           "model": "tiny (untrained, demo data config)", "measure": "wait4 ru_maxrss of the process"},
              "baseline_import_torch_mib": baseline["peak_rss_mib"], "results": rows,
              "target": {"max_growth": MAX_GROWTH, "max_peak_mib": MAX_PEAK_GIB * 1024, "growth": growth, "met": met}}
    print(f"report: {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
