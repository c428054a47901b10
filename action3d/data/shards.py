"""Tar shards in the webdataset format: `action3d data pack` writes them (`shard_pack`), `ShardDataset`
streams them.

On network storage, opening and seeking hundreds of thousands of small files is the bottleneck;
reading a few hundred large files front to back is not. `shard_pack.pack_dataset` writes each split's videos
(unchanged bytes, best after `data prepare`) into tar shards of about `shard_mb` MB, in a seeded
random order so that every shard mixes the classes:

    DIR/index.json                 format, classes, per split: samples, shards (name, first key, count)
    DIR/train-samples.npz          per key: the source video's path and its label(s) (a `SampleIndex`)
    DIR/train/train-000000.tar     000000000.mp4  000000000.cls  000000000.json  000000001.mp4 ...

A sample's key is its position in the pack order (shard j holds keys first_j .. first_j + count_j - 1);
`.cls` is its label as text (a multi-label pack's: its class indices, `3 17`), `.json` names the
source video. `ShardDataset` reads them with the webdataset library (`tar_file_expander`,
`group_by_keys`, `shuffle`) and yields the same items as `VideoDataset`, `(clip uint8, label, key)`
(under data.multi_label the label a multi-hot row), decoding each video from memory with the same code.

Training (`assign(train=True)`): each epoch orders the shards by a permutation of (seed, epoch);
their samples, in that order, are cut into ranks x workers equal, contiguous ranges of
`per_worker` samples (a multiple of the batch size; the remainder, fewer than ranks x workers x
batch, waits for another epoch), so every rank has the same number of batches and DDP stays in
step. A shuffle buffer of `data.shard_shuffle` samples, seeded by (seed, epoch, range), mixes each
range; augmentation is seeded by (seed, epoch, key). A corrupt sample (or one missing from a damaged
shard) is replaced by another sample of the same stream, named in the log and counted, so the
counts never change. Evaluation (`assign(train=False)`): the keys 0..N-1 are cut into ranks x workers
contiguous ranges in pack order, so every video counts exactly once, without padding.

Epoch control (`set_epoch(epoch, start=...)`, `epoch`) lives in a shared-memory tensor that
persistent loader workers read when an epoch starts, and `ShardLoader.sampler` is the dataset, so
the trainer drives it as it drives its samplers. Resuming at `start` (a multiple of the batch, as
the trainer saves it) replays the consumed part of each worker's range without decoding and
rotates the workers, so the rest of the epoch is the same batches in the same order, as long as
the number of ranks, workers and the batch size are unchanged.
"""
from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from action3d.data.annotation_io import SHARD_INDEX_FILE, Label, read_shard_index
from action3d.data.dataset import MAX_ATTEMPTS, VideoDataset
from action3d.data.index import SampleIndex
from action3d.data.load_failures import DatasetBrokenError
from action3d.data.shard_pack import VIDEO_SUFFIXES, sample_key
from action3d.errors import Action3dError

log = logging.getLogger("action3d.data")

REPLACEMENT_POOL = 4        # recent samples (and as many ahead) a corrupt one may be replaced by


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Shard:
    path: str     # absolute path of the tar file
    first: int    # key of its first sample
    count: int


class ShardSamples(SampleIndex):
    """The samples of one packed split in key order (`[key] -> (source path, label)`) and its shards."""

    def __init__(self, table: SampleIndex, shards: Sequence[Shard]):
        super().__init__(table.prefix, table._data, table._offsets, table.labels, table.label_offsets)
        self.shards = list(shards)


def load_shard_split(root: str | os.PathLike, split: str) -> tuple[ShardSamples, list[str]]:
    """The samples and shards of `split` packed under `root`, and the class names."""
    index = read_shard_index(root)
    if split not in index["splits"]:
        raise Action3dError(f"data.root={root}: the shards have no {split} split (they have "
                            f"{', '.join(index['splits']) or 'none'})")
    entry = index["splits"][split]
    try:
        table, _ = SampleIndex.load(Path(root) / entry["table"])
    except (OSError, ValueError, KeyError) as err:
        raise Action3dError(f"{Path(root) / entry['table']}: unreadable sample table ({err})") from None
    shards = [Shard(str(Path(root, s["name"]).absolute()), int(s["first"]), int(s["count"])) for s in entry["shards"]]
    if sum(s.count for s in shards) != len(table):
        raise Action3dError(f"{Path(root) / SHARD_INDEX_FILE}: split {split} lists {sum(s.count for s in shards)} "
                            f"samples in its shards but {len(table)} in {entry['table']}")
    return ShardSamples(table, shards), list(index["classes"])


class _Raw(NamedTuple):
    """One sample as read from a shard, before decoding."""

    key: int
    name: str          # the source video's path: what the log and reports name
    label: Label       # an int, or a multi-label pack's tuple of class indices
    video: bytes
    shard: str
    problem: str = ""  # why it could not be read from the shard ("" when it could)


@dataclass(frozen=True)
class Layout:
    """How a split is cut for one rank: its ranks, loader workers and batch size."""

    rank: int
    world_size: int
    workers: int
    batch_size: int
    train: bool
    shuffle: int
    total: int

    @property
    def per_worker(self) -> int:
        """Training: samples each worker of each rank yields per epoch (whole batches)."""
        return self.total // (self.world_size * self.workers * self.batch_size) * self.batch_size

    def eval_range(self, worker: int) -> range:
        """Evaluation: the keys of this rank's `worker`, contiguous, all ranges together 0..total-1."""
        parts = self.world_size * self.workers
        part = self.rank * self.workers + worker
        return range(self.total * part // parts, self.total * (part + 1) // parts)


class ShardDataset(VideoDataset, IterableDataset):
    """Streams a packed split; items `(clip uint8 (C,T,H,W) or (V,C,T,H,W), label, key)` as VideoDataset.

    Build it with `build_dataset(data_cfg, split, ..., **action3d.engine.data.shared_index(...))`
    (data.format=shards), then `assign(...)` it to a rank and its loader (the engine's
    `train_loader`/`shard_loader` do, through `ShardLoader`).
    """

    def __init__(self, samples: ShardSamples, **kwargs):
        super().__init__(samples, **kwargs)
        self.shards: list[Shard] = list(samples.shards)
        self.layout: Layout | None = None
        self._control = torch.zeros(2, dtype=torch.int64).share_memory_()  # epoch, start (samples)
        self._payload: _Raw | None = None

    # -- the trainer's side ---------------------------------------------------------------------

    def assign(self, *, rank: int, world_size: int, num_workers: int, batch_size: int, train: bool,
               shuffle: int = 0) -> ShardDataset:
        """Cut the split for `rank` of `world_size` with `num_workers` loader workers (0: in the
        loading process) and batches of `batch_size`; `train`: equal epochs, else every key once."""
        layout = Layout(rank, world_size, max(1, num_workers), batch_size, train, shuffle, len(self.samples))
        if train and layout.per_worker == 0:
            raise Action3dError(
                f"data.batch_size={batch_size} x {world_size} process(es) x {layout.workers} loader worker(s) "
                f"needs more than the {layout.total} training samples in the shards at {self.root}; lower "
                "data.batch_size or data.num_workers")
        self.layout = layout
        return self

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        """The epoch to stream; `start`: samples of this rank's epoch already consumed (a multiple
        of the batch size: resume skips them)."""
        if self.layout is not None and self.layout.train and start % self.layout.batch_size:
            raise Action3dError(f"ShardDataset.set_epoch: start={start} is not a multiple of the batch size "
                                f"{self.layout.batch_size}")
        self._control[0], self._control[1] = epoch, start

    @property
    def epoch(self) -> int:
        return int(self._control[0])

    def __len__(self) -> int:
        """Samples this rank yields in the current epoch (after `start`)."""
        layout = self.layout
        if layout is None:
            return len(self.samples)
        if layout.train:
            return layout.per_worker * layout.workers - int(self._control[1])
        return sum(len(layout.eval_range(w)) for w in range(layout.workers))

    def __getitem__(self, key):
        raise TypeError("ShardDataset streams its shards: iterate it (through engine.data's loaders), do not index it")

    # -- streaming ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, int]]:
        layout = self.layout
        if layout is None:
            raise Action3dError("ShardDataset: assign it to a rank and loader first (engine.data.train_loader or "
                                "shard_loader do)")
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if workers != layout.workers:
            raise Action3dError(f"ShardDataset: assigned for {layout.workers} loader worker(s), running in {workers}")
        epoch, start = (int(v) for v in self._control.tolist())
        if not layout.train:
            keys = layout.eval_range(worker)
            return self._items(self._read_range(self.shards, keys.start, keys.stop), epoch=0, skip=0)
        done = start // layout.batch_size              # batches of this rank already consumed
        logical = (worker + done) % layout.workers     # the loader asks worker 0 first, whatever `done` is
        slot = layout.rank * layout.workers + logical
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.shards))
        raws = self._read_range([self.shards[i] for i in order], slot * layout.per_worker,
                                (slot + 1) * layout.per_worker)
        if layout.shuffle > 1:
            from webdataset import shuffle

            state = int(np.random.SeedSequence((self.seed, epoch, slot)).generate_state(1)[0])
            raws = shuffle(layout.shuffle, layout.shuffle, rng=random.Random(state))(raws)
        batches_given = (done - logical + layout.workers - 1) // layout.workers
        return self._items(raws, epoch=epoch, skip=batches_given * layout.batch_size)

    def _read_range(self, shards: Sequence[Shard], start: int, stop: int) -> Iterator[_Raw]:
        """Samples `start`..`stop`-1 of the shards' samples taken in the order of `shards`."""
        position = 0
        for shard in shards:
            begin, end = max(start - position, 0), min(stop - position, shard.count)
            if begin < end:
                yield from self._read_shard(shard, shard.first + begin, shard.first + end)
            position += shard.count
            if position >= stop:
                return

    def _read_shard(self, shard: Shard, first: int, stop: int) -> Iterator[_Raw]:
        """Keys `first`..`stop`-1 of `shard`, each exactly once: a key the tar lacks or that a read
        error cut off comes as a sample with `problem` set (it is replaced, never dropped)."""
        from webdataset.tariterators import group_by_keys, tar_file_expander

        expected, problems = first, []

        def stop_reading(error: Exception) -> bool:  # webdataset's handler: record and stop
            problems.append(" ".join(str(error.args[0] if error.args else error).split()))
            return False

        def wanted(name: str) -> bool:
            key = _key_of(name)
            return key is not None and first <= key < stop

        try:
            with open(shard.path, "rb") as stream:
                files = tar_file_expander([{"url": shard.path, "stream": stream}], handler=stop_reading,
                                          select_files=wanted)
                for sample in group_by_keys(files, handler=stop_reading):
                    key = _key_of(sample["__key__"])
                    if key is None or key < expected:
                        continue
                    for missing in range(expected, min(key, stop)):
                        yield self._lost(shard, missing, "missing from the shard")
                    if key >= stop:
                        return
                    yield self._parse(shard, key, sample)
                    expected = key + 1
                    if expected == stop:
                        return
        except OSError as err:
            problems.append(f"cannot read the shard ({err.strerror or err})")
        reason = (f"missing: reading the shard failed ({problems[0]})" if problems
                  else "missing: the shard ends before it (truncated?)")
        for missing in range(expected, stop):
            yield self._lost(shard, missing, reason)

    def _parse(self, shard: Shard, key: int, sample: dict) -> _Raw:
        name = self.samples.path(key)
        videos = [value for suffix, value in sample.items() if suffix in VIDEO_SUFFIXES]
        try:
            fields = sample["cls"].split()
            if self.samples.multi_label:
                label = tuple(sorted({int(f) for f in fields}))
            elif len(fields) == 1:
                label = int(fields[0])
            else:
                raise ValueError(fields)
        except (KeyError, ValueError):
            return _Raw(key, name, self.samples.label(key), b"", shard.path,
                        "its .cls label is missing or not an integer")
        if len(videos) != 1:
            return _Raw(key, name, label, b"", shard.path, f"{len(videos)} video members instead of 1")
        return _Raw(key, name, label, videos[0], shard.path)

    def _lost(self, shard: Shard, key: int, why: str) -> _Raw:
        return _Raw(key, self.samples.path(key), self.samples.label(key), b"", shard.path, why)

    def _items(self, raws: Iterator[_Raw], *, epoch: int, skip: int) -> Iterator[tuple[torch.Tensor, int, int]]:
        """Decoded items; the first `skip` samples are read, not decoded (resume). A sample that does
        not decode is replaced by one of the last and next few of the same stream, chosen with its
        own generator, so the stream keeps its length and stays a function of the shards and seed."""
        source = iter(raws)
        ahead: deque[_Raw] = deque()
        recent: deque[_Raw] = deque(maxlen=REPLACEMENT_POOL)

        def take() -> _Raw | None:
            return ahead.popleft() if ahead else next(source, None)

        def peek() -> list[_Raw]:
            while len(ahead) < REPLACEMENT_POOL and (raw := next(source, None)) is not None:
                ahead.append(raw)
            return list(ahead)

        for _ in range(skip):
            raw = take()
            if raw is None:
                return
            recent.append(raw)
        while (raw := take()) is not None:
            rng = np.random.default_rng((self.seed, epoch, raw.key))
            clip, label = self._load(raw, rng), raw.label
            if clip is None and self.on_error == "mark":
                clip, label = torch.zeros(self.clip_shape, dtype=torch.uint8), -1
            elif clip is None:
                clip, label = self._replace(raw, [*recent, *peek()], rng)
            recent.append(raw)
            yield clip, self.target(label), raw.key

    def _load(self, raw: _Raw, rng: np.random.Generator) -> torch.Tensor | None:
        """The clip of `raw`, or None after recording (once per process and sample) why not."""
        if raw.problem:
            reason = f"{raw.name}: sample {sample_key(raw.key)} of {raw.shard}: {raw.problem}"
            if raw.name not in self._known_bad:
                self._known_bad[raw.name] = reason
                self._count_try(failed=True, path=raw.name, reason=reason)
            self.failures.record(raw.name, reason)
            return None
        self._payload = raw
        try:
            return self._try_load(raw.name, rng)
        finally:
            self._payload = None

    def _source(self, path: str):
        from action3d.data.decode import MemoryVideo

        raw = self._payload
        return MemoryVideo(raw.video, f"{path} (sample {sample_key(raw.key)} of {raw.shard})")

    def _replace(self, raw: _Raw, candidates: list[_Raw], rng: np.random.Generator) -> tuple[torch.Tensor, Label]:
        for k in rng.permutation(len(candidates))[:MAX_ATTEMPTS - 1]:
            other = candidates[int(k)]
            if other.key != raw.key and other.name not in self._known_bad:
                clip = self._load(other, rng)
                if clip is not None:
                    return clip, other.label
        raise DatasetBrokenError(
            f"shards at {self.root}: sample {sample_key(raw.key)} ({raw.name}) and every replacement tried "
            f"failed to decode; e.g. {self._examples()}")


def _key_of(name: str) -> int | None:
    """The key of a member name `000000012.mp4` (or of a sample key `000000012`), None for others."""
    stem = os.path.basename(name).split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


class ShardLoader(DataLoader):
    """A DataLoader over a `ShardDataset`. An IterableDataset takes no sampler, so `sampler` is the
    dataset itself: `loader.sampler.set_epoch(epoch, start=...)`, `loader.sampler.epoch` and
    `len(loader.sampler)` work as with the engine's samplers, and the trainer needs no branch."""

    @property
    def sampler(self):
        return self.dataset

    @sampler.setter
    def sampler(self, value) -> None:
        pass  # DataLoader.__init__ stores a placeholder for iterable datasets; the dataset stands in
