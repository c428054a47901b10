"""Compact sample lists and the resolved-annotation cache, for datasets of hundreds of thousands of videos.

`SampleIndex` holds `(path, label)` samples in three numpy arrays (the path bytes, their offsets,
the labels) instead of a list of Python tuples. DataLoader workers are forked copies of the main
process: reading a Python object writes its reference count, so every page of a list of tuples
that a worker touches becomes a private copy (PyTorch's "copy-on-read"), about 100 MiB per
worker over one epoch at Kinetics-700 size. A worker reading a numpy array writes nothing, so its
pages stay shared (measured by scripts/bench_scale.py).

`resolve_index(data_cfg, split)` is `annotations.load_split` (read the annotation files, walk the
dataset root, match, report missing files) with its result cached under
`$ACTION3D_CACHE/index/` (`~/.cache/action3d/index/`), so the dataset root may be read-only. The
cache key is a hash of the format, the root path, the split and the bytes of every annotation file
(the data format names them: `DatasetFormat.annotation_files`); a cached entry also records the
modification time of every folder that resolving listed (`DatasetFormat.listed_folders`), and is
rebuilt when one of them changed (a video added, removed or renamed), or when one had changed
less than `RACY_NS` before the entry was written. A warm load reads the annotation files (to hash
them), stats those folders and loads the arrays.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from action3d.data.formats import format_of
from action3d.files import atomic_write

log = logging.getLogger("action3d.data")

CACHE_VERSION = 1        # bump when the cached content or its meaning changes
RACY_NS = 2_000_000_000  # folder times this close to the resolution are not trusted (see _load_cached)


class SampleIndex:
    """`(path, label)` samples in compact arrays; reads like a sequence of tuples.

    Paths are stored as UTF-8 (`os.fsencode`) bytes after a common prefix, concatenated into one
    uint8 array with int64 offsets; labels are an int64 array (`labels`, -1: unknown). Pickling
    copies three arrays, so it is cheap to send to loader workers or other ranks.
    """

    def __init__(self, prefix: str, data: np.ndarray, offsets: np.ndarray, labels: np.ndarray):
        if len(offsets) != len(labels) + 1:
            raise ValueError(f"SampleIndex: {len(offsets)} offsets for {len(labels)} labels")
        self.prefix = prefix
        self._data = np.ascontiguousarray(data, dtype=np.uint8)
        self._offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> SampleIndex:
        paths, labels = [], []
        for path, label in pairs:
            paths.append(str(path))
            labels.append(int(label))
        prefix = os.path.commonprefix(paths) if len(paths) > 1 else ""
        encoded = [os.fsencode(p[len(prefix):]) for p in paths]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return cls(prefix, data, offsets, np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self.prefix + os.fsdecode(self._data[start:end].tobytes())

    def __getitem__(self, index: int) -> tuple[str, int]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (0..{len(self) - 1})")
        return self.path(index), int(self.labels[index])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other) -> bool:
        if not isinstance(other, SampleIndex):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable arrays inside: not hashable

    @property
    def nbytes(self) -> int:
        return self._data.nbytes + self._offsets.nbytes + self.labels.nbytes

    def __repr__(self) -> str:
        return f"SampleIndex({len(self)} samples, {self.nbytes / 2**20:.1f} MiB, prefix {self.prefix!r})"

    # -- files ----------------------------------------------------------------------------------

    def arrays(self, **meta) -> dict[str, np.ndarray]:
        """The arrays to store, with `meta` (JSON-able) as one uint8 array: no pickle needed to load."""
        header = {"prefix": self.prefix, **meta}
        return {"data": self._data, "offsets": self._offsets, "labels": self.labels,
                "meta": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}

    def save(self, path: str | os.PathLike, **meta) -> Path:
        """Write an `.npz` atomically (see `action3d.files.atomic_write`)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays(**meta))
        return atomic_write(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[SampleIndex, dict]:
        """The index stored by `save` and its meta dict (raises OSError/ValueError/KeyError when damaged)."""
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes().decode())
            index = cls(meta["prefix"], arrays["data"], arrays["offsets"], arrays["labels"])
        return index, meta


def as_sample_index(samples: Iterable[tuple[str, int]]) -> SampleIndex:
    """`samples` itself if it is a `SampleIndex` (or a subclass), else a new one built from the pairs."""
    return samples if isinstance(samples, SampleIndex) else SampleIndex.from_pairs(samples)


# --------------------------------------------------------------------------- the resolved-index cache

def index_cache_dir() -> Path:
    from action3d.data.synthetic import cache_dir

    return cache_dir() / "index"


def folder_times(tops: Sequence[Path]) -> dict[str, int]:
    """Modification time (ns) of every folder under `tops` (symlinked folders are not followed,
    as `os.walk`). Each folder is stat'ed before it is listed, so a change made during the walk
    shows as a newer time next time."""
    times: dict[str, int] = {}
    stack = [str(t) for t in tops]
    while stack:
        folder = stack.pop()
        try:
            times[folder] = os.stat(folder).st_mtime_ns
            with os.scandir(folder) as entries:
                stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            times[folder] = -1  # gone or unreadable: a later listing that works differs
    return times


def cache_key(data_cfg, split: str, files: Sequence[Path]) -> str:
    """A hash of the format, the root path, the split and every annotation file's name and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    root = os.path.abspath(data_cfg.root) if data_cfg.root else ""
    head = [CACHE_VERSION, data_cfg.format, root, split, data_cfg.split,
            [str(f) for f in files]]
    digest.update(json.dumps(head).encode())
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _captured_warnings(logger: logging.Logger) -> Iterator[list[str]]:
    """The messages of warnings `logger` emits meanwhile (they are still logged as usual)."""
    notes: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                notes.append(record.getMessage())

    handler = Capture()
    logger.addHandler(handler)
    try:
        yield notes
    finally:
        logger.removeHandler(handler)


def _load_cached(path: Path) -> tuple[SampleIndex, list[str], list[str]] | None:
    """(index, classes, notes) from a valid cache file, else None (missing, damaged or stale)."""
    try:
        index, meta = SampleIndex.load(path)
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt, never fatal
        log.info("index cache %s unreadable (%s): rebuilding it", path, err)
        return None
    folders = meta.get("folders", {})
    if folders and _stat_times(list(folders)) != folders:
        log.info("index cache %s: the dataset's folder listing changed; rebuilding it", path)
        return None
    # A folder changed within RACY_NS before the resolution may change again within the same
    # timestamp tick (coarse on local disks, a second on some network filesystems) unseen: trust
    # such an entry only once a later resolution finds the folder older.
    if any(t >= meta.get("resolved_at", 0) - RACY_NS for t in folders.values()):
        log.info("index cache %s: folders modified just before it was written; resolving again", path)
        return None
    return index, list(meta["classes"]), list(meta.get("notes", []))


def resolve_index(data_cfg, split: str, *, use_cache: bool = True) -> tuple[SampleIndex, list[str]]:
    """The samples of `split` ("train" | "val") of the resolved `data_cfg` and its classes, as
    `annotations.load_split` gives them, cached (see the module docstring). Warnings of the
    resolution (videos missing on disk) are repeated when the cache answers. A streaming format
    (shards) has no lists to resolve: its `load_split` says so."""
    from action3d.data.annotations import index_videos, load_split

    data_format = format_of(data_cfg)  # what it reads: the files hashed, the folders watched
    files = data_format.annotation_files()
    path = index_cache_dir() / f"{cache_key(data_cfg, split, files)}.npz"
    if use_cache:
        cached = _load_cached(path)
        if cached is not None:
            index, classes, notes = cached
            for note in notes:
                log.warning("%s", note)
            return index, classes
    resolved_at = time.time_ns()
    times = folder_times(data_format.listed_folders())  # before listing: a change meanwhile shows next time
    index_videos.cache_clear()  # this process may have listed the root before the change
    with _captured_warnings(log) as notes:
        samples, classes = load_split(data_cfg, split)
    index = SampleIndex.from_pairs(samples)
    if use_cache:
        try:
            index.save(path, classes=list(classes), folders=times, notes=notes, split=split,
                       format=data_cfg.format, root=str(data_cfg.root), resolved_at=resolved_at)
        except OSError as err:
            log.warning("cannot write the index cache %s (%s); set ACTION3D_CACHE to a writable folder "
                        "to skip this resolution next time", path, err)
    return index, list(classes)


def _stat_times(folders: Sequence[str]) -> dict[str, int]:
    """Modification time (ns) of each folder, -1 for one that is gone."""
    times = {}
    for folder in folders:
        try:
            times[folder] = os.stat(folder).st_mtime_ns
        except OSError:
            times[folder] = -1
    return times
