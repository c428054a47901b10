"""`action3d data pack`: a dataset's videos into tar shards in the webdataset format.

The layout, and how `ShardDataset` (`action3d.data.shards`) streams it, is described in that
module. Writing needs neither torch nor the reader: each shard goes to `NAME.part` through
webdataset's TarWriter, is fsynced and renamed when full, and `index.json` is written last.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from action3d.data.annotation_io import SHARD_INDEX_FILE, SHARDS_FORMAT, VIDEO_EXTENSIONS, Label, label_text
from action3d.data.index import SampleIndex, as_sample_index
from action3d.errors import Action3dError
from action3d.files import atomic_write

log = logging.getLogger("action3d.data")

FAILURES_FILE = "pack_failures.txt"
VIDEO_SUFFIXES = {ext.lstrip(".") for ext in VIDEO_EXTENSIONS}   # a sample's video entry, by suffix


def sample_key(position: int) -> str:
    """A sample's tar key: its position in the pack order, zero-padded so that names sort."""
    return f"{position:09d}"


def pack_split(samples: SampleIndex, *, classes: Sequence[str], out: Path, split: str, shard_bytes: int,
               seed: int = 0, progress: bool = True) -> tuple[dict, list[str]]:
    """Write the videos of `samples` into `out/split/split-NNNNNN.tar` in a seeded random order.

    Returns the split's index entry and the reasons of the files left out (missing or empty).
    """
    from tqdm import tqdm

    order, skipped = [], []
    for i in np.random.default_rng(seed).permutation(len(samples)):
        path, _ = samples[int(i)]
        try:
            size = os.stat(path).st_size
        except OSError as err:
            skipped.append(f"{path}: {err.strerror or err}")
            continue
        if size == 0:
            skipped.append(f"{path}: empty file (0 bytes)")
        else:
            order.append(int(i))
    (out / split).mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    writer, written = None, 0
    bar = tqdm(total=len(order), desc=f"pack {split}", unit="video", disable=not progress)
    try:
        for position, i in enumerate(order):
            if writer is None:
                shards.append({"name": f"{split}/{split}-{len(shards):06d}.tar", "first": position, "count": 0})
                writer = _ShardWriter(out / shards[-1]["name"])
            written += writer.write(position, *samples[i], classes)
            shards[-1]["count"] += 1
            bar.update(1)
            if written >= shard_bytes or position == len(order) - 1:
                writer.finish()
                writer, written = None, 0
    finally:
        bar.close()
        if writer is not None:  # stopped mid-shard: no half-written shard under its name
            writer.abandon()
    names = {Path(s["name"]).name for s in shards}
    for stale in (out / split).glob(f"{split}-*.tar"):  # from an earlier pack with more shards
        if stale.name not in names:
            stale.unlink()
    table = SampleIndex.from_pairs(samples[i] for i in order)
    table.save(out / f"{split}-samples.npz", split=split)
    return {"samples": len(order), "table": f"{split}-samples.npz", "shards": shards}, skipped


class _ShardWriter:
    """One tar shard written through webdataset's TarWriter into `NAME.part`, renamed when finished."""

    def __init__(self, target: Path):
        from webdataset import TarWriter

        self.target, self.part = target, Path(f"{target}.part")
        self.stream = open(self.part, "wb")
        self.tar = TarWriter(self.stream, encoder=False, mtime=0)

    def write(self, position: int, path: str, label: Label, classes: Sequence[str]) -> int:
        """Add the video at `path` as sample `position` (`label`: an int, or a multi-label sample's
        tuple of class indices); return the bytes written."""
        try:
            with open(path, "rb") as f:
                video = f.read()
        except OSError as err:
            raise Action3dError(f"pack: cannot read {path} ({err.strerror or err})") from None
        suffix = Path(path).suffix.lower().lstrip(".")
        if isinstance(label, tuple):
            meta = {"path": path, "labels": list(label), "classes": [classes[k] for k in label]}
        else:
            meta = {"path": path, "label": label, "class": classes[label] if 0 <= label < len(classes) else None}
        return self.tar.write({"__key__": sample_key(position), suffix if suffix in VIDEO_SUFFIXES else "mp4": video,
                               "cls": label_text(label).encode(), "json": json.dumps(meta).encode()})

    def finish(self) -> None:
        self.tar.close()
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.part, self.target)

    def abandon(self) -> None:
        self.stream.close()
        self.part.unlink(missing_ok=True)


def pack_dataset(splits: dict[str, SampleIndex], *, classes: Sequence[str], out: str | os.PathLike,
                 shard_mb: float, source: dict | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Pack every split into `out` (see the module docstring); `index.json` is written last.

    Files that are missing or empty are left out, logged and listed in `out/pack_failures.txt`.
    Returns the index.
    """
    out = Path(out)
    if shard_mb <= 0:
        raise Action3dError(f"shard_mb={shard_mb} is not allowed: must be > 0")
    out.mkdir(parents=True, exist_ok=True)
    splits = {split: as_sample_index(samples) for split, samples in splits.items()}
    multi_label = any(samples.multi_label for samples in splits.values())
    index = {"format": SHARDS_FORMAT, "classes": list(classes), "multi_label": multi_label, "seed": seed,
             "source": source or {}, "splits": {}}
    failures: list[str] = []
    for split, samples in splits.items():
        entry, skipped = pack_split(samples, classes=classes, out=out, split=split,
                                    shard_bytes=int(shard_mb * 1e6), seed=seed, progress=progress)
        if not entry["samples"]:
            raise Action3dError(f"pack: none of the {len(samples)} videos of split {split} could be read; "
                                f"e.g. {skipped[0] if skipped else '-'}")
        index["splits"][split] = entry
        failures += skipped
    for reason in failures[:5]:
        log.warning("pack: skipped %s", reason)
    if failures:
        log.warning("pack: %d unreadable videos left out, listed in %s", len(failures), out / FAILURES_FILE)
        atomic_write(out / FAILURES_FILE, "".join(f"{r}\n" for r in failures))
    elif (out / FAILURES_FILE).exists():
        (out / FAILURES_FILE).unlink()
    atomic_write(out / SHARD_INDEX_FILE, json.dumps(index, indent=1))
    return index
