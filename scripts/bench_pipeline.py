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

--per-core measures one loader worker pinned to a core of its own on the clips of torchvision's
protocol (16 frames at 15 fps, 112-px crops) from generated Kinetics-like videos read five ways:
raw, after `data prepare` (native rate and 15 fps), as tar shards, and as frame folders written by
`action3d data extract short_side=128` (data.format=rawframes with data.fps=25): clips/s per core of
each source on the same clips, the loader cores a GPU would need, and the step fed by the loader
against the step fed from memory (bench_results/pipeline_per_core.json).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import os
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
from _bench_common import (  # noqa: E402
    command_line,
    format_table,
    machine_info,
    median,
    write_json,
    write_test_video,
)
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


# ------------------------------------------------------------------ per loader core (--per-core; gpu_check's loader)

# torchvision's video-classification protocol (references/video_classification): 16 frames at
# 15 fps, frames resized to 128 px on the short side, 112-px crops.
PROTOCOL = {"clip_len": 16, "target_fps": 15.0, "short_side": 128, "crop_size": 112}
RAW = {"width": 340, "height": 256, "fps": 25}   # Kinetics-like raw downloads (256-px short side)
SOURCES = ("raw", "prepared", "prepared_15fps", "shards", "rawframes")
DEFAULT_GPU_RATES = (500.0, 800.0)   # issue 22's estimate of r3d_18's training ceiling on an H200


def data_fields() -> set:
    return {f.name for f in dataclasses.fields(DataConfig)}


def target_fps_missing() -> Optional[str]:
    """Why clips cannot be taken at a target frame rate here (None: data.target_fps exists)."""
    if "target_fps" in data_fields():
        return None
    return "data.target_fps is not in this tree yet ('Reproduce the model zoos' adds it)"


def prepare_fps_missing() -> Optional[str]:
    import inspect

    from action3d.data.prepare import prepare_dataset

    if "target_fps" in inspect.signature(prepare_dataset).parameters:
        return None
    return "prepare's target_fps is not in this tree yet ('Reproduce the model zoos' adds it)"


def rawframes_missing() -> Optional[str]:
    from action3d.config.option import DATA_ACTIONS
    from action3d.data.formats import FORMAT_NAMES

    if "rawframes" in FORMAT_NAMES and "extract" in DATA_ACTIONS:
        return None
    return ("data.format=rawframes and `action3d data extract` are not in this tree yet "
            "('Train like the zoos' adds them)")


def protocol_overrides(native_fps: Optional[float] = None) -> Tuple[List[str], Dict[str, Any]]:
    """The `action3d train` overrides that take torchvision's protocol clips, and what they are.

    With data.target_fps: 16 frames at 15 fps (frame_interval 1 at the target rate). Without it
    (this tree before 'Reproduce the model zoos'): 16 frames every 2nd frame of the 25-fps video,
    the nearest clip of the same size (it spans 1.24 s instead of 1.07 s)."""
    common = [f"data.clip_len={PROTOCOL['clip_len']}", f"data.short_side={PROTOCOL['short_side']}",
              f"data.crop_size={PROTOCOL['crop_size']}"]
    missing = target_fps_missing()
    if native_fps is not None and abs(native_fps - PROTOCOL["target_fps"]) < 1e-6:   # already at 15 fps
        clip = {"clip_len": 16, "target_fps": PROTOCOL["target_fps"], "frame_interval": 1,
                "crop_size": PROTOCOL["crop_size"]}
        rate = [f"data.target_fps={PROTOCOL['target_fps']}"] if missing is None else []
        return [*common, "data.frame_interval=1", *rate], clip
    if missing is None:
        clip = {"clip_len": 16, "target_fps": PROTOCOL["target_fps"], "frame_interval": 1,
                "crop_size": PROTOCOL["crop_size"]}
        return [*common, "data.frame_interval=1", f"data.target_fps={PROTOCOL['target_fps']}"], clip
    clip = {"clip_len": 16, "target_fps": None, "frame_interval": 2, "crop_size": PROTOCOL["crop_size"],
            "note": f"{missing}: 16 frames every 2nd frame instead of 16 at 15 fps"}
    return [*common, "data.frame_interval=2"], clip


def _write_one(job: Tuple[str, int, int, int, int, int]) -> str:
    # A forked pool process: one torch thread, or OpenMP's pool state inherited from a parent that
    # has computed can hang the frames' interpolation.
    torch.set_num_threads(1)
    path, width, height, fps, frames, seed = job
    return str(write_test_video(path, width=width, height=height, fps=fps, frames=frames, seed=seed))


def write_lists(folder: Path, samples: Sequence[Tuple[str, int]], classes: Sequence[str]) -> Path:
    """`folder/train.txt` (paths relative to folder) and `folder/classes.txt`."""
    from action3d.data.annotation_io import write_classes_file, write_list_file

    write_list_file(folder / "train.txt", list(samples), folder)
    write_classes_file(folder / "classes.txt", list(classes))
    return folder / "train.txt"


def make_raw_videos(folder: Path, count: int, *, seconds: float, width: int = RAW["width"],
                    height: int = RAW["height"], fps: int = RAW["fps"], workers: int = 1,
                    classes: int = 4) -> List[Tuple[str, int]]:
    """`count` Kinetics-like videos under folder/train/cK/ (cached: existing files are kept) and
    their train.txt/classes.txt; returns (absolute path, label) per video."""
    from concurrent.futures import ProcessPoolExecutor

    frames = max(2, int(round(seconds * fps)))
    jobs = [(str(folder / "train" / f"c{i % classes}" / f"v{i:03d}_{width}x{height}_{fps}fps_{frames}.mp4"),
             width, height, fps, frames, i) for i in range(count)]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_one, jobs))
    else:
        for job in jobs:
            _write_one(job)
    samples = [(path, i % classes) for i, (path, *_rest) in enumerate(jobs)]
    write_lists(folder, samples, [f"c{k}" for k in range(classes)])
    return samples


def prepare_videos(samples: Sequence[Tuple[str, int]], root: Path, out: Path, *, workers: int,
                   target_fps: Optional[float] = None) -> List[Tuple[str, int]]:
    """`data prepare short_side=128 gop=16` of the videos (at `target_fps` when given), and its lists."""
    from action3d.data.prepare import prepare_dataset

    extra = {} if target_fps is None else {"target_fps": target_fps}
    done = prepare_dataset(list(samples), root=root, out=out, short_side=PROTOCOL["short_side"], gop=16,
                           workers=workers, progress=False, **extra)
    if len(done) != len(samples):
        raise Action3dError(f"prepare: {len(samples) - len(done)} of {len(samples)} videos failed "
                            f"(see {out}/prepare_failures.txt)")
    prepared = [(str(out / path), label) for path, label in done]
    classes = sorted({Path(p).parent.name for p, _ in samples})
    write_lists(out, prepared, classes)
    return prepared


def extract_frames(raw: Path, out: Path) -> Path:
    """`action3d data extract` of the raw videos into frame folders (a fresh process, as a user runs it)."""
    import subprocess

    argv = [sys.executable, "-m", "action3d", "data", "extract", "data=folder", f"data.root={raw}",
            f"data.train_list={raw / 'train.txt'}", "data.val_list=null", f"out={out}",
            f"short_side={PROTOCOL['short_side']}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise Action3dError(f"data extract failed (exit {done.returncode}): {lines[-1] if lines else ''}")
    return out


def source_overrides(source: str, folder: Path, native_fps: float) -> List[str]:
    """How `action3d train` reads each source (besides the protocol's sampling)."""
    if source == "shards":
        return ["data=shards", f"data.root={folder}"]
    if source == "rawframes":
        fps = [f"data.fps={native_fps}"] if "fps" in data_fields() else []
        return ["data=folder", "data.format=rawframes", f"data.root={folder}",
                f"data.train_list={folder / 'train.txt'}", *fps]
    decode = [f"data.decode_short_side={PROTOCOL['short_side']}"] if source == "raw" else []
    return ["data=folder", f"data.root={folder}", f"data.train_list={folder / 'train.txt'}",
            f"data.classes_file={folder / 'classes.txt'}", *decode]


class Sources:
    """The torchvision-protocol training sets of one group of videos, each built on first use:
    raw, prepared, prepared at 15 fps, tar shards (of the prepared videos) and frame folders.
    `missing[source]` says why one cannot be built in this tree."""

    def __init__(self, folder: Path, *, videos: int, seconds: float, workers: int,
                 raw_size: Tuple[int, int] = (RAW["width"], RAW["height"]), fps: int = RAW["fps"]):
        self.folder, self.videos, self.seconds, self.workers = Path(folder), videos, seconds, workers
        self.raw_size, self.fps = raw_size, fps
        self.missing: Dict[str, str] = {}
        if prepare_fps_missing():
            self.missing["prepared_15fps"] = prepare_fps_missing()
        if rawframes_missing():
            self.missing["rawframes"] = rawframes_missing()
        self._raw: Optional[List[Tuple[str, int]]] = None
        self._prepared: Optional[List[Tuple[str, int]]] = None

    def raw(self) -> List[Tuple[str, int]]:
        if self._raw is None:
            width, height = self.raw_size
            self._raw = make_raw_videos(self.folder / "raw", self.videos, seconds=self.seconds, width=width,
                                        height=height, fps=self.fps, workers=self.workers)
        return self._raw

    def prepared(self) -> List[Tuple[str, int]]:
        if self._prepared is None:
            self._prepared = prepare_videos(self.raw(), self.folder / "raw", self.folder / "prepared",
                                            workers=self.workers)
        return self._prepared

    def root(self, source: str) -> Path:
        """The folder the source is read from, built on first use."""
        if source in self.missing:
            raise Action3dError(self.missing[source])
        if source == "raw":
            self.raw()
        elif source == "prepared":
            self.prepared()
        elif source == "prepared_15fps":
            out = self.folder / "prepared_15fps"
            prepare_videos(self.raw(), self.folder / "raw", out, workers=self.workers,
                           target_fps=PROTOCOL["target_fps"])
            return out
        elif source == "shards":
            out = self.folder / "shards"
            if not (out / "index.json").is_file():
                from action3d.data.shard_pack import pack_dataset

                classes = sorted({Path(p).parent.name for p, _ in self.raw()})
                pack_dataset({"train": self.prepared()}, classes=classes, out=out, shard_mb=50.0, progress=False)
            return out
        elif source == "rawframes":
            out = self.folder / "rawframes"
            if not (out / "train.txt").is_file():
                self.raw()
                extract_frames(self.folder / "raw", out)
            return out
        else:
            raise Action3dError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
        return self.folder / source

    def config(self, source: str, extra: Sequence[str] = ()) -> Tuple[Any, Dict[str, Any]]:
        """(the typed `action3d train` config that reads `source` with the protocol's clips, the clip)."""
        folder = self.root(source)
        fps = PROTOCOL["target_fps"] if source == "prepared_15fps" else self.fps
        overrides, clip = protocol_overrides(fps)
        return compose_config([*source_overrides(source, folder, self.fps), *overrides, *extra]), clip

    def dataset(self, source: str, extra: Sequence[str] = ()):
        """(dataset, its data config, the clip) of `source` as `action3d train` builds them."""
        from action3d.data.dataset import build_dataset
        from action3d.engine.data import resolve_data, shared_index

        cfg, clip = self.config(source, extra)
        data_cfg = dataclasses.replace(resolve_data(cfg.data), pin_memory=False)
        dataset = build_dataset(data_cfg, "train", train=True, seed=0, **shared_index(data_cfg, "train", None))
        return dataset, data_cfg, cfg, clip


class PinWorker:
    """worker_init_fn: loader worker i runs on core cores[i % len(cores)] alone."""

    def __init__(self, cores: Sequence[int]):
        self.cores = list(cores)

    def __call__(self, worker_id: int) -> None:
        os.sched_setaffinity(0, {self.cores[worker_id % len(self.cores)]})


def core_split(workers: int) -> Tuple[Optional[List[int]], Optional[List[int]]]:
    """(cores of the main process, cores of the loader workers) so that they do not share one,
    or (None, None) where the machine has too few cores (or no affinity control)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if workers < 1 or len(cores) < 2:
        return None, None
    main_count = max(1, len(cores) - workers)
    return cores[:main_count], cores[main_count:]


class pinned:
    """Context: this process on `cores` with as many torch threads (restored afterwards)."""

    def __init__(self, cores: Optional[Sequence[int]]):
        self.cores = cores

    def __enter__(self):
        if self.cores is not None:
            self.saved = (os.sched_getaffinity(0), torch.get_num_threads())
            os.sched_setaffinity(0, set(self.cores))
            torch.set_num_threads(len(self.cores))
        return self

    def __exit__(self, *exc) -> None:
        if self.cores is not None:
            os.sched_setaffinity(0, self.saved[0])
            torch.set_num_threads(self.saved[1])


def loader_rate(dataset, data_cfg: DataConfig, workers: int, *, batches: int, warmup: int = 1,
                seconds: Optional[float] = None, pin: bool = False, seed: int = 0) -> Dict[str, Any]:
    """The loader alone: clips/s delivered to an idle main process over `batches` batches (or
    until `seconds` have passed, at least 2 batches), after the first batch and the batches the
    workers prefetched. pin: the workers on cores of their own, the main process on the rest."""
    device = torch.device("cpu")
    main_cores, worker_cores = core_split(workers) if pin else (None, None)
    loader = make_loader(dataset, data_cfg, workers, device, seed)
    if worker_cores:
        loader.worker_init_fn = PinWorker(worker_cores)
    with pinned(main_cores):
        batches_iter = batches_forever(loader)
        start = time.perf_counter()
        next(batches_iter)
        first = time.perf_counter() - start
        for _ in range(warmup + workers * data_cfg.prefetch_factor):
            next(batches_iter)
        clips, count = 0, 0
        start = time.perf_counter()
        while count < batches and (seconds is None or count < 2 or time.perf_counter() - start < seconds):
            clips += len(next(batches_iter)[1])
            count += 1
        elapsed = time.perf_counter() - start
        _close(batches_iter, loader)
    rate = clips / elapsed
    return {"workers": workers, "clips_per_s": rate, "clips_per_s_per_worker": rate / max(1, workers),
            "first_batch_s": first, "batches": count, "clips": clips,
            "pinned": {"main": main_cores, "workers": worker_cores} if worker_cores else None}


def cores_needed(per_core: Dict[str, Dict[str, Any]], rates: Sequence[float]) -> List[Dict[str, Any]]:
    """Loader cores a GPU that trains at each of `rates` clips/s would need, per source."""
    import math

    rows = []
    for source, figure in per_core.items():
        if not figure.get("clips_per_s_per_core"):
            continue
        for rate in rates:
            rows.append({"source": source, "gpu_clips_per_s": rate,
                         "cores": rate / figure["clips_per_s_per_core"],
                         "cores_whole": math.ceil(rate / figure["clips_per_s_per_core"])})
    return rows


def measured_gpu_rates(path: Path = Path("bench_results/gpu_check.json")) -> List[Dict[str, Any]]:
    """The training ceilings gpu_check.py measured on a GPU (bf16, channels_last), if it has run."""
    import json

    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    rows = report.get("ceiling", {}).get("results", [])
    return [{"preset": r["preset"], "clips_per_s": r["clips_per_s"], "gpu": report.get("machine", {}).get("gpu")}
            for r in rows if r.get("precision") == "bf16" and r.get("channels_last") and r.get("clips_per_s")]


def step_comparison(sources: Sources, model: str, *, batch: int, steps: int, warmup: int,
                    precision: str = "auto") -> Dict[str, Any]:
    """The training step fed by tensors in memory (one fixed batch) against the same step fed by
    the real loader (prepared videos, one worker), the worker on a core of its own and the step
    on the others where the machine allows."""
    cfg_extra = [f"model={model}", f"data.batch_size={batch}", f"trainer.precision={precision}"]
    dataset, data_cfg, cfg, clip = sources.dataset("prepared", cfg_extra)
    device = torch.device("cpu")
    step = ModelStep(cfg, data_cfg, len(dataset.classes), device)
    workers = 1
    main_cores, worker_cores = core_split(workers)
    batch_data = first_batch(dataset, data_cfg, workers, device, 0)
    with pinned(main_cores):
        time_model(step, batch_data, max(1, warmup))
        memory_times = time_model(step, batch_data, steps)
    loader = make_loader(dataset, data_cfg, workers, device, 0)
    if worker_cores:
        loader.worker_init_fn = PinWorker(worker_cores)
    with pinned(main_cores):
        batches_iter = batches_forever(loader)
        for _ in range(max(1, warmup)):
            step(next(batches_iter))
        waited, clips = 0.0, 0
        start = time.perf_counter()
        for _ in range(steps):
            before = time.perf_counter()
            b = next(batches_iter)
            waited += time.perf_counter() - before
            step(b)
            clips += len(b[1])
        elapsed = time.perf_counter() - start
        _close(batches_iter, loader)
    memory_rate = len(batch_data[1]) / median(memory_times)
    loader_rate_ = clips / elapsed
    return {"model": model, "precision": precision, "precision_runs_as": step.precision, "batch": batch,
            "clip": clip, "source": "prepared", "workers": workers,
            "pinned": {"main": main_cores, "workers": worker_cores},
            "torch_threads": len(main_cores) if main_cores else torch.get_num_threads(),
            "memory_clips_per_s": memory_rate, "memory_step_ms": [t * 1e3 for t in memory_times],
            "loader_fed_clips_per_s": loader_rate_, "loader_fed_vs_memory": loader_rate_ / memory_rate,
            "data_wait_share": waited / elapsed}


PER_CORE_COLUMNS = [("source", "source", ""), ("clips/s per core", "clips_per_s_per_core", ".1f"),
                    ("first batch s", "first_batch_s", ".2f"), ("clip", "clip_text", "")]
CORES_COLUMNS = [("source", "source", ""), ("GPU clips/s", "gpu_clips_per_s", ".0f"), ("loader cores", "cores", ".1f")]
STEP_COLUMNS = [("model", "model", ""), ("batch", "batch", "d"), ("runs as", "precision_runs_as", ""),
                ("from memory clips/s", "memory_clips_per_s", ".2f"),
                ("loader-fed clips/s", "loader_fed_clips_per_s", ".2f"), ("fed/memory", "loader_fed_vs_memory", ".2f"),
                ("data wait", "data_wait_share", ".0%")]


def clip_text(clip: Dict[str, Any]) -> str:
    rate = f"at {clip['target_fps']:g} fps" if clip.get("target_fps") else f"every {clip['frame_interval']}"
    return f"{clip['clip_len']} frames {rate}, {clip['crop_size']} px"


def run_per_core(args: argparse.Namespace) -> int:
    """--per-core: clips/s per loader core of every source, the cores a GPU would need, and the
    step fed by the loader against the step fed from memory."""

    folder = Path(args.per_core_dir or tempfile.mkdtemp(prefix="bench-pipeline-per-core-"))
    sources = Sources(folder, videos=args.videos, seconds=args.seconds, workers=os.cpu_count() or 1)
    machine = machine_info()
    print(f"per loader core on {machine['cpu']} ({machine['cpu_count']} cores): torchvision protocol clips "
          f"from {args.videos} raw {RAW['width']}x{RAW['height']} {RAW['fps']}-fps videos of {args.seconds:g} s",
          flush=True)
    per_core: Dict[str, Dict[str, Any]] = {}
    for source in args.sources:
        if source in sources.missing:
            per_core[source] = {"absent": sources.missing[source]}
            print(f"  {source}: absent ({sources.missing[source]})", flush=True)
            continue
        start = time.perf_counter()
        dataset, data_cfg, _, clip = sources.dataset(source, [f"data.batch_size={args.loader_batch}"])
        built = time.perf_counter() - start
        figure = loader_rate(dataset, data_cfg, 1, batches=args.batches, warmup=args.warmup, pin=True)
        per_core[source] = {"clips_per_s_per_core": figure["clips_per_s"], "workers": 1,
                            "first_batch_s": figure["first_batch_s"], "batches": figure["batches"],
                            "batch_size": args.loader_batch, "pinned": figure["pinned"], "clip": clip,
                            "videos": len(dataset), "build_s": built}
        print(f"  {source}: {figure['clips_per_s']:.1f} clips/s per core ({clip_text(clip)})", flush=True)
    rates = list(args.gpu_rates)
    measured = measured_gpu_rates()
    rates += [row["clips_per_s"] for row in measured if row["clips_per_s"] not in rates]
    needed = cores_needed(per_core, rates)
    steps = []
    for model in args.models:
        batch = min(args.videos, 8 if model == "tiny" else 4)
        count = args.steps if model == "tiny" else max(2, args.steps // 3)   # r3d_18: seconds per step here
        row = step_comparison(sources, model, batch=batch, steps=count, warmup=args.warmup)
        steps.append(row)
        print(f"  step {model}: {row['memory_clips_per_s']:.2f} clips/s from memory, "
              f"{row['loader_fed_clips_per_s']:.2f} fed by the loader", flush=True)
    table = [{"source": s, **f, "clip_text": clip_text(f["clip"]) if "clip" in f else f.get("absent")}
             for s, f in per_core.items()]
    print()
    print(format_table(table, PER_CORE_COLUMNS))
    print()
    print(format_table(needed, CORES_COLUMNS))
    print()
    print(format_table(steps, STEP_COLUMNS))
    report = {"benchmark": "pipeline_per_core", "command": command_line(), "machine": machine,
              "protocol": PROTOCOL, "raw_videos": {**RAW, "count": args.videos, "seconds": args.seconds},
              "per_core": per_core, "gpu_rates": rates, "measured_gpu_ceilings": measured,
              "cores_needed": needed, "step": steps}
    print(f"wrote {write_json(args.out, report)}")
    if not args.per_core_dir:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


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
    parser.add_argument("--per-core", action="store_true",
                        help="clips/s per loader core of torchvision-protocol clips (16 frames at 15 fps, 112 px) "
                             "from raw video, prepared video, prepared at 15 fps, shards and frame folders; the "
                             "loader cores a GPU would need; the step fed by the loader against tensors in memory")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"--per-core: some of {','.join(SOURCES)}")
    parser.add_argument("--models", default="tiny,r3d_18", help="--per-core: models of the step comparison")
    parser.add_argument("--videos", type=int, default=8, help="--per-core: raw videos generated")
    parser.add_argument("--seconds", type=float, default=10.0, help="--per-core: length of each raw video")
    parser.add_argument("--loader-batch", type=int, default=8, help="--per-core: loader batch size")
    parser.add_argument("--gpu-rates", default=",".join(f"{r:g}" for r in DEFAULT_GPU_RATES),
                        help="--per-core: GPU training speeds (clips/s) to size the loader for")
    parser.add_argument("--per-core-dir", default=None, help="--per-core: keep (and reuse) the videos in this folder")
    parser.add_argument("--out", default=None, help="the JSON report (default bench_results/pipeline.json; "
                                                    "--per-core: bench_results/pipeline_per_core.json)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = "bench_results/pipeline_per_core.json" if args.per_core else "bench_results/pipeline.json"
    args.sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(args.sources) - set(SOURCES))
    if unknown:
        parser.error(f"--sources {','.join(unknown)}: expected some of {','.join(SOURCES)}")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        args.gpu_rates = [float(r) for r in args.gpu_rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--gpu-rates {args.gpu_rates}: expected comma-separated numbers, e.g. 500,800")
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
        return run_per_core(args) if args.per_core else run(args)
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
