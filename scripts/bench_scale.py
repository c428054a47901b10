#!/usr/bin/env python
"""Scale benchmark: the sample index of a Kinetics-700-sized dataset, without any video data.

It writes (once, then reuses) a Kinetics-shaped layout of N empty files, `ROOT/videos/CLASS/
{youtube_id}_{start:06d}_{end:06d}.mp4` over 700 class folders, and its annotation CSV. Then,
each in a fresh process so that the memory figures are its own:
- `load_split` (the annotation lists as a list of tuples, as every rank used to build them),
- `resolve_index` with an empty cache (cold: resolve and write the cache),
- `resolve_index` again (warm: a second start, e.g. a new run directory),
time and resident memory (RSS) after the load; and one epoch of index lookups through a
DataLoader (the training dataset's `samples[i]` for every index, in a random order, in
`--workers` worker processes), once over a list of tuples (before) and once over the
`SampleIndex` the dataset holds now, with each worker's private memory (Private_Clean +
Private_Dirty in /proc/PID/smaps_rollup) at its start and at the end of the epoch.

    python scripts/bench_scale.py                 # 650,000 videos (the layout takes a few minutes once)
    python scripts/bench_scale.py --n 100000 --workers 4
    python scripts/bench_scale.py --quick         # 20,000 videos: a smoke test

Prints a table and writes JSON (`--out`, default bench_results/scale.json) whose top-level
`load_seconds`, `rss_mib` and `worker_growth_mib` are the warm index load, its RSS and the largest
worker growth with the `SampleIndex`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

NUM_CLASSES = 700                  # Kinetics-700
DEFAULT_N = 650_000                # about Kinetics-700's training set
TARGET_LOAD_S, TARGET_GROWTH_MIB = 3.0, 10.0   # issue 16
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# ------------------------------------------------------------------ the layout


def youtube_id(number: int) -> str:
    """A deterministic 11-character YouTube-like id."""
    value = (number * 2654435761 + 12345) % (64 ** 11)
    return "".join(ALPHABET[(value >> (6 * i)) & 63] for i in range(11))


def make_layout(root: Path, n: int) -> Path:
    """ROOT/videos/CLASS/*.mp4 (n empty files) and ROOT/train.csv; reused when complete."""
    marker = root / f"complete-{n}"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    videos = root / "videos"
    classes = [f"action {c:03d}" for c in range(NUM_CLASSES)]
    for name in classes:
        (videos / name).mkdir(parents=True)
    lines = ["label,youtube_id,time_start,time_end,split\n"]
    for i in range(n):
        name, start = classes[i % NUM_CLASSES], (i * 7) % 290
        stem = f"{youtube_id(i)}_{start:06d}_{start + 10:06d}"
        lines.append(f"{name},{youtube_id(i)},{start},{start + 10},train\n")
        os.close(os.open(videos / name / f"{stem}.mp4", os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "train.csv").write_text("".join(lines))
    past = time.time() - 3600  # a dataset that has not changed for a while: the index cache trusts it
    for folder in [videos, *videos.iterdir()]:
        os.utime(folder, (past, past))
    marker.touch()
    return root


def data_config(root: Path):
    from action3d.config import DataConfig

    return DataConfig(name="kinetics", format="kinetics", root=str(root / "videos"),
                      train_list=str(root / "train.csv"))


# ------------------------------------------------------------------ memory


def private_mib(pid: str | int = "self") -> float:
    """Pages only this process maps (copied on write, or its own): Private_Clean + Private_Dirty."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1])
    return total / 1024


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------ one measurement (child process)


def measure_load(mode: str, root: Path) -> dict[str, Any]:
    """Time and RSS of loading the training split's samples: `lists`, `index` (the cache decides)."""
    from action3d.data.annotations import load_split
    from action3d.data.index import resolve_index

    cfg = data_config(root)
    before = rss_mib()
    start = time.perf_counter()
    samples, _ = load_split(cfg, "train") if mode == "lists" else resolve_index(cfg, "train")
    seconds = time.perf_counter() - start
    return {"load_seconds": seconds, "rss_mib": rss_mib(), "rss_before_mib": before, "samples": len(samples)}


def measure_workers(mode: str, root: Path, workers: int, batch_size: int) -> dict[str, Any]:
    """One epoch of `dataset.samples[i]` lookups in `workers` loader workers; their private memory."""
    import multiprocessing

    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from action3d.data.annotations import load_split
    from action3d.data.dataset import VideoDataset
    from action3d.data.index import resolve_index

    cfg = data_config(root)
    samples, _ = load_split(cfg, "train") if mode == "lists" else resolve_index(cfg, "train")

    class Lookups(VideoDataset):
        """The training dataset's sample access, without decoding (the files are empty)."""

        def _try_load(self, path, rng):
            return torch.tensor(len(path))

    dataset = Lookups(samples, transform=None, train=True, root=cfg.root)
    if mode == "lists":  # how the dataset held them before: a list of (str, int) tuples
        dataset.samples = [(str(p), int(label)) for p, label in samples]
    del samples
    at_start = multiprocessing.Array("d", workers)

    def record_start(worker_id: int) -> None:
        at_start[worker_id] = private_mib()

    loader = DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=torch.Generator()),
                        num_workers=workers, persistent_workers=True, worker_init_fn=record_start,
                        multiprocessing_context="fork")
    start, count = time.perf_counter(), 0
    batches = iter(loader)
    for batch in batches:
        count += len(batch[0])
    seconds = time.perf_counter() - start
    pids = [w.pid for w in batches._workers]
    at_end = [private_mib(pid) for pid in pids]
    batches._shutdown_workers()
    growth = [end - begin for begin, end in zip(at_start, at_end, strict=True)]
    return {"lookups": count, "epoch_seconds": seconds, "worker_start_mib": list(at_start),
            "worker_end_mib": at_end, "worker_growth_mib": growth}


def in_child(*args: str) -> dict[str, Any]:
    """Run one measurement in a fresh Python process (its own RSS), return its JSON."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"bench_scale child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help=f"videos (default {DEFAULT_N}; --quick 20000)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the lookup epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--root", default=None, help="where the layout is written and reused "
                        "(default: $ACTION3D_CACHE/bench_scale-N)")
    parser.add_argument("--skip-lists", action="store_true", help="skip the list-of-tuples (before) rows")
    parser.add_argument("--quick", action="store_true", help="20,000 videos")
    parser.add_argument("--out", default="bench_results/scale.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 20_000 if args.quick else DEFAULT_N
    if args.n < NUM_CLASSES or args.workers < 1 or args.batch_size < 1:
        parser.error(f"--n {args.n} --workers {args.workers} --batch-size {args.batch_size}: need n >= "
                     f"{NUM_CLASSES}, at least one worker and a positive batch size")
    return args


def child(argv: list[str]) -> int:
    what, mode, root = argv[0], argv[1], Path(argv[2])
    if what == "load":
        result = measure_load(mode, root)
    else:
        result = measure_workers(mode, root, int(argv[3]), int(argv[4]))
    print(json.dumps(result))
    return 0


COLUMNS = [("samples held as", "what", ""), ("load", "load", ""), ("load s", "load_seconds", ".2f"),
           ("RSS MiB", "rss_mib", ".0f"), ("RSS before MiB", "rss_before_mib", ".0f"),
           ("lookup epoch s", "epoch_seconds", ".1f"), ("worker growth MiB (max)", "growth_max", ".1f")]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args.child)  # no torch import there: the load's RSS is the index's and Python's
    from _bench_common import command_line, format_table, machine_info, write_json

    from action3d.data.synthetic import cache_dir

    machine = machine_info()  # the load average at the start (write_json adds the end's)
    root = Path(args.root) if args.root else cache_dir() / f"bench_scale-{args.n}"
    started = time.perf_counter()
    make_layout(root, args.n)
    print(f"layout: {args.n} empty files in {NUM_CLASSES} class folders under {root} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    index_cache = Path(tempfile.mkdtemp(prefix="bench-scale-cache-"))
    cache_before = os.environ.get("ACTION3D_CACHE")
    os.environ["ACTION3D_CACHE"] = str(index_cache)   # an empty index cache: the first load is cold
    rows: list[dict[str, Any]] = []
    try:
        if not args.skip_lists:
            rows.append({"what": "list of tuples", "load": "load_split", **in_child("load", "lists", str(root))})
        rows.append({"what": "SampleIndex", "load": "cold cache", **in_child("load", "index", str(root))})
        rows.append({"what": "SampleIndex", "load": "warm cache", **in_child("load", "index", str(root))})
        loads = ", ".join(f"{r['load']} {r['load_seconds']:.2f} s" for r in rows)
        print(f"  loads: {loads}", flush=True)
        lookups = [("index", rows[-1])] if args.skip_lists else [("lists", rows[0]), ("index", rows[-1])]
        for mode, row in lookups:   # the epoch of lookups goes on the row of the same kind of load
            result = in_child("workers", mode, str(root), str(args.workers), str(args.batch_size))
            row.update(result, growth_max=max(result["worker_growth_mib"]))
            growth = ", ".join(f"{g:.1f}" for g in result["worker_growth_mib"])
            print(f"  {mode}: worker growth {growth} MiB", flush=True)
    finally:
        shutil.rmtree(index_cache, ignore_errors=True)
        if cache_before is None:              # the caller's cache again (a test session's, say)
            os.environ.pop("ACTION3D_CACHE", None)
        else:
            os.environ["ACTION3D_CACHE"] = cache_before
    warm = rows[-1]
    met = {"load": warm["load_seconds"] <= TARGET_LOAD_S, "growth": warm["growth_max"] <= TARGET_GROWTH_MIB}
    print()
    print(format_table(rows, COLUMNS))
    print(f"target: warm index load <= {TARGET_LOAD_S:g} s: {'met' if met['load'] else 'NOT met'} "
          f"({warm['load_seconds']:.2f} s); worker growth <= {TARGET_GROWTH_MIB:g} MiB over one epoch: "
          f"{'met' if met['growth'] else 'NOT met'} ({warm['growth_max']:.1f} MiB, {args.workers} workers)")
    report = {
        "benchmark": "scale", "command": command_line(), "machine": machine,
        "settings": {"n": args.n, "classes": NUM_CLASSES, "workers": args.workers, "batch_size": args.batch_size,
                     "root": str(root)},
        "load_seconds": warm["load_seconds"], "rss_mib": warm["rss_mib"], "worker_growth_mib": warm["growth_max"],
        "targets": {"load_seconds": TARGET_LOAD_S, "worker_growth_mib": TARGET_GROWTH_MIB, "met": met},
        "results": rows,
    }
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
