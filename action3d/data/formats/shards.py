"""data.format=shards: a dataset packed into tar shards by `action3d data pack` (data.root/index.json).

Its splits are streamed, shard after shard, by `action3d.data.shards.ShardDataset`; the engine
builds one for a streaming format (`action3d.engine.data.shared_index`). The splits and classes
are the pack's, so the keys that would name others are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

from action3d.data.annotation_io import SHARD_INDEX_FILE, Sample, read_shard_index
from action3d.data.formats.base import DatasetFormat, is_set
from action3d.errors import Action3dError, fail

FROM_THE_PACK = "data.format=shards reads the splits and classes of the packed dataset (data.root/index.json)"


class ShardsFormat(DatasetFormat):
    name = "shards"
    summary = ("tar shards written by `action3d data pack` (data.root/index.json names the splits and classes), "
               "streamed front to back with a shuffle buffer of data.shard_shuffle videos")
    keys = ("shard_shuffle", "multi_label")
    refuses = {key: FROM_THE_PACK for key in ("train_list", "val_list", "classes_file", "annotation_dir")}
    streams = True

    def check(self) -> None:
        """The refused keys (wherever they are set: a preset's value is as wrong) and the sampler."""
        for key, why in self.refuses.items():
            value = getattr(self.data, key)
            if is_set(value):
                fail(f"data.{key}", value, f"{why}; leave it unset")
        if self.data.sampler == "balanced":
            fail("data.sampler", "balanced", "data.format=shards reads each shard front to back; class-balanced "
                 "draws need random access: use data.sampler=random, or train from the files")

    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        """data.root holds an index (which splits it has is the loader's to tell)."""
        self.require_folder("root")
        if not Path(self.data.root, SHARD_INDEX_FILE).is_file():
            raise Action3dError(f"data.root={self.data.root}: no {SHARD_INDEX_FILE} (data.format=shards); pack a "
                                f"dataset there first: action3d data pack data=... out={self.data.root}")

    def has_split(self, split: str) -> bool:
        root = self.data.root
        return bool(root) and (Path(root) / SHARD_INDEX_FILE).is_file() and split in read_shard_index(root)["splits"]

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        raise Action3dError(f"data.format=shards (data.root={self.data.root}): packed shards have no annotation "
                            "lists to resolve (a ShardDataset reads them: action3d.engine.data.shared_index); "
                            "the data tools need the source dataset (its data=... group)")

    def annotation_files(self) -> List[Path]:
        return []  # never resolved into a cached index (see read_split)
