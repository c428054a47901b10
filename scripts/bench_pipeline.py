#!/usr/bin/env python
"""Input-pipeline benchmark: the training loader (decode, sample, transform, collate) with 0..N
workers against the model's training step, and which of the two bounds the training speed.

For each worker count it measures
- the loader alone: clips/s delivered to the main process (after the first batches, whose time,
  worker start-up included, is reported apart), the main process doing nothing else;
- the training loop: the loader feeding the model step, as `action3d train` runs it, with the
  share of wall time the step waited for data.
The model step alone (forward, backward, optimiser step on one fixed batch from the dataset) is
timed in rounds between the worker counts (the machine may be shared and noisy), and its median
is the model's clips/s. The loader bounds training when it delivers fewer clips/s than the model
consumes. On a CPU the workers and the model share the cores, so the training loop's own figure
is the one to believe.

The dataset, model and trainer settings are those of `action3d train` with the same Hydra
overrides (default: the synthetic dataset and the `tiny` model):

    python scripts/bench_pipeline.py                          # workers 0,1,2
    python scripts/bench_pipeline.py --workers 0,2,4 model=r3d_18
    python scripts/bench_pipeline.py --workers 0,4,8 data=folder data.root=/data/videos
    python scripts/bench_pipeline.py --shards data=folder data.root=/data/k400_128 ...   # + tar shards

--clips 1,2,4 also measures the loader with K clips per video (`data.num_clips=K`: one decode
pass, K independently augmented clips) on the same videos, in clips/s.

--demo races the demo recipe (`action3d train` with the given overrides) to a validation top-1 of
--target, fp32 against the default precision (`auto`), one full run each, one after the other.

--shards also packs the same training videos into tar shards (`action3d data pack`, into a
temporary folder) and measures the loader reading them (`data=shards`) at each worker count,
beside the loader reading the files: clips/s from shards and from files on the same videos.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from action3d.config import DataConfig, TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import command_line, format_table, machine_info, median, write_json  # noqa: E402
from _bench_demo import DEMO_COLUMNS, demo_race  # noqa: E402

from action3d.errors import Action3dError  # noqa: E402

TARGET_WORKERS, TARGET_MODEL = 2, "tiny"   # issue 7: 2 workers keep up with the tiny model


# ------------------------------------------------------------------ config, data, model


def compose_config(overrides: Sequence[str]) -> Any:
    """The typed config of `action3d train OVERRIDES`, checked as the CLI checks it."""
    from action3d.commands._hydra import typed_config

    return typed_config("train", overrides)


def single_process_env(device: torch.device):
    from action3d.engine.distributed import DistEnv

    return DistEnv(rank=0, world_size=1, local_rank=0, device=device)


def batches_forever(loader) -> Iterator[Any]:
    """The trainer's loader, epoch after epoch (the sampler reshuffles per epoch)."""
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


class ModelStep:
    """The trainer's step: uint8 batch -> normalised (channels_last) floats -> forward, loss,
    backward, optimiser step; built from the same config as `action3d train`."""

    def __init__(self, cfg: TrainConfig, data_cfg: DataConfig, num_classes: int, device: torch.device):
        from action3d.engine.optim import build_optimizer
        from action3d.engine.precision import resolve_precision
        from action3d.models import build_model

        self.cfg, self.data_cfg, self.device = cfg, data_cfg, device
        self.precision = resolve_precision(cfg.trainer.precision, device)[0]   # auto: as the trainer picks
        model_cfg = dataclasses.replace(cfg.model, num_classes=num_classes)
        self.model = build_model(model_cfg).to(device)
        if cfg.trainer.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.optimizer = build_optimizer(self.model, cfg.optim)

    def __call__(self, batch) -> None:
        from action3d.engine.data import training_batch
        from action3d.engine.precision import autocast

        clips, labels = training_batch(batch, self.data_cfg, self.device, channels_last=self.cfg.trainer.channels_last)
        with autocast(self.precision, self.device):
            logits = self.model(clips)                                        # (N, num_classes)
            loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def make_loader(dataset, data_cfg: DataConfig, workers: int, device: torch.device, seed: int):
    from action3d.engine.data import train_loader

    cfg = dataclasses.replace(data_cfg, num_workers=workers)
    loader = train_loader(dataset, cfg, single_process_env(device), seed=seed)
    if len(loader) == 0:
        raise Action3dError(f"data.batch_size={cfg.batch_size}: larger than the training split "
                            f"({len(dataset)} videos); lower data.batch_size")
    return loader


# ------------------------------------------------------------------ measurements


def time_model(step: ModelStep, batch, steps: int) -> List[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    return times


def measure_loader(dataset, data_cfg: DataConfig, workers: int, args: argparse.Namespace,
                   device: torch.device) -> Dict[str, float]:
    """Loader alone: first-batch time (worker start-up), then clips/s over `args.batches` batches.

    The batches the workers prefetched while the first one was awaited are skipped, so that the
    timed ones are produced while timing (the steady state of a long epoch).
    """
    loader = make_loader(dataset, data_cfg, workers, device, args.seed)
    batches = batches_forever(loader)
    start = time.perf_counter()
    next(batches)
    first = time.perf_counter() - start
    for _ in range(args.warmup + workers * data_cfg.prefetch_factor):
        next(batches)
    start = time.perf_counter()
    clips = sum(len(next(batches)[1]) for _ in range(args.batches))
    elapsed = time.perf_counter() - start
    _close(batches, loader)
    return {"first_batch_s": first, "loader_clips_per_s": clips / elapsed}


def measure_training_loop(dataset, data_cfg: DataConfig, workers: int, step: ModelStep,
                          args: argparse.Namespace, device: torch.device) -> Dict[str, float]:
    """Loader feeding the model step: clips/s and the share of time spent waiting for a batch."""
    loader = make_loader(dataset, data_cfg, workers, device, args.seed)
    batches = batches_forever(loader)
    for _ in range(1 + args.warmup):
        step(next(batches))
    waited, clips = 0.0, 0
    start = time.perf_counter()
    for _ in range(args.batches):
        before = time.perf_counter()
        batch = next(batches)
        waited += time.perf_counter() - before
        step(batch)
        clips += len(batch[1])
    elapsed = time.perf_counter() - start
    _close(batches, loader)
    return {"train_loop_clips_per_s": clips / elapsed, "data_wait_share": waited / elapsed}


def first_batch(dataset, data_cfg: DataConfig, workers: int, device: torch.device, seed: int):
    """One training batch, for timing the model alone.

    Loaded in a worker when there are any, like every batch before the 0-worker pass, which runs
    last: PyAV/libswscale state made by decoding in this process must not be inherited by forked
    workers (a worker forked after this process decoded can hang in libswscale's thread pool).
    """
    loader = make_loader(dataset, data_cfg, workers, device, seed)
    batches = batches_forever(loader)
    batch = next(batches)
    _close(batches, loader)
    return batch


def _close(batches, loader) -> None:
    """Stop the workers now (persistent workers otherwise live until garbage collection)."""
    batches.close()
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    del loader
    gc.collect()


def pack_for_comparison(dataset, data_cfg: DataConfig, shard_mb: float, folder: str):
    """The training videos of `dataset` packed into tar shards in `folder`, and the shard dataset
    and data config that read them with every other setting unchanged."""
    from action3d.data.dataset import build_dataset
    from action3d.data.shard_pack import pack_dataset
    from action3d.engine.data import shared_index

    pack_dataset({"train": dataset.samples}, classes=dataset.classes, out=folder, shard_mb=shard_mb, progress=False)
    shard_cfg = dataclasses.replace(data_cfg, format="shards", root=folder, train_list=None, val_list=None,
                                    classes_file=None, annotation_dir=None, sampler="random")
    shards = shared_index(shard_cfg, "train", None)  # a ShardDataset's samples, classes and class
    return build_dataset(shard_cfg, "train", train=True, seed=dataset.seed, **shards), shard_cfg


# ------------------------------------------------------------------ report


COLUMNS = [("workers", "workers", "d"), ("first batch s", "first_batch_s", ".2f"),
           ("loader clips/s", "loader_clips_per_s", ".1f"), ("model clips/s", "model_clips_per_s", ".1f"),
           ("loader/model", "loader_vs_model", ".2f"), ("bound by", "bound_by", ""),
           ("train loop clips/s", "train_loop_clips_per_s", ".1f"), ("data wait", "data_wait_percent", ".0f")]


def target_line(rows: Sequence[Dict[str, Any]], model_name: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    row = next((r for r in rows if r["workers"] == TARGET_WORKERS), None)
    if row is None or model_name != TARGET_MODEL:
        return None, None
    met = row["loader_clips_per_s"] >= row["model_clips_per_s"]
    target = {"workers": TARGET_WORKERS, "model": TARGET_MODEL, "loader_clips_per_s": row["loader_clips_per_s"],
              "model_clips_per_s": row["model_clips_per_s"], "met": met}
    line = (f"target: with {TARGET_WORKERS} workers the loader delivers at least as many clips/s as the "
            f"{TARGET_MODEL} model trains ({row['loader_clips_per_s']:.1f} vs {row['model_clips_per_s']:.1f}): "
            f"{'met' if met else 'NOT met'}")
    return target, line


SHARD_COLUMNS = [("shards loader clips/s", "shards_loader_clips_per_s", ".1f"),
                 ("shards/files", "shards_vs_files", ".2f")]


# ------------------------------------------------------------------ command line


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of `action3d train` (data=..., model=...)")
    parser.add_argument("--workers", default="0,1,2", help="comma-separated DataLoader worker counts")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per measurement (40; --quick 8)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches after the first (2; --quick 1)")
    parser.add_argument("--steps", type=int, default=None, help="model steps per timing round (10; --quick 3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads of the main process (the model step); "
                             "0: torch's default, as `action3d train`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer batches and steps")
    parser.add_argument("--shards", action="store_true", help="also read the same videos from tar shards")
    parser.add_argument("--clips", default=None, help="comma-separated clips per video K to compare (e.g. 1,2,4)")
    parser.add_argument("--demo", action="store_true",
                        help="race the demo to --target top-1 with trainer.precision=32 and auto (two full runs)")
    parser.add_argument("--target", type=float, default=0.85, help="--demo: the validation top-1 to reach")
    parser.add_argument("--shard-mb", type=float, default=50.0, help="shard size for --shards (MB)")
    parser.add_argument("--out", default="bench_results/pipeline.json")
    args = parser.parse_args(argv)
    try:
        args.workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        parser.error(f"--workers {args.workers}: expected comma-separated integers, e.g. 0,1,2")
    if not args.workers or min(args.workers) < 0:
        parser.error(f"--workers {args.workers}: expected worker counts >= 0")
    for key, (full, quick) in {"batches": (40, 8), "warmup": (2, 1), "steps": (10, 3)}.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    for key in ("batches", "steps"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} {getattr(args, key)}: must be at least 1")
    if args.warmup < 0 or args.threads < 0:
        parser.error(f"--warmup {args.warmup} --threads {args.threads}: must be at least 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        args.clips = sorted({int(k) for k in args.clips.split(",")}) if args.clips else []
    except ValueError:
        parser.error(f"--clips {args.clips}: expected comma-separated integers, e.g. 1,2,4")
    if args.clips and min(args.clips) < 1:
        parser.error(f"--clips {args.clips}: clips per video must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Action3dError as err:
        print(f"bench_pipeline: error: {err}", file=sys.stderr)
        return 2


def measure_clips_per_video(data_cfg: DataConfig, ks: Sequence[int], workers: int, args: argparse.Namespace,
                            device: torch.device) -> List[Dict[str, Any]]:
    """The loader alone with K clips per video, for each K, on the same videos: videos/s and clips/s."""
    from action3d.data.dataset import build_dataset

    rows = []
    for k in ks:
        cfg = dataclasses.replace(data_cfg, num_clips=k)
        dataset = build_dataset(cfg, "train", train=True, seed=args.seed)
        videos_per_s = measure_loader(dataset, cfg, workers, args, device)["loader_clips_per_s"]  # items = videos
        rows.append({"clips_per_video": k, "workers": workers, "loader_videos_per_s": videos_per_s,
                     "loader_clips_per_s": videos_per_s * k})
        print(f"  K={k}: {videos_per_s:.1f} videos/s = {videos_per_s * k:.1f} clips/s", flush=True)
    base = rows[0]["loader_clips_per_s"]
    for row in rows:
        row["clips_vs_k1"] = row["loader_clips_per_s"] / base
    return rows


CLIP_COLUMNS = [("K", "clips_per_video", "d"), ("workers", "workers", "d"),
                ("loader videos/s", "loader_videos_per_s", ".1f"), ("loader clips/s", "loader_clips_per_s", ".1f"),
                ("clips/s vs K=1", "clips_vs_k1", ".2f")]


def run(args: argparse.Namespace) -> int:
    from action3d.data.dataset import build_dataset
    from action3d.engine.data import resolve_data
    from action3d.engine.distributed import pick_device

    cfg = compose_config(args.overrides)
    device = pick_device(cfg.trainer.device)
    torch.manual_seed(cfg.trainer.seed)
    data_cfg = resolve_data(cfg.data)
    dataset = build_dataset(data_cfg, "train", train=True, seed=args.seed)
    if args.shards:
        shard_folder = tempfile.mkdtemp(prefix="bench-pipeline-shards-")
        shard_set, shard_cfg = pack_for_comparison(dataset, data_cfg, args.shard_mb, shard_folder)
    step = ModelStep(cfg, data_cfg, len(dataset.classes), device)
    fixed_batch = first_batch(dataset, data_cfg, max(args.workers), device, args.seed)
    clip_shape = list(fixed_batch[0].shape[1:])
    batch_size = len(fixed_batch[1])
    machine = machine_info()
    print(f"pipeline on {device} ({machine['cuda_device'] or machine['cpu']}, {machine['torch_threads']} threads): "
          f"{data_cfg.name} ({len(dataset)} training videos), batch {batch_size} x {'x'.join(map(str, clip_shape))} "
          f"uint8, model {cfg.model.name} ({cfg.trainer.precision}, "
          f"{'channels_last_3d' if cfg.trainer.channels_last else 'contiguous'}), workers {args.workers}", flush=True)

    time_model(step, fixed_batch, 1 + args.warmup)                         # warm-up
    model_times = time_model(step, fixed_batch, args.steps)
    rows = []
    for workers in sorted(args.workers, reverse=True):   # 0 workers (decoding in this process) last
        row: Dict[str, Any] = {"workers": workers}
        row.update(measure_loader(dataset, data_cfg, workers, args, device))
        if args.shards:  # the same videos, streamed from tar shards
            shard_speed = measure_loader(shard_set, shard_cfg, workers, args, device)["loader_clips_per_s"]
            row.update(shards_loader_clips_per_s=shard_speed, shards_vs_files=shard_speed / row["loader_clips_per_s"])
        row.update(measure_training_loop(dataset, data_cfg, workers, step, args, device))
        model_times += time_model(step, fixed_batch, args.steps)           # a round between worker counts
        rows.append(row)
        print(f"  {workers} workers: loader {row['loader_clips_per_s']:.1f} clips/s, training loop "
              f"{row['train_loop_clips_per_s']:.1f} clips/s "
              f"(waiting for data {row['data_wait_share']:.0%})", flush=True)

    rows.sort(key=lambda row: row["workers"])
    model_clips_per_s = batch_size / median(model_times)
    for row in rows:
        ratio = row["loader_clips_per_s"] / model_clips_per_s
        row.update(model_clips_per_s=model_clips_per_s, loader_vs_model=ratio,
                   bound_by="loader" if ratio < 1 else "model", data_wait_percent=100 * row["data_wait_share"])
    target, line = target_line(rows, cfg.model.name)
    print()
    print(format_table(rows, COLUMNS + (SHARD_COLUMNS if args.shards else [])))
    if args.shards:
        shutil.rmtree(shard_folder, ignore_errors=True)
    print(f"model step alone: median {median(model_times) * 1e3:.0f} ms per batch of {batch_size} "
          f"({len(model_times)} steps in {1 + len(args.workers)} rounds)")
    if line:
        print(line)
    clip_rows = []
    if args.clips:
        print(f"clips per video (data.num_clips), {max(args.workers)} workers:")
        clip_rows = measure_clips_per_video(data_cfg, args.clips, max(args.workers), args, device)
        print(format_table(clip_rows, CLIP_COLUMNS))
    demo_rows = []
    if args.demo:
        print(f"demo race to {args.target:.0%} validation top-1 (overrides: {' '.join(args.overrides) or 'none'}):")
        demo_rows = demo_race(args.overrides, target=args.target)
        print(format_table(demo_rows, DEMO_COLUMNS))
    report = {
        "benchmark": "pipeline", "command": command_line(), "machine": machine,
        "settings": {"device": str(device), "dataset": data_cfg.name, "format": data_cfg.format,
                     "root": data_cfg.root, "train_videos": len(dataset), "batch_size": batch_size,
                     "clip": clip_shape, "model": cfg.model.name, "precision": cfg.trainer.precision,
                     "precision_runs_as": step.precision,
                     "channels_last": cfg.trainer.channels_last, "workers": args.workers,
                     "batches": args.batches, "warmup": args.warmup, "steps_per_round": args.steps,
                     "shards": {"shard_mb": args.shard_mb} if args.shards else None,
                     "overrides": list(args.overrides)},
        "model": {"step_ms_median": median(model_times) * 1e3, "step_ms_all": [t * 1e3 for t in model_times],
                  "clips_per_s": model_clips_per_s},
        "results": rows, "target": target, "clips_per_video": clip_rows,
        "demo_race": {"target_top1": args.target, "runs": demo_rows} if args.demo else None,
    }
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
