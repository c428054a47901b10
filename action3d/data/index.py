"""Compact sample lists and the resolved-annotation cache, for datasets of hundreds of thousands of videos.

`SampleIndex` holds `(path, label)` samples in three numpy arrays (the path bytes, their offsets,
the labels; a multi-label index adds a fourth, where each sample's labels start) instead of a list
of Python tuples. DataLoader workers are forked copies of the main process: reading a Python
object writes its reference count, so every page of a list of tuples that a worker touches
becomes a private copy (PyTorch's "copy-on-read"), about 100 MiB per worker over one epoch at
Kinetics-700 size. A worker reading a numpy array writes nothing, so its
pages stay shared (measured by scripts/bench_scale.py).

`resolve_index(data_cfg, split)` is `annotations.load_split` (read the annotation files, walk the
dataset root, match, report missing files) with its result cached under
`$ACTION3D_CACHE/index/` (`~/.cache/action3d/index/`), so the dataset root may be read-only. The
cache key is a hash of the format, the root path, the split, data.multi_label and the bytes of
every annotation file (the data format names them: `DatasetFormat.annotation_files`); a cached
entry also records the modification time of every folder that resolving listed
(`DatasetFormat.listed_folders`), and is rebuilt when one of them changed (a video added, removed
or renamed), or when one had changed less than `RACY_NS` before the entry was written. A warm load
reads the annotation files (to hash them), stats those folders and loads the arrays.
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

from action3d.data.annotation_io import Label
from action3d.data.formats import format_of
from action3d.files import atomic_write

log = logging.getLogger("action3d.data")

CACHE_VERSION = 2        # bump when the cached content or its meaning changes (2: data.multi_label, label rows)
RACY_NS = 2_000_000_000  # folder times this close to the resolution are not trusted (see _load_cached)


class SampleIndex:
    """`(path, label)` samples in compact arrays; reads like a sequence of tuples.

    Paths are stored as UTF-8 (`os.fsencode`) bytes after a common prefix, concatenated into one
    uint8 array with int64 offsets. Labels: one int64 per sample (`labels`, -1: unknown), or, for
    a multi-label index (data.multi_label), compressed rows: `labels` holds every sample's class
    indices one after the other and `label_offsets` (N + 1 int64) where each sample's start, so
    sample i's labels are `labels[label_offsets[i]:label_offsets[i + 1]]` and it reads back as
    the sorted tuple of them. Either way no Python object per sample is kept. Pickling copies a
    few arrays, so it is cheap to send to loader workers or other ranks.
    """

    def __init__(self, prefix: str, data: np.ndarray, offsets: np.ndarray, labels: np.ndarray,
                 label_offsets: np.ndarray | None = None):
        rows = len(labels) if label_offsets is None else len(label_offsets) - 1
        if len(offsets) != rows + 1:
            raise ValueError(f"SampleIndex: {len(offsets)} offsets for {rows} samples' labels")
        if label_offsets is not None and (len(label_offsets) < 1 or label_offsets[0] != 0
                                          or label_offsets[-1] != len(labels)):
            raise ValueError(f"SampleIndex: label offsets do not span the {len(labels)} labels")
        self.prefix = prefix
        self._data = np.ascontiguousarray(data, dtype=np.uint8)
        self._offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.label_offsets = None if label_offsets is None else np.ascontiguousarray(label_offsets, dtype=np.int64)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Label]]) -> SampleIndex:
        """An index of `(path, label)` pairs: labels ints (one per sample), or for a multi-label
        index sequences of class indices (kept sorted and unique; an int k is read as (k,))."""
        paths, labels = [], []
        for path, label in pairs:
            paths.append(str(path))
            labels.append(label)
        prefix = os.path.commonprefix(paths) if len(paths) > 1 else ""
        encoded = [os.fsencode(p[len(prefix):]) for p in paths]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        if not any(isinstance(label, (tuple, list, np.ndarray)) for label in labels):
            return cls(prefix, data, offsets, np.asarray([int(label) for label in labels], dtype=np.int64))
        rows = [_label_row(label) for label in labels]
        label_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=label_offsets[1:])
        values = np.fromiter((v for r in rows for v in r), dtype=np.int64, count=int(label_offsets[-1]))
        return cls(prefix, data, offsets, values, label_offsets)

    @property
    def multi_label(self) -> bool:
        """Whether each sample holds a tuple of class indices (a multi-label index)."""
        return self.label_offsets is not None

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def path(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self.prefix + os.fsdecode(self._data[start:end].tobytes())

    def label(self, index: int) -> Label:
        """Sample `index`'s label: an int, or the tuple of its class indices (multi-label)."""
        if self.label_offsets is None:
            return int(self.labels[index])
        start, end = self.label_offsets[index], self.label_offsets[index + 1]
        return tuple(int(v) for v in self.labels[start:end])

    def __getitem__(self, index: int) -> tuple[str, Label]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (0..{len(self) - 1})")
        return self.path(index), self.label(index)

    def __iter__(self) -> Iterator[tuple[str, Label]]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other) -> bool:
        if not isinstance(other, SampleIndex):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable arrays inside: not hashable

    @property
    def nbytes(self) -> int:
        extra = 0 if self.label_offsets is None else self.label_offsets.nbytes
        return self._data.nbytes + self._offsets.nbytes + self.labels.nbytes + extra

    def __repr__(self) -> str:
        kind = ", multi-label" if self.multi_label else ""
        return f"SampleIndex({len(self)} samples{kind}, {self.nbytes / 2**20:.1f} MiB, prefix {self.prefix!r})"

    # -- files ----------------------------------------------------------------------------------

    def arrays(self, **meta) -> dict[str, np.ndarray]:
        """The arrays to store, with `meta` (JSON-able) as one uint8 array: no pickle needed to load.
        A multi-label index adds `label_offsets` (a single-label one stores what it always did)."""
        header = {"prefix": self.prefix, **meta}
        arrays = {"data": self._data, "offsets": self._offsets, "labels": self.labels,
                  "meta": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        if self.label_offsets is not None:
            arrays["label_offsets"] = self.label_offsets
        return arrays

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
            label_offsets = arrays["label_offsets"] if "label_offsets" in arrays.files else None
            index = cls(meta["prefix"], arrays["data"], arrays["offsets"], arrays["labels"], label_offsets)
        return index, meta


def _label_row(label: Label) -> list[int]:
    """A multi-label sample's class indices, sorted and unique (an int k: [k])."""
    if isinstance(label, (int, np.integer)):
        if label < 0:
            raise ValueError(f"SampleIndex: label {label} (unknown) in a multi-label index; give the class indices")
        return [int(label)]
    return sorted({int(v) for v in np.asarray(label).reshape(-1)})


def as_sample_index(samples: Iterable[tuple[str, Label]]) -> SampleIndex:
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
    """A hash of the format, the root path, the split, data.multi_label (the same list reads as
    one label or a tuple of labels per line) and every annotation file's name and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    root = os.path.abspath(data_cfg.root) if data_cfg.root else ""
    head = [CACHE_VERSION, data_cfg.format, root, split, data_cfg.split, bool(data_cfg.multi_label),
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
